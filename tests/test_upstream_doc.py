"""docs/upstream-api.md, the upstream contract the code is built against: code that cites it names
sections that exist, and nothing cites research notes that are not in the repository."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.common import ROOT

DOC = ROOT / "docs" / "upstream-api.md"
# A citation: the doc's path, a comma, then section names in double quotes joined by commas or `and`.
_CITATION = re.compile(r'upstream-api\.md,\s*((?:"[^"\n]+"(?:,\s*|\s+and\s+)?)+)')
_OLD_NOTES = "runloop-api" + ".md"


def _sources() -> list[Path]:
    return sorted(path for folder in ("server", "tests", "bench") for path in (ROOT / folder).rglob("*.py"))


def _headings() -> set[str]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    return {line.lstrip("#").strip() for line in lines if line.startswith("#")}


def test_citations_name_sections_that_exist() -> None:
    cited: list[tuple[str, str]] = []
    for path in _sources():
        for match in _CITATION.finditer(path.read_text(encoding="utf-8")):
            cited += [(str(path.relative_to(ROOT)), name) for name in re.findall(r'"([^"\n]+)"', match.group(1))]
    assert len(cited) >= 10, cited
    headings = _headings()
    missing = [(where, name) for where, name in cited if name not in headings]
    assert not missing, f"no such section in docs/upstream-api.md: {missing}"


def test_nothing_cites_notes_outside_the_repository() -> None:
    stale = [str(path.relative_to(ROOT)) for path in _sources() if _OLD_NOTES in path.read_text(encoding="utf-8")]
    assert not stale, f"{_OLD_NOTES} is not in the repository; cite docs/upstream-api.md instead: {stale}"


def test_in_page_links_point_at_headings() -> None:
    text = DOC.read_text(encoding="utf-8")
    anchors = {re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-") for heading in _headings()}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and links <= anchors, links - anchors
