"""Fixtures for the tests of the built HTML book (``make browser``).

The tests read the smoke build, ``_build/smoke/_build/html`` (or the folder named
by ``BOOK_HTML``), and drive Debian's Chromium through Playwright with every
request that is not a ``file://`` URL blocked, so that they see the book as a
reader without network would. ``make browser`` sets ``BOOK_HTML`` and
``CHROMIUM``; then a missing build or browser is an error. ``BOOK_SOURCE`` names
the checkout the build was made from (default: this one), whose notebooks are
matched against the build's execution cache, e.g. ``BOOK_HTML=/tmp/clone/_build/html
BOOK_SOURCE=/tmp/clone`` for a ``make book`` in another clone. A bare ``pytest``
without them skips these tests (``make unit`` does not collect them at all).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("BOOK_HTML",
                          REPO / "_build" / "smoke" / "_build" / "html")).resolve()
REQUIRED = "BOOK_HTML" in os.environ
SOURCE = Path(os.environ.get("BOOK_SOURCE", REPO)).resolve()
SCREENSHOTS = HTML.parent.parent / "screenshots"


def _toc_files(node) -> list[str]:
    if isinstance(node, dict):
        own = [node["file"]] if "file" in node else []
        return own + [f for v in node.values() for f in _toc_files(v)]
    if isinstance(node, list):
        return [f for v in node for f in _toc_files(v)]
    return []


_TOC = yaml.safe_load((REPO / "_toc.yml").read_text())
#: every page of the book, as its path without suffix (``book/01_...``)
PAGES: list[str] = [_TOC["root"]] + _toc_files(_TOC.get("parts", []))
#: the chapter notebooks
CHAPTERS: list[str] = [p for p in PAGES if (REPO / f"{p}.ipynb").exists()]


def _need(what: str) -> None:
    if REQUIRED:
        pytest.fail(what)
    pytest.skip(what + " (set BOOK_HTML, or run `make browser`)")


@pytest.fixture(scope="session")
def html_root() -> Path:
    if not (HTML / "index.html").exists():
        _need(f"no built book at {HTML}")
    return HTML


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not path or not Path(path).exists():
        _need("Chromium not found (Debian package `chromium`)")
    return path


@pytest.fixture(scope="session")
def browser(chromium_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        # --host-resolver-rules: no name resolves, a second wall behind route()
        b = p.chromium.launch(executable_path=chromium_path, args=[
            "--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND"])
        yield b
        b.close()


class OfflinePage:
    """A Playwright page whose non-``file://`` requests are aborted and recorded,
    along with failed local requests and JavaScript errors."""

    def __init__(self, browser, width: int = 1280, height: int = 900):
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("requestfailed", lambda r: self.failed.append(r.url)
                     if r.url.startswith("file://") else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(("file://", "data:", "blob:", "about:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def open(self, html_root: Path, page: str) -> None:
        """Load ``page`` and wait until MathJax has typeset it (if it loads MathJax)."""
        self.page.goto((html_root / f"{page}.html").as_uri(), wait_until="load")
        if self.page.evaluate("() => !!document.querySelector("
                              "'script[src*=\"mathjax\"]')"):
            from playwright.sync_api import TimeoutError as PlaywrightTimeout

            try:
                self.page.wait_for_function(
                    "() => window.MathJax && MathJax.startup && "
                    "MathJax.startup.promise", timeout=30_000)
            except PlaywrightTimeout as exc:
                self.errors.append(f"MathJax did not start: {exc}")
                return
            self.page.evaluate("() => MathJax.startup.promise")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def offline_page(browser):
    pages: list[OfflinePage] = []

    def make(width: int = 1280, height: int = 900) -> OfflinePage:
        pages.append(OfflinePage(browser, width, height))
        return pages[-1]

    yield make
    for p in pages:
        p.close()
