"""Splunk's own limits, read from the files Splunk ships (../shared/data/splunk-spec, SOURCE.txt).

- :func:`default` reads a setting of a stanza of etc/system/default/limits.conf of one version:
  the value a search meets when nobody changed it.
- :func:`spec_default` reads the ``* Default: ...`` line the spec gives for a setting of a stanza
  (``limits.conf.spec``, ``commands.conf.spec``...): for files whose default Splunk does not ship
  here (commands.conf), and to show where the spec text and the shipped default disagree
  (10.x ``[subsearch] maxout``: spec 100, default/limits.conf 10000).

Only the stanza's own block is read: Splunk's files repeat setting names across stanzas
(``maxresultrows``, ``max_mem_usage_mb``).
"""

from __future__ import annotations

import re
from pathlib import Path

SPLUNK_SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "splunk-spec"
VERSIONS = ("10.0", "10.2", "10.4")


def _block(text: str, stanza: str) -> str:
    found = re.search(r"(?ms)^\[" + re.escape(stanza) + r"\]\s*\n(.*?)(?=^\[|\Z)", text)
    return found.group(1) if found else ""


def default(version: str, stanza: str, key: str) -> str | None:
    """``key`` of ``[stanza]`` in Splunk `version`'s default/limits.conf (None: not set there)."""
    text = (SPLUNK_SPECS / f"spec-{version}" / "default" / "limits.conf").read_text(encoding="utf-8")
    found = re.search(r"(?m)^" + re.escape(key) + r"\s*=[ \t]*(.*?)\s*$", _block(text, stanza))
    return found.group(1) if found else None


def spec_default(version: str, conf: str, stanza: str, key: str) -> str | None:
    """The first word of ``* Default: ...`` under ``key`` of ``[stanza]`` in `conf`.spec."""
    text = (SPLUNK_SPECS / f"spec-{version}" / f"{conf}.spec").read_text(encoding="utf-8")
    found = re.search(r"(?ms)^" + re.escape(key) + r"\s*=.*?^\*\s*[Dd]efault:?\s*(\S+)", _block(text, stanza))
    return found.group(1).rstrip(".") if found else None


def spec_text(version: str, conf: str, stanza: str, key: str) -> str:
    """The spec's description of ``key`` of ``[stanza]``: its ``*`` lines, joined ("" if absent)."""
    text = (SPLUNK_SPECS / f"spec-{version}" / f"{conf}.spec").read_text(encoding="utf-8")
    found = re.search(
        r"(?ms)^" + re.escape(key) + r"\s*=[^\n]*\n((?:\*[^\n]*\n|[ \t]+[^\n]*\n)*)", _block(text, stanza)
    )
    return " ".join(line.strip(" *") for line in found.group(1).splitlines()) if found else ""


def as_int(value: str | None) -> int:
    """``100MB`` / ``26214400`` -> bytes or the plain number."""
    assert value is not None, "not set"
    number = re.fullmatch(r"(\d+)\s*(KB|MB|GB)?", value)
    assert number, value
    scale = {None: 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}[number.group(2)]
    return int(number.group(1)) * scale
