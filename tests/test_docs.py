"""The documentation holds together: every relative link in README.md and docs/*.md leads to a
file that exists (and to a heading in it, when it names one), every docs page opens with a table
of contents that lists its sections, and the README lists every docs page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = REPO / "docs"

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^()\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)


def prose(markdown: str) -> str:
    """The text outside fenced code blocks (a `#` there is a comment, not a heading)."""
    return _FENCE.sub("", markdown)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def headings(markdown: str) -> list[tuple[int, str]]:
    """(level, text) of every heading outside code."""
    return [(len(marks), text) for marks, text in _HEADING.findall(prose(markdown))]


def anchors(markdown: str) -> set[str]:
    """Every heading's anchor; a repeated heading gets -1, -2, … as on GitHub."""
    seen: dict[str, int] = {}
    result = set()
    for _, text in headings(markdown):
        base = slug(text)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(markdown: str) -> list[str]:
    """Targets of the inline links outside code."""
    return _LINK.findall(_INLINE_CODE.sub("", prose(markdown)))


def broken_links(page: Path) -> list[str]:
    """Each relative link of `page` whose file or heading does not exist, with the reason."""
    problems = []
    for target in links(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            problems.append(f"{page.name}: {target}: no file {linked}")
            continue
        if anchor and anchor not in anchors(linked.read_text(encoding="utf-8")):
            problems.append(f"{page.name}: {target}: no heading #{anchor} in {linked.name}")
    return problems


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("page", pages(), ids=lambda page: page.name)
def test_every_relative_link_leads_to_a_file_and_heading(page: Path) -> None:
    assert broken_links(page) == []


def test_the_checker_finds_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## A `code` heading, with punctuation!\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[fine](other.md#a-code-heading-with-punctuation) [self](#page) [web](https://x.org/y)\n"
        "[gone](missing.md) [no heading](other.md#nowhere) [no anchor here](#absent)\n"
        "`[in code](missing-too.md)`\n\n```md\n[in a block](missing-three.md)\n```\n"
    )
    assert broken_links(page) == [
        f"page.md: missing.md: no file {tmp_path / 'missing.md'}",
        "page.md: other.md#nowhere: no heading #nowhere in other.md",
        "page.md: #absent: no heading #absent in page.md",
    ]


def test_repeated_headings_get_numbered_anchors() -> None:
    assert anchors("# A\n## Rust\n## Rust\n```\n# not a heading\n```\n") == {"a", "rust", "rust-1"}


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda page: page.name)
def test_each_docs_page_lists_its_sections_in_its_contents(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    sections = [slug(heading) for level, heading in headings(text) if level == 2]
    assert sections[0] == "contents", "a docs page opens with ## Contents"
    contents = prose(text).split("## Contents", 1)[1].split("\n## ", 1)[0]
    listed = [target.lstrip("#") for target in links(contents)]
    # Every section, in order; entries for subsections may come between them.
    assert [anchor for anchor in listed if anchor in sections] == sections[1:]


def test_the_readme_lists_every_docs_page() -> None:
    listed = {target.partition("#")[0] for target in links(README.read_text(encoding="utf-8"))}
    missing = [page.name for page in DOCS.glob("*.md") if f"docs/{page.name}" not in listed]
    assert missing == []
