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

The input stanzas README.md and docs/*.md give users to paste into local/inputs.conf are held
to the same specs. A conf file with no spec at all (Splunk's or the app's) fails too. Settings that a version
before the newest does not know are listed in KNOWN_FROM with the first version that knows
them, and a test holds that list true.

Every shipped value is also held to the type its spec line gives (``<boolean>``, ``<integer>``,
``<time-specifier>``, ``<json>``, an enumeration such as ``number of events | number of hosts``
or ``{default|python3}``, ``python.required``'s listed versions); a value of a free type
(``<string>``, ``<cron string>``: checked in test_spl_content.py) is not checked here.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from standin.conf import parse_conf, read_conf
from standin.spl import is_time_modifier, pcre

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

# (conf file, setting) a version's spec calls DEPRECATED that the app still sets, and why.
DEPRECATED_KEPT = {
    ("commands.conf", "python.version"): "10.0 reads python.version only (python.required is 10.2's)",
    ("inputs.conf", "python.version"): "10.0 reads python.version only (python.required is 10.2's)",
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
class Setting:
    """One ``key = <type>`` line of a spec: the key as a pattern, the text after ``=`` and the
    ``*`` lines that follow it (stacked key lines share them)."""

    pattern: re.Pattern
    type: str
    notes: list[str] = field(default_factory=list)


@dataclass
class Spec:
    """The stanza patterns and settings of one conf file's spec (Splunk's + the app's)."""

    global_keys: list[Setting] = field(default_factory=list)
    stanzas: dict[str, list[Setting]] = field(default_factory=dict)

    def read(self, text: str) -> Spec:
        current: str | None = None
        group: list[Setting] = []  # the key lines the next "*" lines describe
        after_key = False
        for line in text.splitlines():
            stanza = STANZA_LINE.match(line)
            key = None if stanza else KEY_LINE.match(line)
            if stanza or MODULAR_SECTION.match(line):
                current = stanza.group(1) if stanza else MODULAR
                self.stanzas.setdefault(current, [])
                group, after_key = [], False
            elif key:
                setting = Setting(wildcard(key.group(1).strip()), line[key.end() :].strip())
                (self.global_keys if current is None else self.stanzas[current]).append(setting)
                group = [*group, setting] if after_key else [setting]
                after_key = True
            else:
                if line.startswith("*") or (line[:1].isspace() and line.strip()):
                    for setting in group:
                        setting.notes.append(line.strip(" *"))
                after_key = False
        return self

    def _matching(self, stanza: str) -> list[list[Setting]]:
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

    def settings(self, stanza: str, key: str) -> list[Setting]:
        """Every spec line that declares ``key`` for ``stanza``."""
        candidates = self.global_keys + [s for keys in self._matching(stanza) for s in keys]
        return [s for s in candidates if s.pattern.fullmatch(key)]

    def allows(self, stanza: str, key: str) -> bool:
        return bool(self.settings(stanza, key))


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


FENCED = re.compile(r"(?ms)^```[^\n]*\n(\[.*?)^```")


def shipped_confs() -> list[tuple[str, str, dict[str, dict[str, str]]]]:
    """(where, conf file, its stanzas): default/*.conf, and the inputs.conf stanzas README.md and
    docs/*.md give users to paste into local/inputs.conf (fenced blocks of ``[<scheme>://<name>]``
    stanzas)."""
    found = [(path.name, path.name, read_conf(path)) for path in sorted(DEFAULT.glob("*.conf"))]
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for block in FENCED.finditer(text):
            stanzas = {k: v for k, v in parse_conf(block.group(1)).items() if k != "default" or v}
            if stanzas and all(re.fullmatch(r"\w+://.+", name) for name in stanzas):
                line = text.count("\n", 0, block.start()) + 1
                found.append((f"{path.relative_to(ROOT)}:{line}", "inputs.conf", stanzas))
    return found


def unknown_settings(version: str) -> list[tuple[str, str, str]]:
    """(where, stanza, setting) the spec does not allow; setting "" for an unknown stanza."""
    found = []
    for where, conf, stanzas in shipped_confs():
        spec = spec_for(conf, version)
        assert spec is not None, f"{conf}: no spec in Splunk {version} and no README/{conf}.spec"
        for stanza, settings in stanzas.items():
            if not spec.knows_stanza(stanza):
                found.append((where, stanza, ""))
                continue
            found += [(where, stanza, key) for key in settings if not spec.allows(stanza, key)]
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
    documented = [where for where, _, _ in shipped_confs() if not where.endswith(".conf")]
    assert len(documented) >= 2, "docs/inputs.md's input examples are no longer read"
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


@pytest.mark.parametrize("version", VERSIONS)
def test_the_metadata_is_in_default_meta_spec(version: str) -> None:
    """metadata/*.meta against default.meta.spec: its stanzas are object paths (``[]``,
    ``[views]``, ``[views/<name>]``...), so only the settings are held to the spec's (access,
    export, owner...), with ``access = read : [ roles ], write : [ roles ]`` and
    ``export = system|none``."""
    spec = Spec().read((SPLUNK_SPECS / f"spec-{version}" / "default.meta.spec").read_text(encoding="utf-8"))
    declared = spec.global_keys + [s for keys in spec.stanzas.values() for s in keys]
    role_list = r"\[\s*[\w*-]+(\s*,\s*[\w*-]+)*\s*\]"
    access = re.compile(rf"(read|write)\s*:\s*{role_list}(\s*,\s*(read|write)\s*:\s*{role_list})?")
    metas = sorted((ROOT / "metadata").glob("*.meta"))
    assert metas, "no metadata/*.meta"
    for path in metas:
        for stanza, settings in read_conf(path).items():
            for key, value in settings.items():
                assert any(s.pattern.fullmatch(key) for s in declared), f"{path.name} [{stanza}] {key}"
                if key == "access":
                    assert access.fullmatch(value), f"{path.name} [{stanza}] access = {value}"
                if key == "export":
                    assert value in ("system", "none"), f"{path.name} [{stanza}] export = {value}"


INDEX_TIME = {
    "SHOULD_LINEMERGE",
    "LINE_BREAKER",
    "TRUNCATE",
    "TIME_PREFIX",
    "TIME_FORMAT",
    "MAX_TIMESTAMP_LOOKAHEAD",
    "DATETIME_CONFIG",
}


def scheme_arguments(script: Path, name: str = "ARGUMENTS") -> set[str]:
    """The names of a modular input's scheme arguments, read from its entry script's source
    (``Argument("name", ...)`` and ``*modinput.AWS_ARGUMENTS``) without running it."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    (elements,) = [
        node.value.elts
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.List)
        and getattr(node.targets[0], "id", "") == name
    ]
    names = set()
    for item in elements:
        if isinstance(item, ast.Call) and getattr(item.func, "id", "") == "Argument":
            names.add(item.args[0].value)
        elif isinstance(item, ast.Starred) and "modinput.AWS_ARGUMENTS" in ast.unparse(item.value):
            names |= scheme_arguments(ROOT / "bin" / "iamspike_splunk" / "modinput.py", "AWS_ARGUMENTS")
        else:
            raise AssertionError(f"{script.name}: {ast.unparse(item)} is not an Argument")
    return names


def test_each_input_schemes_arguments_are_its_spec_settings() -> None:
    """README/inputs.conf.spec's ``[<kind>://<name>]`` settings are the arguments the input's
    scheme declares (``--scheme``): splunkd's data/inputs/<kind> endpoint (the Configuration
    page, Splunk Web's Data inputs) refuses an argument outside the scheme, and btool check a
    setting outside the spec. Settings splunkd handles for every input (inputs.conf.spec's
    global settings, interval, disabled) are outside both."""
    splunk = Spec().read(
        (SPLUNK_SPECS / f"spec-{VERSIONS[-1]}" / "inputs.conf.spec").read_text(encoding="utf-8")
    )
    generic = {s.pattern.pattern for s in splunk.global_keys} | {"interval", "disabled"}
    app = Spec().read((APP_SPECS / "inputs.conf.spec").read_text(encoding="utf-8"))
    kinds = [p[: -len("://<name>")] for p in app.stanzas if p.endswith("://<name>")]
    assert len(kinds) == 4, kinds
    for kind in kinds:
        declared = {s.pattern.pattern.replace("\\", "") for s in app.stanzas[f"{kind}://<name>"]} - generic
        arguments = scheme_arguments(ROOT / "bin" / f"{kind}.py")
        assert declared - arguments == set(), f"{kind}: in the spec, refused by the scheme"
        assert arguments - declared == set(), f"{kind}: in the scheme, not in the spec"


@pytest.mark.parametrize("version", VERSIONS)
def test_a_chunked_command_sets_only_what_the_protocol_reads(version: str) -> None:
    """commands.conf.spec, ``chunked``: with "true", "only the following commands.conf settings
    are valid" (is_risky, maxwait, maxchunksize, filename, command.arg.<N>, python.version,
    run_in_preview); python.required (10.2 on) is python.version's successor."""
    spec = spec_for("commands.conf", version)
    (chunked,) = spec.settings("iamspike", "chunked")
    notes = " ".join(chunked.notes)
    listed = re.search(r"only the following commands\.conf settings are valid:(.*?)(\* If set to|$)", notes)
    assert listed, "commands.conf.spec no longer lists the chunked protocol's settings"
    valid = [wildcard(name) for name in re.findall(r"'([^']+)'", listed.group(1))]
    assert len(valid) >= 5, valid
    for name, stanza in read_conf(DEFAULT / "commands.conf").items():
        if stanza.get("chunked", "false").lower() in ("1", "true"):
            others = [
                k
                for k in stanza
                if k not in ("chunked", "python.required") and not any(v.fullmatch(k) for v in valid)
            ]
            assert others == [], f"[{name}] chunked = true ignores {others}"


# Parameters of Splunk's own actions that etc/system/README/alert_actions.conf.spec does not
# declare: the webhook action's URL is in the alert_webhook app's own spec.
OTHER_SPECS = {("webhook", "param.url")}


@pytest.mark.parametrize("version", VERSIONS)
def test_alert_action_parameters_are_the_actions_settings(version: str) -> None:
    """savedsearches.conf ``action.<action>.<parameter>`` sets ``<parameter>`` of the action's
    alert_actions.conf stanza for one search: for the actions Splunk's alert_actions.conf.spec
    declares (email, webhook, script, ...), the parameter is one of its settings (the global ones
    or its stanza's) with a value of its type. ES's notable, risk and correlationsearch are ES's."""
    actions = spec_for("alert_actions.conf", version)
    own = {name for name in actions.stanzas if "<" not in name}
    found = []
    for name, stanza in read_conf(DEFAULT / "savedsearches.conf").items():
        for key, value in stanza.items():
            parts = key.split(".", 2)
            if len(parts) < 3 or parts[0] != "action" or parts[1] not in own:
                continue
            action, parameter = parts[1], parts[2]
            declared = actions.settings(action, parameter)
            if (action, parameter) in OTHER_SPECS:
                continue
            if not declared or (value and not any(fits(value, s) is not False for s in declared)):
                found.append((name, key, value))
    assert found == [], f"Splunk {version}: parameters not of their action (search, key, value)"


def test_app_manifest_agrees_with_app_conf() -> None:
    """app.manifest (schema 2.0.0, read by AppInspect and Splunk Cloud's installer) names the
    app, its version and title as app.conf does, with deployments and workloads of the schema."""
    manifest = json.loads((ROOT / "app.manifest").read_text(encoding="utf-8"))
    app = read_conf(DEFAULT / "app.conf")
    info = manifest["info"]
    assert manifest["schemaVersion"] == "2.0.0"
    assert info["id"]["name"] == app["package"]["id"] == app["id"]["name"]
    assert info["id"]["version"] == app["id"]["version"] == app["launcher"]["version"]
    assert info["title"] == app["ui"]["label"]
    assert set(manifest["supportedDeployments"]) <= {"_standalone", "_distributed", "_search_head_clustering"}
    assert set(manifest["targetWorkloads"]) <= {"_search_heads", "_indexers", "_forwarders"}
    # props.conf's index-time settings act where data is parsed: the heavy forwarder running the
    # inputs, and the indexers for data a universal forwarder sends unparsed (a monitored file
    # of JSON lines, which props.conf's comment promises to break and time the same way).
    props = read_conf(DEFAULT / "props.conf")
    index_time = [
        (stanza, key)
        for stanza, settings in props.items()
        for key in settings
        if key in INDEX_TIME or key.startswith("TRANSFORMS-")
    ]
    if index_time:
        assert {"_indexers", "_forwarders"} <= set(manifest["targetWorkloads"]), index_time[:3]
    license_text = info["license"]["text"]
    assert license_text is None or (ROOT / license_text).is_file()
    assert (ROOT / info["releaseNotes"]["text"]).is_file()


def test_the_apps_own_specs_are_well_formed() -> None:
    """README/*.spec as btool and Splunk's docs read them: each setting once per stanza, with a
    type after its ``=`` and ``*`` lines saying what it is; every shipped conf of the app's own
    (no Splunk spec) has its README spec."""
    specs = sorted(APP_SPECS.glob("*.spec"))
    assert specs
    for path in specs:
        spec = Spec().read(path.read_text(encoding="utf-8"))
        for stanza, settings in [("(global)", spec.global_keys), *spec.stanzas.items()]:
            keys = [s.pattern.pattern for s in settings]
            assert len(keys) == len(set(keys)), f"{path.name} [{stanza}]: a setting declared twice"
            for setting in settings:
                assert setting.type, f"{path.name} [{stanza}] {setting.pattern.pattern}: no type"
                assert setting.notes, f"{path.name} [{stanza}] {setting.pattern.pattern}: undocumented"
    own = [
        p.name for p in DEFAULT.glob("*.conf") if not (SPLUNK_SPECS / "spec-10.4" / f"{p.name}.spec").exists()
    ]
    assert own and all((APP_SPECS / f"{name}.spec").exists() for name in own), own


def test_no_deprecated_setting_is_shipped_unless_kept_on_purpose() -> None:
    """A setting whose spec, in any version, says DEPRECATED is shipped only where listed in
    DEPRECATED_KEPT (with the reason), and each listed one is still deprecated and shipped."""
    seen = set()
    for version in VERSIONS:
        for where, conf, stanzas in shipped_confs():
            spec = spec_for(conf, version)
            for stanza, settings in stanzas.items():
                for key in settings:
                    notes = " ".join(n for s in spec.settings(stanza, key) for n in s.notes)
                    if "DEPRECATED" in notes:
                        assert (conf, key) in DEPRECATED_KEPT, (
                            f"{where} [{stanza}] {key}: deprecated in {version}"
                        )
                        seen.add((conf, key))
    assert seen == set(DEPRECATED_KEPT), f"no longer deprecated or shipped: {set(DEPRECATED_KEPT) - seen}"


# The value types of the specs' ``key = <type>`` lines this check knows; any other type (a
# <string>, a <cron string>, ...) is not checked here. Splunk reads a boolean as true/false,
# 1/0, yes/no, t/f, y/n in any case.
BOOLEAN = {"true", "false", "1", "0", "yes", "no", "t", "f", "y", "n"}
VALUE_TYPES = {
    "boolean": lambda v: v.lower() in BOOLEAN,
    "bool": lambda v: v.lower() in BOOLEAN,
    "integer": lambda v: re.fullmatch(r"[+-]?\d+", v) is not None,
    "int": lambda v: re.fullmatch(r"[+-]?\d+", v) is not None,
    "unsigned integer": lambda v: v.isdigit(),
    "non-negative integer": lambda v: v.isdigit(),
    "decimal": lambda v: re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", v) is not None,
    "time-specifier": lambda v: re.fullmatch(r"\d+(s|m|h|d|w|mon|y)?", v) is not None,
    "version-number": lambda v: re.fullmatch(r"\d+(\.\d+){1,2}([-+.]\w+)*", v) is not None,
    "json": lambda v: _is_json(v),
    "YYYY-MM-DD": lambda v: re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", v) is not None,
    # a time modifier: now, epoch seconds, [+-]<n><unit>, a snap @<unit>, or both
    "time-str": is_time_modifier,
    "regular expression": lambda v: pcre(v) is not None,
    "regex": lambda v: pcre(v) is not None,
    "strptime-style format": lambda v: re.fullmatch(rf"(?:[^%]|%(?:{STRPTIME}))*", v) is not None,
    "app-name": lambda v: re.fullmatch(r"[A-Za-z0-9][\w.-]*", v) is not None,
}
# Splunk's date and time format variables (Search Reference, "Date and time format variables"):
# the C strptime set Splunk reads, its subseconds %N / %<n>N / %Q / %<n>Q, %Ez and %:z-style
# offsets; anything else (%L, %i, a trailing %) is not a time Splunk finds.
STRPTIME = r"[aAbBcCdDeFfgGhHIjklmMnpsStTuUVwWxXyYzZ+%]|\d*[NQ]|Ez|:{1,3}z"
# A spec type spelled as a form, not a <type>: FIELDALIAS-<class>.
FIELDALIAS = re.compile(r"\S+\s+(?:AS|ASNEW)\s+\S+(?:\s+\S+\s+(?:AS|ASNEW)\s+\S+)*", re.I)
FORMS = {"(<orig_field_name> AS|ASNEW <new_field_name>)+": lambda v: FIELDALIAS.fullmatch(v) is not None}


def _is_json(value: str) -> bool:
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def fits(value: str, setting: Setting) -> bool | None:
    """Whether ``value`` is of the spec line's type: one of its literal alternatives
    (``number of events | number of hosts``, ``{default|python3}``, ``[0 | 1]``) or a known
    ``<type>``; a comma-separated list item by item against the quoted values its notes list
    (``* "3.9": ...``). None: a type this check does not know."""
    text = setting.type.strip()
    if text in FORMS:
        return FORMS[text](value)
    if text[:1] + text[-1:] in ("[]", "{}"):
        text = text[1:-1]
    either = re.fullmatch(r"<([\w-]+(?:\|[\w-]+)+)>", text)  # <enabled|disabled>
    text = either.group(1) if either else text
    if text == "<comma-separated list>":
        listed = [m.group(1) for n in setting.notes for m in [re.match(r'"([^"]+)":', n)] if m]
        return all(item.strip() in listed for item in value.split(",")) if listed else None
    alternatives = [a.strip() for a in text.split("|")]
    if set(alternatives) <= {"true", "false", "0", "1"}:
        return value.lower() in BOOLEAN
    unknown = False
    for alternative in alternatives:
        named = re.fullmatch(r"<([^<>]+)>", alternative)
        if named and named.group(1) in VALUE_TYPES:
            if VALUE_TYPES[named.group(1)](value):
                return True
        elif named or "<" in alternative:
            unknown = True
        elif value == alternative:
            return True
    return None if unknown else False


def badly_typed(version: str) -> list[tuple[str, str, str, str]]:
    """(where, stanza, setting, value) whose value fits none of the spec lines declaring it (an
    empty value is unset: Splunk's default applies)."""
    found = []
    for where, conf, stanzas in shipped_confs():
        spec = spec_for(conf, version)
        for stanza, settings in stanzas.items():
            for key, value in settings.items():
                declared = spec.settings(stanza, key)
                if value and declared and not any(fits(value, s) is not False for s in declared):
                    found.append((where, stanza, key, value))
    return found


@pytest.mark.parametrize("version", VERSIONS)
def test_every_shipped_value_is_of_its_spec_type(version: str) -> None:
    assert badly_typed(version) == [], f"Splunk {version}: values outside the spec's type"


def test_the_type_check_on_known_shapes() -> None:
    spec = Spec().read(TYPED_LIKE)
    checks = {
        ("on", "1"): True,
        ("on", "maybe"): False,
        ("sched", "1"): True,
        ("sched", "true"): True,
        ("sched", "2"): False,
        ("count", "number of events"): True,
        ("count", "number of event"): False,
        ("py", "python3"): True,
        ("py", "python3.13"): False,
        ("required", "3.9, 3.13"): True,
        ("required", "3.9, 3.12"): False,
        ("period", "4h"): True,
        ("period", "4 hours"): False,
        ("track", "auto"): True,
        ("track", "sometimes"): False,
        ("interval", "300"): True,
        ("interval", "*/5 * * * *"): None,
        ("accelerated", '{"ip": 1}'): True,
        ("accelerated", "{ip: 1}"): False,
        ("name", "anything"): None,
        ("tag", "enabled"): True,
        ("tag", "on"): False,
        ("since", "-75m@m"): True,
        ("since", "@h"): True,
        ("since", "0"): True,
        ("since", "-7d@w1"): True,
        ("since", "-75x"): False,
        ("since", "yesterday"): False,
        ("breaker", "([\\r\\n]+)"): True,
        ("breaker", "(?<name>x)"): True,
        ("breaker", "([\\r\\n]+"): False,
        ("time", "%Y-%m-%dT%H:%M:%S%Z"): True,
        ("time", "%Y-%m-%d %H:%M:%S,%3N"): True,
        ("time", "%s.%6Q %:z"): True,
        ("time", "%Y-%m-%dT%H:%M:%S.%L"): False,
        ("time", "%Y-%m-%d %"): False,
        ("alias", "a AS b"): True,
        ("alias", "userIdentity.arn AS user_arn x ASNEW y"): True,
        ("alias", "a AS b c"): False,
        ("alias", "a=b"): False,
        ("app", "TA-aws-iam-error-spike"): True,
        ("app", "my app"): False,
    }
    for (key, value), expected in checks.items():
        (setting,) = spec.settings("s", key)
        assert fits(value, setting) is expected, (key, value)


