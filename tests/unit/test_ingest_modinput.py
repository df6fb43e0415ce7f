"""The modular input adapter's own logic: XML event stream framing, log redaction, the pipe.

(splunklib's scheme and validation are exercised through the installed package in
tests/contract/test_input_*.py; nothing here needs splunklib.)
"""

from __future__ import annotations

import io
import logging
import os
import sys
import xml.etree.ElementTree as ET

import pytest
from iamspike_splunk.modinput import XmlEventSink, setup_logging, widen_pipe


def test_events_are_framed_and_escaped_as_splunkd_reads_them():
    out = io.BytesIO()
    sink = XmlEventSink('aws_cloudtrail_sqs://a "b"', out, index="aws")
    sink.write('{"errorMessage": "User: <x> & \\"y\\" \ufffe"}', 1693082112.5, "s3://b/k&1", "aws:cloudtrail")
    sink.write('{"eventID": "2"}', None, "s3://b/k&1", "aws:cloudtrail")
    assert out.getvalue() == b""  # buffered until flushed
    sink.flush()
    sink.close()
    root = ET.fromstring(out.getvalue())
    events = root.findall("event")
    assert root.tag == "stream" and len(events) == 2 and sink.written == 2
    assert events[0].get("stanza") == 'aws_cloudtrail_sqs://a "b"' and events[0].get("unbroken") == "1"
    assert events[0].findtext("data") == '{"errorMessage": "User: <x> & \\"y\\" \ufffd"}'
    assert events[0].findtext("time") == "1693082112.500" and events[1].find("time") is None
    assert events[0].findtext("source") == "s3://b/k&1" and events[0].findtext("index") == "aws"
    assert events[0].find("done") is not None


def test_nothing_written_means_no_stream_at_all():
    out = io.BytesIO()
    sink = XmlEventSink("x://y", out)
    sink.flush()
    sink.close()
    assert out.getvalue() == b""


@pytest.fixture
def iamspike_logger():
    """setup_logging reconfigures the ``iamspike`` logger: put it back for the other tests."""
    logger = logging.getLogger("iamspike")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield logger
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)
    logger.handlers[:], logger.propagate, logger.level = saved[0], saved[1], saved[2]


def test_log_lines_name_the_input_and_redact_key_ids(tmp_path, monkeypatch, iamspike_logger):
    monkeypatch.setenv("SPLUNK_HOME", str(tmp_path))
    log = setup_logging("aws_cloudtrail_sqs", "aws_cloudtrail_sqs://prod")
    log.info("using key %s", "AKIAIOSFODNN7EXAMPLE")
    logging.getLogger("iamspike.ingest.checkpoint").warning("core module line")
    for handler in iamspike_logger.handlers:
        handler.flush()
    text = (tmp_path / "var/log/splunk/ta_aws_iam_error_spike_aws_cloudtrail_sqs.log").read_text()
    assert "input=aws_cloudtrail_sqs://prod using key AKIA************MPLE" in text
    assert "AKIAIOSFODNN7EXAMPLE" not in text and "core module line" in text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_SETPIPE_SZ is Linux's")
def test_the_pipe_to_splunkd_is_widened_and_anything_else_left_alone(tmp_path):
    read, write = os.pipe()
    with open(read, "rb") as reader, open(write, "wb") as writer:
        assert widen_pipe(writer, 1 << 20) >= 1 << 20
        writer.write(b"x" * 500_000)  # fits without a reader: no blocking
        writer.flush()
        assert len(reader.read1(1 << 20)) > 0
    with open(tmp_path / "file", "wb") as regular:
        assert widen_pipe(regular) == 0
    assert widen_pipe(io.BytesIO()) == 0
