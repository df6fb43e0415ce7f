"""Fixtures for the loopback AWS endpoints: moto server, LookupEvents endpoint."""
