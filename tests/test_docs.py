"""README stays a five-minute read, and every page it sends a reader to (and every page those link) exists,
down to the section named after '#'."""
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README_MAX_LINES = 150
LINK = re.compile(r"\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """The id GitHub gives a Markdown heading: lower case, punctuation dropped (hyphens and underscores kept),
    spaces turned into hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set:
    return {github_anchor(line.lstrip("#")) for line in page.read_text(encoding="utf-8").splitlines()
            if re.match(r"#{1,6} ", line)}


def local_links(page: Path):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if not re.match(r"[a-z]+://", target):
            yield target


def test_readme_is_at_most_150_lines():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"


def test_every_docs_page_is_reachable_from_readme():
    linked = {(REPO / t.split("#")[0]).resolve() for t in local_links(REPO / "README.md") if t.split("#")[0]}
    pages = {p.resolve() for p in (REPO / "docs").glob("*.md")}
    reachable = set(linked)
    for page in list(linked):  # one hop further: a page README links may link the rest
        if page.suffix == ".md" and page.is_file():
            reachable |= {(page.parent / t.split("#")[0]).resolve() for t in local_links(page) if t.split("#")[0]}
    missing = sorted(p.name for p in pages - reachable)
    assert not missing, f"docs pages no reader can reach from README.md: {missing}"


@pytest.mark.parametrize("page", [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_links_resolve_to_files_and_sections(page):
    broken = []
    for target in local_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target} (no file {file})")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target} (no section #{anchor} in {file.name})")
    assert not broken, f"{page.name}: broken links: {broken}"
