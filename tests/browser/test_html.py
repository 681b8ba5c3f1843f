"""The built HTML, parsed (no browser): no raw Markdown or LaTeX left for the reader,
every computed table a table, every local link and asset present."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from bs4 import BeautifulSoup

from .conftest import CHAPTERS, PAGES, SOURCE

#: elements whose text is code or math source, not prose
NOT_PROSE = "script, style, pre, code, .highlight, .math, mjx-container, kbd, samp"


def _soup(html_root: Path, page: str) -> BeautifulSoup:
    return BeautifulSoup((html_root / f"{page}.html").read_text(encoding="utf-8"),
                         "html.parser")


def _prose(soup: BeautifulSoup) -> BeautifulSoup:
    article = soup.select_one("article.bd-article") or soup.body
    for el in article.select(NOT_PROSE):
        el.decompose()
    return article


@pytest.mark.parametrize("page", PAGES)
def test_no_raw_markup_in_prose(html_root, page):
    """A ``$`` outside code, a ``\\(``/``\\[`` outside a math element or a
    ``|---|`` line means Markdown or LaTeX reached the reader unrendered."""
    article = _prose(_soup(html_root, page))
    problems = []
    for node in article.find_all(string=True):
        text = str(node)
        for token in ("$", "\\(", "\\)", "\\[", "\\]"):
            if token in text:
                problems.append(f"raw {token!r} in {node.parent.name}: "
                                f"{' '.join(text.split())[:100]!r}")
    for p in article.find_all("p"):
        if re.search(r"\|\s*:?-{3,}", p.get_text()):
            problems.append(f"a Markdown table as a paragraph: {p.get_text()[:100]!r}")
    assert not problems, f"{page}:\n" + "\n".join(problems)


def _computed_tables(html_root: Path, chapter: str) -> int:
    """Markdown tables among the outputs of the chapter as the build executed it,
    read back from the build's execution cache."""
    from jupyter_cache import get_cache

    cache = get_cache(html_root.parent / ".jupyter_cache")
    source = nbformat.read(SOURCE / f"{chapter}.ipynb", as_version=4)
    _, nb = cache.merge_match_into_notebook(source)
    count = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("data", {}).get("text/markdown", "")
            count += len(re.findall(r"^\|?\s*:?-{3,}:?\s*\|", text, flags=re.MULTILINE))
    return count


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_computed_tables_are_html_tables(html_root, chapter):
    """Every Markdown table that a chapter's code displays is an HTML table."""
    expected = _computed_tables(html_root, chapter)
    tables = _soup(html_root, chapter).select(".cell_output table")
    assert expected > 0, f"{chapter} computes no table?"
    assert len(tables) == expected, (
        f"{chapter}: {expected} Markdown tables in the outputs, {len(tables)} "
        "HTML tables in the page")
    for t in tables:
        assert t.select("th") and t.select("td"), f"{chapter}: a table without cells"


def _local_targets(soup: BeautifulSoup):
    for tag, attr in (("a", "href"), ("img", "src"), ("link", "href"),
                      ("script", "src")):
        for el in soup.find_all(tag):
            url = el.get(attr)
            if not url:
                continue
            parts = urlsplit(url)
            if parts.scheme or url.startswith("//"):
                continue
            yield tag, url, unquote(parts.path), parts.fragment


_IDS: dict[Path, set[str]] = {}


def _ids(path: Path) -> set[str]:
    if path not in _IDS:
        soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
        _IDS[path] = {el["id"] for el in soup.find_all(id=True)} | {
            el["name"] for el in soup.find_all("a", attrs={"name": True})}
    return _IDS[path]


@pytest.mark.parametrize("page", PAGES)
def test_local_links_and_assets_resolve(html_root, page):
    """Every relative link, image, style sheet and script of the page exists, and
    every ``#fragment`` names an element of its target page."""
    here = html_root / f"{page}.html"
    missing = []
    for tag, url, path, fragment in _local_targets(_soup(html_root, page)):
        target = (here.parent / path).resolve() if path else here
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            missing.append(f"<{tag}> {url}: no file {target}")
        elif fragment and target.suffix == ".html" and fragment not in _ids(target):
            missing.append(f"<{tag}> {url}: no id {fragment!r} in {target.name}")
    assert not missing, f"{page}:\n" + "\n".join(missing)


def test_mathjax_is_served_by_the_book(html_root):
    """Every page that loads MathJax loads the book's own copy."""
    loads = 0
    for page in PAGES:
        for script in _soup(html_root, page).find_all("script", src=True):
            if "mathjax" in script["src"].lower():
                assert not urlsplit(script["src"]).scheme, \
                    f"{page} loads MathJax from {script['src']}"
                loads += 1
    assert loads >= len(CHAPTERS)


def test_citations_are_unambiguous(html_root):
    """No two bibliography entries share an author-year label, and every in-text
    citation names its entry's label."""
    soup = _soup(html_root, "book/references")
    labels = {}
    for cit in soup.select("div.citation"):
        label = cit.select_one("span.label").get_text(strip=True).strip("[]")
        labels.setdefault(label, []).append(cit.get("id"))
    dup = {k: v for k, v in labels.items() if len(v) > 1}
    assert labels and not dup, f"labels shared by several entries: {dup}"
    label_of = {ids[0]: label for label, ids in labels.items()}
    seen = 0
    for page in PAGES:
        for a in _soup(html_root, page).select("span.bibtex-citation a"):
            target = urlsplit(a["href"]).fragment
            label = label_of.get(target)
            assert label, f"{page}: citation {a.get_text()!r} -> unknown #{target}"
            text = " ".join(a.get_text().replace("\u00a0", " ").split())
            assert text == label, f"{page}: citation {text!r} of entry {label!r}"
            seen += 1
    assert seen > 0


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapters_link_into_the_api_reference(html_root, chapter):
    """Every ``{py:...}`` role of a chapter resolved to an API page (an unresolved
    one renders as plain code and Sphinx does not warn), and each chapter has one."""
    xrefs = _soup(html_root, chapter).select("article code.xref.py")
    assert xrefs, f"{chapter} links to no API entry"
    dangling = [x.get_text() for x in xrefs
                if not (x.parent.name == "a" and "/api/" in "/" + x.parent["href"])]
    assert not dangling, f"{chapter}: unresolved API references {dangling}"


API_PAGES = [p for p in PAGES if p.startswith("book/api/")]


@pytest.mark.parametrize("page", API_PAGES)
def test_api_pages_document_objects(html_root, page):
    soup = _soup(html_root, page)
    objects = soup.select("article dl.py")
    assert objects, f"{page} documents no Python object"


def test_general_index_is_not_empty(html_root):
    soup = BeautifulSoup((html_root / "genindex.html").read_text(encoding="utf-8"),
                         "html.parser")
    assert len(soup.select("table.genindextable a")) > 100
