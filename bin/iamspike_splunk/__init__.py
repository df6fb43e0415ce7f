"""Splunk-facing adapters: vendored-library path setup, the chunked search protocol, modular
input plumbing, Splunk logging. Entry scripts in ``bin/`` call into here, and this calls the core
package ``iamspike``."""
