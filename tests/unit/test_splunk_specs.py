"""Every setting the app ships is one Splunk knows: default/*.conf against Splunk's .spec files.

Splunk's own specs for 10.0, 10.2 and 10.4 (etc/system/README, kept byte for byte in
../shared/data/splunk-spec, see its SOURCE.txt) plus the app's README/*.spec are read the way
``splunk btool check`` reads them:

- ``[<pattern>]`` lines at the start of a line open a stanza pattern; every ``<...>`` in it
  matches any text (``[script://<cmd>]``, ``[<collection-name>]``, ``[default]`` literally).
- ``key = ...`` lines at the start of a line declare a setting of the current stanza pattern;
  ``<...>`` in a key matches any text (``action.<action_name>.<parameter>``, ``example<number>``).
- Settings before the first stanza pattern are global: every stanza of that file may use them.
- A modular input's scheme stanza (``[aws_cloudtrail_sqs]``, the defaults of every
  ``[aws_cloudtrail_sqs://...]``) may use the settings of its ``://<name>`` stanza in the app's
  README/inputs.conf.spec and those of the "Modular Inputs" section of Splunk's inputs.conf.spec
  (``python.version``, ``python.required``, ``run_introspection``), which sits, without a
  stanza line of its own, at the end of the file.

A conf file with no spec at all (Splunk's or the app's) fails too. Settings that a version
before the newest does not know are listed in KNOWN_FROM with the first version that knows
them, and a test holds that list true.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from standin.conf import read_conf

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "default"
APP_SPECS = ROOT / "README"
SPLUNK_SPECS = ROOT.parent / "shared" / "data" / "splunk-spec"
VERSIONS = ("10.0", "10.2", "10.4")

# (conf file, setting) -> first Splunk version whose spec declares it. Splunk 10.0 ignores
# python.required (it reads python.version); AppInspect's cloud checks ask for it from 10.2 on.
KNOWN_FROM = {
    ("commands.conf", "python.required"): "10.2",
    ("inputs.conf", "python.required"): "10.2",
}

STANZA_LINE = re.compile(r"^\[(.*)\]\s*$")
KEY_LINE = re.compile(r"^((?:<[^>\n]*>|[A-Za-z0-9_$])(?:<[^>\n]*>|[^\s=<#*])*)\s*=")
MODULAR_SECTION = re.compile(r"^#+\s*Modular Inputs\s*$")
MODULAR = "<modular input scheme>"


def wildcard(text: str) -> re.Pattern:
    """A spec pattern -> a regex: every ``<...>`` matches one or more characters."""
    parts = re.split(r"(<[^>]*>)", text)
    return re.compile("".join(".+" if p.startswith("<") else re.escape(p) for p in parts), re.S)


@dataclass
class Spec:
    """The stanza patterns and setting patterns of one conf file's spec (Splunk's + the app's)."""

    global_keys: list[re.Pattern] = field(default_factory=list)
    stanzas: dict[str, list[re.Pattern]] = field(default_factory=dict)

    def read(self, text: str) -> Spec:
        current: str | None = None
        for line in text.splitlines():
            stanza = STANZA_LINE.match(line)
            if stanza:
                current = stanza.group(1)
                self.stanzas.setdefault(current, [])
            elif MODULAR_SECTION.match(line):
                current = MODULAR
                self.stanzas.setdefault(current, [])
            else:
                key = KEY_LINE.match(line)
                if key:
                    (self.global_keys if current is None else self.stanzas[current]).append(
                        wildcard(key.group(1).strip())
                    )
        return self

    def _matching(self, stanza: str) -> list[list[re.Pattern]]:
        found = [
            keys
            for pattern, keys in self.stanzas.items()
            if pattern != MODULAR and wildcard(pattern).fullmatch(stanza)
        ]
        schemes = [p for p in self.stanzas if p == f"{stanza}://<name>"]
        if schemes:  # a modular input scheme's default stanza
            found += [self.stanzas[p] for p in schemes] + [self.stanzas.get(MODULAR, [])]
        if stanza == "default":
            found += list(self.stanzas.values())
        return found

    def knows_stanza(self, stanza: str) -> bool:
        return stanza == "default" or not self.stanzas or bool(self._matching(stanza))

    def allows(self, stanza: str, key: str) -> bool:
        patterns = self.global_keys + [p for keys in self._matching(stanza) for p in keys]
        return any(p.fullmatch(key) for p in patterns)


