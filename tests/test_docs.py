"""The design notes the code cites are in the repository: every design-notes anchor named in
the code exists, and nothing cites documents a clone does not have."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for folder in ("k2m_core", "k2m_cli", "tests", "benchmarks", "examples")
           for p in sorted((ROOT / folder).rglob("*")) if p.suffix in (".py", ".md", ".sh", ".toml")]


def test_every_cited_design_anchor_exists():
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', (ROOT / "docs" / "design.md").read_text(encoding="utf-8")))
    assert {"keypoints", "dataset", "tokenizer", "ref-momask"} <= anchors
    cited = {(path.relative_to(ROOT).as_posix(), anchor) for path in SOURCES
             for anchor in re.findall(r"docs/design\.md#([a-z0-9-]+)", path.read_text(encoding="utf-8"))}
    assert len(cited) > 40
    assert sorted(c for c in cited if c[1] not in anchors) == []


def test_no_citations_of_documents_outside_the_repository():
    pattern = re.compile(r"\b(SPEC|REFERENCE)(\.md)? ?§|shared/design")
    found = [p.relative_to(ROOT).as_posix() for p in SOURCES
             if p != Path(__file__).resolve() and pattern.search(p.read_text(encoding="utf-8"))]
    assert found == []
