"""Fixtures for the loopback AWS endpoints: moto server, LookupEvents endpoint.

One moto server in server mode serves S3, SQS, SNS, STS, IAM and EC2 on a free loopback port.
Product code reaches it only through standard boto3 settings: child processes get
``AWS_ENDPOINT_URL`` plus fake credentials and a region in their environment (``moto_env``).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

FAKE_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
FAKE_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_moto() -> Iterator[str]:
    """Start moto in server mode on a free loopback port; yield its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def aws_env(endpoint_url: str) -> dict[str, str]:
    """Environment a child process needs to reach the loopback endpoint with fake credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
        # Nothing from the developer's own ~/.aws may leak into a test.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """Endpoint URL of a moto server (S3, SQS, SNS, STS, IAM, EC2) on loopback, for the session."""
    with running_moto() as url:
        yield url


@pytest.fixture(scope="session")
def moto_env(moto_server: str) -> dict[str, str]:
    """Environment variables for child processes (entry scripts) to use the moto server."""
    return aws_env(moto_server)


@pytest.fixture
def aws_clients(moto_server: str):
    """A factory of boto3 clients on the moto server, for tests to seed and inspect AWS state."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        region_name=REGION,
    )

    def make(service: str):
        return session.client(service, endpoint_url=moto_server)

    return make


@pytest.fixture
def unique_name() -> str:
    """A short name unique to this test, for buckets and queues on the shared moto server."""
    return "t" + uuid.uuid4().hex[:12]
