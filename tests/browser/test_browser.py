"""The smoke build in headless Chromium with the network off, as a reader sees it.

Every page loads without a blocked request or a JavaScript error, MathJax (the
book's own copy) typesets every formula and the page does not scroll sideways on
a phone. In every chapter, computed tables are shown as tables; every figure
loads, has alt text and is shown large enough for its labels to be read; the
Colab links point to the chapter's notebook; every solution dropdown opens. A full-page screenshot of each chapter is written to
``_build/smoke/screenshots/`` for a person to look at.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import yaml

from refimpl.plotting import use_book_style

from .conftest import CHAPTERS, PAGES, REPO, SCREENSHOTS

CONFIG = yaml.safe_load((REPO / "_config.yml").read_text())

#: smallest label, in CSS pixels, that a figure may show at 1280 px page width
MIN_LABEL_PX = 9.0

#: JavaScript: the prose text nodes (not code, not typeset math) that still hold
#: TeX delimiters or a dollar sign
_RAW_TEX = """() => {
  const root = document.querySelector('article.bd-article') || document.body;
  const skip = 'pre, code, script, style, mjx-container, .highlight';
  const bad = [];
  const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const n = walk.currentNode;
    if (n.parentElement.closest(skip)) continue;
    const t = n.textContent;
    if (/\\\\\\(|\\\\\\[|\\$/.test(t)) bad.push(t.trim().slice(0, 80));
  }
  return bad;
}"""


def _smallest_label_px_at_natural_size() -> float:
    """Pixel height of the smallest font of the book's matplotlib style, in an
    output image shown at its natural size (points x dpi / 72)."""
    with plt.rc_context():
        use_book_style()
        rc = plt.rcParams
        sizes = [rc[k] for k in ("xtick.labelsize", "ytick.labelsize",
                                 "legend.fontsize", "axes.labelsize")]
        points = min(s for s in sizes if isinstance(s, (int, float)))
        return points * rc["figure.dpi"] / 72


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_offline_with_typeset_math(html_root, offline_page, page):
    p = offline_page()
    p.open(html_root, page)
    assert not p.failed, f"{page}: local files failed to load: {p.failed}"
    assert not p.blocked, f"{page}: requests to the network: {p.blocked}"
    assert not p.errors, f"{page}: JavaScript errors: {p.errors}"
    n_math = p.page.locator(".math").count()
    if page in CHAPTERS:
        assert n_math > 0, f"{page}: a chapter without math?"
    typeset = p.page.locator(".math mjx-container").count()
    assert typeset == n_math, f"{page}: {typeset} of {n_math} formulas typeset"
    raw = p.page.evaluate(_RAW_TEX)
    assert not raw, f"{page}: raw TeX in the rendered page: {raw[:5]}"

    # a phone-sized screen: no sideways scrolling of the page itself (code
    # blocks and wide tables scroll inside their own boxes)
    p.page.set_viewport_size({"width": 390, "height": 844})
    p.page.wait_for_timeout(200)
    width = p.page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"{page}: the page is {width} px wide on a 390 px screen"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_as_a_reader_sees_it(html_root, offline_page, chapter):
    p = offline_page(1280, 900)
    p.open(html_root, chapter)
    page = p.page

    # tables of computed results are tables, and shown
    n_tables = page.locator(".cell_output table").count()
    assert n_tables > 0, f"{chapter}: no table in the cell outputs"
    assert page.locator(".cell_output table").first.is_visible()

    # every image loads (eagerly, so that lazy ones count too)
    page.evaluate("() => document.querySelectorAll('img').forEach("
                  "i => i.loading = 'eager')")
    page.wait_for_function("() => [...document.images].every(i => i.complete)",
                           timeout=30_000)
    broken = page.evaluate("() => [...document.images].filter("
                           "i => !(i.naturalWidth > 0)).map(i => i.src)")
    assert not broken, f"{chapter}: images that did not load: {broken}"

    # figures: meaningful alt text, shown large enough to read their labels
    figures = page.evaluate("""() => [...document.querySelectorAll(
        '.cell_output img')].map(i => ({src: i.src, alt: i.alt,
        natural: i.naturalWidth, shown: i.getBoundingClientRect().width}))""")
    label_px = _smallest_label_px_at_natural_size()
    for fig in figures:
        name = fig["src"].rsplit("/", 1)[-1]
        alt = fig["alt"].strip()
        assert len(alt) >= 15 and "_images/" not in alt and not alt.endswith(
            (".png", ".svg")), f"{chapter}: figure {name} has alt text {alt!r}"
        shown_px = label_px * min(1.0, fig["shown"] / fig["natural"])
        assert shown_px >= MIN_LABEL_PX - 0.5, (
            f"{chapter}: figure {name} ({fig['natural']} px) is shown "
            f"{fig['shown']:.0f} px wide: its smallest labels are {shown_px:.1f} px")

    # the Colab links (launch button and badge) open this chapter's notebook
    org_repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    want = (f"{CONFIG['launch_buttons']['colab_url']}/github/{org_repo}/blob/"
            f"{CONFIG['repository']['branch']}/{chapter}.ipynb")
    colab = page.evaluate("() => [...document.querySelectorAll("
                          "'a[href*=\"colab.research.google.com\"]')].map(a => "
                          "({href: a.href, launch: a.matches('.dropdown-item')}))")
    assert any(a["launch"] for a in colab), f"{chapter}: no Colab launch button"
    assert all(a["href"] == want for a in colab), f"{chapter}: {colab} != {want}"

    # every solution dropdown starts closed and opens on a click
    solutions = page.locator(".solution")
    assert solutions.count() > 0, f"{chapter}: no solutions"
    assert page.locator(".solution.dropdown").count() == solutions.count(), \
        f"{chapter}: a solution that is not a dropdown"
    for i in range(solutions.count()):
        sol = solutions.nth(i)
        body = sol.locator("section").first
        assert not body.is_visible(), f"{chapter}: solution {i + 1} starts open"
        sol.locator("button.toggle-button").click(timeout=5_000)
        body.wait_for(state="visible", timeout=5_000)

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{chapter.rsplit('/', 1)[-1]}.png",
                    full_page=True)
