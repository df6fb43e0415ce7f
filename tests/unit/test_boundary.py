"""The core package ``bin/iamspike`` never imports splunklib nor the Splunk adapters.

The walker reads every module with ``ast`` (no import, so a broken module is still checked) and
resolves relative imports against the module's package, so ``from .. import iamspike_splunk``
is caught as well as ``import splunklib.client`` or ``importlib.import_module("splunklib")``.
"""

from __future__ import annotations

import ast
import os

import pytest

BIN = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bin")
CORE = "iamspike"
FORBIDDEN = ("splunklib", "iamspike_splunk")


def imported_modules(source: str, module: str) -> set[str]:
    """Absolute names of every module ``source`` imports; ``module`` is its dotted name
    (``iamspike.engine``; a package's ``__init__`` is named after the package plus ``.__init__``)."""
    package = module.rsplit(".", 1)[0] if "." in module else ""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                up = node.level - 1  # `from .` stays in the package, each extra dot goes one up
                base_parts = parts[: len(parts) - up] if up <= len(parts) else []
                base = ".".join([*base_parts, node.module] if node.module else base_parts)
            else:
                base = node.module or ""
            if base:
                found.add(base)
            found.update(f"{base}.{alias.name}" if base else alias.name for alias in node.names)
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value)
    return found


def _is_dynamic_import(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in ("import_module", "__import__")


def violations(source: str, module: str) -> list[str]:
    """The imports of ``source`` that cross the boundary (sorted)."""
    return sorted(
        name
        for name in imported_modules(source, module)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    )


def core_modules(bin_dir: str = BIN) -> list[tuple[str, str]]:
    """(dotted module name, path) of every ``.py`` under ``bin/iamspike``."""
    modules = []
    for root, dirs, files in os.walk(os.path.join(bin_dir, CORE)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                rel = os.path.relpath(path, bin_dir)[: -len(".py")]
                modules.append((rel.replace(os.sep, "."), path))
    return modules


WALKER_CASES = [
    # (source, module, expected violations)
    ("import splunklib", "iamspike.engine", ["splunklib"]),
    ("import splunklib.searchcommands as sc", "iamspike.engine", ["splunklib.searchcommands"]),
    ("from splunklib.client import connect", "iamspike.engine", ["splunklib.client",
                                                                 "splunklib.client.connect"]),
    ("from iamspike_splunk import vendor", "iamspike.engine", ["iamspike_splunk", "iamspike_splunk.vendor"]),
    ("from .. import iamspike_splunk", "iamspike.engine", ["iamspike_splunk"]),
    ("from ...iamspike_splunk.chunked import run", "iamspike.ingest.s3", ["iamspike_splunk.chunked",
                                                                          "iamspike_splunk.chunked.run"]),
    ("import importlib\nimportlib.import_module('splunklib.results')", "iamspike.x", ["splunklib.results"]),
    ("mod = __import__('iamspike_splunk')", "iamspike.x", ["iamspike_splunk"]),
    ("def f():\n    import splunklib\n", "iamspike.x", ["splunklib"]),
    ("try:\n    import splunklib\nexcept ImportError:\n    pass\n", "iamspike.x", ["splunklib"]),
    # allowed
    ("from . import baseline\nfrom .scoring import score", "iamspike.engine", []),
    ("from .. import engine", "iamspike.ingest.s3", []),
    ("import numpy as np\nimport json", "iamspike.baseline", []),
    ("import splunklibrary\nimport iamspike_splunky", "iamspike.x", []),
    ("# import splunklib\ntext = 'import splunklib'", "iamspike.x", []),
]  # fmt: skip


@pytest.mark.parametrize(("source", "module", "expected"), WALKER_CASES)
def test_walker_finds_exactly_the_crossing_imports(source: str, module: str, expected: list[str]) -> None:
    assert violations(source, module) == sorted(expected)


def test_walker_sees_the_core_package() -> None:
    names = [name for name, _ in core_modules()]
    assert "iamspike.__init__" in names


@pytest.mark.parametrize(("module", "path"), core_modules(), ids=[name for name, _ in core_modules()])
def test_core_module_does_not_import_splunk(module: str, path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        source = handle.read()
    assert violations(source, module) == [], f"{path} crosses the core boundary"
