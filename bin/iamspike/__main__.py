"""``python -m iamspike scan PATH ...`` (with bin/ on the path): the CLI."""

from __future__ import annotations

import sys

from iamspike.cli import main

if __name__ == "__main__":
    sys.exit(main())
