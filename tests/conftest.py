"""Shared fixtures. Each stand-in part keeps its fixtures in its own plugin module."""

pytest_plugins = [
    "standin.fixtures_package",
    "standin.fixtures_aws",
]