def spec_for(conf: str, version: str) -> Spec | None:
    """Splunk's spec of `conf` for `version` with the app's README spec read after it."""
    texts = [
        path.read_text(encoding="utf-8")
        for path in (SPLUNK_SPECS / f"spec-{version}" / f"{conf}.spec", APP_SPECS / f"{conf}.spec")
        if path.exists()
    ]
    if not texts:
        return None
    spec = Spec()
    for text in texts:
        spec.read(text)
    return spec


def unknown_settings(version: str) -> list[tuple[str, str, str]]:
    """(conf, stanza, setting) the spec does not allow; setting "" for an unknown stanza."""
    found = []
    for path in sorted(DEFAULT.glob("*.conf")):
        spec = spec_for(path.name, version)
        assert spec is not None, f"{path.name}: no spec in Splunk {version} and no README/{path.name}.spec"
        for stanza, settings in read_conf(path).items():
            if not spec.knows_stanza(stanza):
                found.append((path.name, stanza, ""))
                continue
            found += [(path.name, stanza, key) for key in settings if not spec.allows(stanza, key)]
    return found


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def excepted(conf: str, key: str, version: str) -> bool:
    since = KNOWN_FROM.get((conf, key))
    return since is not None and version_key(version) < version_key(since)


@pytest.fixture(scope="module", autouse=True)
def _specs_present() -> None:
    if not SPLUNK_SPECS.is_dir():
        pytest.skip(f"{SPLUNK_SPECS} not present (shared reference data, never copied)")


@pytest.mark.parametrize("version", VERSIONS)
def test_every_shipped_setting_is_in_a_spec(version: str) -> None:
    unknown = [(c, s, k) for c, s, k in unknown_settings(version) if not excepted(c, k, version)]
    assert unknown == [], f"Splunk {version} does not know these (conf, stanza, setting): {unknown}"


def test_the_version_exceptions_are_true() -> None:
    """Each KNOWN_FROM entry is shipped, unknown before its version and known from it on."""
    for (conf, key), since in KNOWN_FROM.items():
        shipped = [s for s, settings in read_conf(DEFAULT / conf).items() if key in settings]
        assert shipped, f"{conf} {key}: listed as an exception but not shipped"
        for version in VERSIONS:
            spec = spec_for(conf, version)
            known = all(spec.allows(stanza, key) for stanza in shipped)
            assert known == (version_key(version) >= version_key(since)), (conf, key, version)


SPLUNK_LIKE = """\
# global settings
host = <string>

[script://<cmd>]
interval = [<decimal>|<cron schedule>]
* not a key = nope

[<stanza name>]
action.<action_name>.<parameter> = <value>
example<number> = <string>
request.ui_dispatch_app  = <string>

############################################################################
# Modular Inputs
############################################################################

python.version = [default|python3]
"""

APP_LIKE = """\
[my_input://<name>]
queue_url = <string>
"""


def test_spec_reader_on_known_shapes() -> None:
    spec = Spec().read(SPLUNK_LIKE).read(APP_LIKE)
    assert spec.allows("script://./bin/x.sh", "interval")
    assert spec.allows("script://./bin/x.sh", "host")
    assert not spec.allows("script://./bin/x.sh", "intervall")
    assert not spec.allows("script://./bin/x.sh", "not a key")
    assert spec.allows("IAM alert", "action.notable.param.rule_title")
    assert spec.allows("IAM alert", "example12")
    assert spec.allows("IAM alert", "request.ui_dispatch_app")
    assert not spec.allows("IAM alert", "action")
    assert spec.allows("my_input://one", "queue_url")
    assert not spec.allows("my_input://one", "python.version")
    assert spec.allows("my_input", "python.version") and spec.allows("my_input", "queue_url")
    assert spec.knows_stanza("my_input") and spec.knows_stanza("my_input://x")
    inputs_only = Spec().read("[script://<cmd>]\ninterval = <n>\n").read(APP_LIKE)
    assert not inputs_only.knows_stanza("other_input")
    assert not inputs_only.allows("my_input", "interval")


def test_a_typo_in_a_shipped_conf_would_be_found(tmp_path: Path) -> None:
    spec = spec_for("savedsearches.conf", VERSIONS[-1])
    stanza = next(s for s in read_conf(DEFAULT / "savedsearches.conf") if s != "default")
    assert spec.allows(stanza, "cron_schedule") and not spec.allows(stanza, "cron_schedul")
    inputs = spec_for("inputs.conf", VERSIONS[-1])
    assert inputs.allows("aws_cloudtrail_sqs://x", "queue_url")
    assert not inputs.allows("aws_cloudtrail_sqs://x", "bucket")
    assert not inputs.allows("aws_cloudtrail_sqs://x", "python.version")
