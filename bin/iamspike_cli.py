"""Command line for incident responders: ``iamspike_cli.py [scan] PATH ... [--span 1h] [--format table]``.

Runs the ``iamspike`` engine on CloudTrail files (see ``iamspike/cli.py``).
"""

from __future__ import annotations

import sys

from iamspike_splunk import vendor

vendor.add_vendored_paths()

from iamspike import cli

if __name__ == "__main__":
    sys.exit(cli.main())