TYPED_LIKE = """\
[<stanza>]
on = <boolean>
sched = [0 | 1]
count = number of events | number of hosts | custom | always
* How to count.
py = {default|python|python3|python3.9}
required = <comma-separated list>
* The following values are supported:
  * "3.9": Python 3.9.
  * "3.13": Python 3.13.
period = <time-specifier>
track = <boolean> | auto
interval = [<decimal>|<cron schedule>]
accelerated = <json>
name = <string>
tag = <enabled|disabled>
since = <time-str>
breaker = <regular expression>
time = <strptime-style format>
alias = (<orig_field_name> AS|ASNEW <new_field_name>)+
app = <app-name>
"""


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


def line_breaker_problem(value: str) -> str | None:
    """props.conf.spec, LINE_BREAKER: "The regex must contain a capturing group"; the first
    group's text is what lies between two events and is dropped."""
    compiled = pcre(value)
    if compiled is None:
        return "not a regular expression"
    return None if compiled.groups >= 1 else "no capturing group"


@pytest.mark.parametrize("version", VERSIONS)
def test_every_line_breaker_has_a_capturing_group(version: str) -> None:
    said = " ".join(n for s in spec_for("props.conf", version).settings("x", "LINE_BREAKER") for n in s.notes)
    assert "The regex must contain a capturing group" in said, version
    breakers = [
        (s, v["LINE_BREAKER"]) for s, v in read_conf(DEFAULT / "props.conf").items() if "LINE_BREAKER" in v
    ]
    assert breakers
    assert [(s, b) for s, b in breakers if line_breaker_problem(b)] == []


def test_the_line_breaker_check_on_known_shapes() -> None:
    assert line_breaker_problem("([\\r\\n]+)") is None
    assert line_breaker_problem("(?<brk>[\\r\\n]+)") is None
    assert line_breaker_problem("[\\r\\n]+") == "no capturing group"
    assert line_breaker_problem("(?:[\\r\\n]+)") == "no capturing group"
    assert line_breaker_problem("([\\r\\n]+") == "not a regular expression"
