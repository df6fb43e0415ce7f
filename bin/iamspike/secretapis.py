"""The APIs that read secrets (rule P25, ``sensitive.py``), from a lookup admins can extend.

The lookup ``lookups/iamspike_sensitive_apis.csv`` (columns ``eventName[,description]``) sits
beside the error-class lookup (``failures.DEFAULT_LOOKUP``, or the one the CLI's wheel carries) and
ships with ``SECRET_APIS``. An admin adds a row for an API of their own that reads a secret (a
vault's ``GetCredentials``, say); a file the engine cannot use is a one-line
``SensitiveApisError`` (``options.parse_options`` turns it into an ``OptionError``); a missing file
means the built-in ``SECRET_APIS``. Pure Python: ``options`` reads it without numpy.
"""

from __future__ import annotations

import csv
import os
import re

from iamspike.failures import DEFAULT_LOOKUP

LOOKUP_NAME = "iamspike_sensitive_apis.csv"
# eventNames that read a secret: an instance's administrator password, an instance's user data
# (also through a launch template made from it), and the secret stores' values. The shipped
# lookup lists exactly these.
SECRET_APIS = frozenset(
    {
        "GetPasswordData",
        "DescribeInstanceAttribute",
        "GetLaunchTemplateData",
        "GetSecretValue",
        "BatchGetSecretValue",
        "GetParameter",
        "GetParameters",
        "GetParametersByPath",
    }
)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_loaded: dict[str, tuple[tuple[int, int], frozenset[str]]] = {}  # path -> (mtime, size), APIs


class SensitiveApisError(ValueError):
    """A sensitive-API lookup the engine cannot use; ``str(e)`` is one line naming the file."""


def lookup_path(error_classes: str | None = None) -> str:
    """The sensitive-API lookup beside the error-class lookup ``error_classes`` (default: the
    app's ``lookups/`` folder)."""
    return os.path.join(os.path.dirname(error_classes or DEFAULT_LOOKUP), LOOKUP_NAME)


def read_secret_apis(path: str) -> frozenset[str]:
    """The eventNames the lookup at ``path`` lists (``SECRET_APIS`` where there is no file)."""
    if not os.path.exists(path):
        return SECRET_APIS
    where = f"lookups/{os.path.basename(path)}"
    names = set()
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = [name.strip() for name in reader.fieldnames or ()]
            if "eventName" not in columns:
                raise SensitiveApisError(
                    f"{where} needs an eventName column (found: {', '.join(columns) or 'none'})"
                )
            reader.fieldnames = columns
            for row in reader:
                name = (row.get("eventName") or "").strip()
                if name and not _NAME.fullmatch(name):
                    raise SensitiveApisError(
                        f"{where} line {reader.line_num}: '{name}' is not an API name"
                        " (an eventName such as GetSecretValue)"
                    )
                if name:
                    names.add(name)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SensitiveApisError(f"{where} cannot be read: {exc}") from None
    return frozenset(names)


def secret_apis(error_classes: str | None = None) -> frozenset[str]:
    """The APIs that read secrets for a search whose error-class lookup is ``error_classes``: the
    lookup beside it, read again only when the file changes."""
    path = lookup_path(error_classes)
    try:
        stat = os.stat(path)
        stamp = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        return SECRET_APIS
    found = _loaded.get(path)
    if found is None or found[0] != stamp:
        found = _loaded[path] = (stamp, read_secret_apis(path))
    return found[1]
