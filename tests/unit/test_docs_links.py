"""Links between the docs: every relative link of README.md and docs/**/*.md names a file that
exists, and an anchor (``file.md#heading``, ``#heading``) names a heading of that file, by
GitHub's rule (lowercase; punctuation but '-' and '_' dropped; spaces to '-'; a repeated heading
gets -1, -2). docs/engine.md's table of the rules in force links each rule's section of
docs/rules.md this way."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"(?ms)^```.*?^```[^\n]*$")
HEADING = re.compile(r"(?m)^#{1,6}[ \t]+(.+?)[ \t#]*$")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for heading in HEADING.findall(FENCE.sub("", text)):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def broken(path: Path) -> list[str]:
    """The relative links of one markdown file that name no file, or no heading of it."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    bad = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        name, _, anchor = target.partition("#")
        linked = (path.parent / name).resolve() if name else path
        if not linked.exists():
            bad.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text(encoding="utf-8")):
            bad.append(f"{target}: no such heading")
    return bad


def test_the_anchor_rule_on_headings_of_these_docs() -> None:
    assert slug("5. Scoring (`scoring.py`: `score_counts`)") == "5-scoring-scoringpy-score_counts"
    assert slug("P27: runs beyond a principal's own habits (issue 12, `runs.py`)") == (
        "p27-runs-beyond-a-principals-own-habits-issue-12-runspy"
    )
    assert anchors("# A\n\n```\n# not a heading\n```\n## A\n## B-c\n") == {"a", "a-1", "b-c"}


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Here it is\n", encoding="utf-8")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# Top\n[ok](other.md#here-it-is) [self](#top) [web](https://example.com/x#y)\n"
        "[gone](missing.md) [no heading](other.md#nowhere) [not here](#nowhere)\n"
        "```\n[in code](missing-too.md)\n```\n",
        encoding="utf-8",
    )
    assert broken(doc) == [
        "missing.md: no such file",
        "other.md#nowhere: no such heading",
        "#nowhere: no such heading",
    ]


@pytest.mark.parametrize("path", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_names_a_file_and_heading_that_exist(path: Path) -> None:
    assert broken(path) == []
