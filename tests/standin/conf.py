"""Splunk .conf files as splunkd reads them: stanzas, ``key = value``, ``\\`` continuations."""

from __future__ import annotations

from pathlib import Path


class ConfError(ValueError):
    pass


def parse_conf(text: str, name: str = "<conf>") -> dict[str, dict[str, str]]:
    """Stanzas -> {key: value}. `#` comment lines, `\\` line continuations (newline kept), settings
    before the first stanza go to "default". Duplicate stanzas or keys are errors."""
    stanzas: dict[str, dict[str, str]] = {"default": {}}
    current = "default"
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[") and not line.rstrip().endswith("\\"):
            if not stripped.endswith("]"):
                raise ConfError(f"{name}:{i}: unclosed stanza header {stripped!r}")
            current = stripped[1:-1]
            if current in stanzas and current != "default":
                raise ConfError(f"{name}:{i}: duplicate stanza [{current}]")
            stanzas.setdefault(current, {})
            continue
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + "\n" + lines[i]
            i += 1
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfError(f"{name}:{i}: not a 'key = value' line: {stripped!r}")
        key = key.strip()
        if key in stanzas[current]:
            raise ConfError(f"{name}:{i}: duplicate key {key!r} in [{current}]")
        stanzas[current][key] = value.strip()
    return stanzas


def read_conf(path: Path) -> dict[str, dict[str, str]]:
    """The parsed file, or only an empty "default" stanza when the file does not exist."""
    return parse_conf(path.read_text(encoding="utf-8"), path.name) if path.exists() else {"default": {}}


def effective_conf(apps: list[Path], name: str) -> dict[str, dict[str, str]]:
    """``name`` (e.g. "props.conf") as splunkd merges it in the global context for the apps
    in ``apps`` (their folders side by side under etc/apps).

    Precedence, highest first: every app's ``local/``, then every app's ``default/``; within
    each layer the apps in ASCII order of their folder names (``Splunk_TA_aws`` before
    ``TA-aws-iam-error-spike``: upper-case letters sort first). A setting comes from the first
    layer that has it in that stanza; a stanza's missing settings come from the file's
    ``[default]`` stanza, merged the same way."""
    ordered = sorted(apps, key=lambda app: app.name)
    layers = [read_conf(app / folder / name) for folder in ("local", "default") for app in ordered]
    merged: dict[str, dict[str, str]] = {}
    for layer in reversed(layers):  # lowest precedence first, overwritten by higher layers
        for stanza, settings in layer.items():
            merged.setdefault(stanza, {}).update(settings)
    defaults = merged.get("default", {})
    return {
        stanza: {**defaults, **settings} if stanza != "default" else dict(settings)
        for stanza, settings in merged.items()
    }
