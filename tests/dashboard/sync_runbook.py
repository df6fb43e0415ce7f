"""Copy docs/runbook.md into the shipped runbook view (run after editing the runbook).

tests/unit/test_spl_content.py fails while the two differ.
Usage: python3 tests/dashboard/sync_runbook.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VIEW = ROOT / "default" / "data" / "ui" / "views" / "iam_error_spike_runbook.xml"


def main() -> None:
    xml = VIEW.read_text(encoding="utf-8")
    match = re.search(r"(<definition><!\[CDATA\[\n)(.*?)(\n  \]\]></definition>)", xml, re.S)
    definition = json.loads(match.group(2))
    markdown = (ROOT / "docs" / "runbook.md").read_text(encoding="utf-8")
    definition["visualizations"]["viz_runbook"]["options"]["markdown"] = markdown
    body = json.dumps(definition, indent=2)
    if "]]>" in body:
        raise SystemExit("docs/runbook.md must not contain ']]>'")
    VIEW.write_text(xml[: match.start(2)] + body + xml[match.end(2) :], encoding="utf-8")


if __name__ == "__main__":
    main()
