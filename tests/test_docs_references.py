"""Code and docs point at pages of this repository only, and every page is reachable."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCANNED = ("src", "docs", "examples", "tests", "benchmarks", "tools")
# notes that live outside the repository; spelled in pieces so this file does not match
OUTSIDE = ("ARCHITECTURE" + ".md", "DOMAIN" + ".md", ".." + "/shared")
DOCS_LINK = re.compile(r"\bdocs/([\w/-]+\.md)")


def _texts() -> list[tuple[pathlib.Path, str]]:
    files = [ROOT / "README.md"]
    for top in SCANNED:
        files += [p for p in (ROOT / top).rglob("*") if p.suffix in {".py", ".md", ".sql"}]
    return [(p, p.read_text(encoding="utf-8")) for p in files if "__pycache__" not in p.parts]


def test_nothing_cites_notes_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path, text in _texts()
        for name in OUTSIDE
        if name in text
    ]
    assert offenders == []


def test_every_docs_page_a_module_or_page_names_exists() -> None:
    missing = {
        f"{path.relative_to(ROOT)} -> docs/{page}"
        for path, text in _texts()
        for page in DOCS_LINK.findall(text)
        if not (ROOT / "docs" / page).is_file()
    }
    assert missing == set()


def test_every_docs_page_is_in_the_nav() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = set(re.findall(r"([\w/-]+\.md)\s*$", config.split("\nnav:", 1)[1], re.M))
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert pages - nav == set()
    assert {"architecture.md", "guides/pix.md", "guides/testing.md"} <= nav
