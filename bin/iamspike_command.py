"""splunkd runs this for ``| iamspike ...`` (default/commands.conf, chunked = true)."""

from __future__ import annotations

import sys

from iamspike_splunk import vendor

vendor.add_vendored_paths()

from iamspike_splunk import chunked

if __name__ == "__main__":
    sys.exit(chunked.main())
