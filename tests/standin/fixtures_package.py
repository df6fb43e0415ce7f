"""Fixtures for the built package: install into etc/apps, bare Splunk Pythons."""
