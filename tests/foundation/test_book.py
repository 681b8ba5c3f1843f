"""The book's invariants: paired notebooks in sync and without outputs, the
chapter template, one repository URL behind every Colab link, one bibliography."""

import re
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = yaml.safe_load((REPO / "_config.yml").read_text())
TOC = yaml.safe_load((REPO / "_toc.yml").read_text())


def _toc_files(node) -> list[str]:
    files = []
    if isinstance(node, dict):
        if "file" in node:
            files.append(node["file"])
        for value in node.values():
            files += _toc_files(value)
    elif isinstance(node, list):
        for value in node:
            files += _toc_files(value)
    return files


TOC_FILES = [TOC["root"]] + _toc_files(TOC.get("parts", []))
CHAPTERS = sorted(REPO / f"{f}.ipynb" for f in TOC_FILES if (REPO / f"{f}.ipynb").exists())
ALL_NOTEBOOKS = sorted((REPO / "book").rglob("*.ipynb"))


def test_every_toc_entry_exists_once():
    for f in TOC_FILES:
        matches = [p for p in (REPO / f).parent.glob(Path(f).name + ".*")
                   if p.suffix in (".md", ".ipynb")]
        assert len(matches) == 1, f"{f}: expected one .md or .ipynb, found {matches}"
    assert CHAPTERS, "no chapter notebooks in _toc.yml"
    assert {p for p in ALL_NOTEBOOKS if ".ipynb_checkpoints" not in str(p)} == set(CHAPTERS)


@pytest.mark.parametrize("nb_path", ALL_NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_no_outputs(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{nb_path.name}: code cell {i} has outputs"
            assert cell.execution_count is None, f"{nb_path.name}: cell {i} was run"


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.name)
def test_notebook_is_in_sync_with_its_py_twin(nb_path):
    py = nb_path.with_suffix(".py")
    assert py.exists(), f"{nb_path.name} has no py:percent twin"
    a, b = jupytext.read(nb_path), jupytext.read(py)
    assert [(c.cell_type, c.source) for c in a.cells] == \
        [(c.cell_type, c.source) for c in b.cells], \
        f"{nb_path.name} and {py.name} differ: run `jupytext --sync {nb_path}`"
    assert [c.metadata.get("tags", []) for c in a.cells] == \
        [c.metadata.get("tags", []) for c in b.cells]
    # figure alt text and captions (myst-nb cell metadata) live in both files
    assert [c.metadata.get("mystnb") for c in a.cells] == \
        [c.metadata.get("mystnb") for c in b.cells], \
        f"{nb_path.name} and {py.name} differ in mystnb cell metadata"


def _repo_parts():
    url = CONFIG["repository"]["url"]
    m = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+)", url)
    assert m, f"repository.url {url!r} must be a GitHub URL for Colab"
    return url, m.group(1), m.group(2), CONFIG["repository"]["branch"]


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.name)
def test_colab_links_derive_from_the_repository_url(nb_path):
    url, org, repo, branch = _repo_parts()
    nb = nbformat.read(nb_path, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    for link in re.findall(r"https://colab\.research\.google\.com/github/[^)\s\"]+", text):
        rel = nb_path.relative_to(REPO).as_posix()
        assert link == f"https://colab.research.google.com/github/{org}/{repo}/blob/{branch}/{rel}"
    for pin in re.findall(r"git\+(https://github\.com/[^@\s\"]+)@", text):
        assert pin == url, f"{nb_path.name} installs from {pin}, _config.yml says {url}"
    assert "git+" + url in text, f"{nb_path.name} has no Colab install cell from {url}"
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert "path_to_book" not in CONFIG["repository"]


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_template(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    assert nb.metadata.get("accelerator") == "GPU"
    assert nb.metadata.get("colab", {}).get("gpuType")
    first_md = next(c for c in nb.cells if c.cell_type == "markdown")
    assert first_md.source.startswith("# ") and "Audience & Objectives" in first_md.source
    code = [c for c in nb.cells if c.cell_type == "code"]
    install = code[0]
    assert "NBVAL_SKIP" in install.source and "google.colab" in install.source
    assert "remove-cell" in install.metadata.get("tags", [])
    assert "pip install" in install.source and "torch" not in install.source.split(
        "pip install", 1)[1].split("@", 1)[0].replace("torch-geometric", "")
    setup = code[1].source
    for needle in ("refimpl.device()", "refimpl.preset(", "refimpl.seed_everything(",
                   "refimpl.scale()"):
        assert needle in setup, f"{nb_path.name}: setup cell lacks {needle}"
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for heading in ("## Summary", "## Exercises", "## References"):
        assert heading in markdown, f"{nb_path.name} lacks {heading!r}"
    assert "{exercise}" in markdown and "{solution}" in markdown
    assert markdown.index("## Summary") < markdown.index("## Exercises") \
        < markdown.index("## References")
    for c in code:
        assert "cuda:0" not in c.source and ".cuda()" not in c.source


def _bib_keys() -> list[str]:
    return re.findall(r"@\w+\{([^,\s]+),", (REPO / "book" / "references.bib").read_text())


def test_one_bibliography_and_every_citation_resolves():
    keys = _bib_keys()
    assert len(keys) == len(set(keys)), "duplicate keys in references.bib"
    pages = list((REPO / "book").glob("*.md")) + CHAPTERS
    texts = {p: p.read_text() for p in pages}
    with_bib = [p.name for p, t in texts.items() if "{bibliography}" in t]
    assert with_bib == ["references.md"]
    cited = set()
    for t in texts.values():
        for group in re.findall(r"\{cite(?::[pt])?\}`([^`]+)`", t):
            cited.update(k.strip() for k in group.split(","))
    assert cited, "no citations found"
    assert cited <= set(keys), f"unknown citation keys: {sorted(cited - set(keys))}"


def test_config_fails_loudly():
    ex = CONFIG["execute"]
    assert ex["raise_on_error"] is True and ex["allow_errors"] is False
    assert ex["timeout"] >= 600 and ex["execute_notebooks"] == "cache"
    for pattern in (".venv", "_build", "**/*.py", ".pytest_cache"):
        assert pattern in CONFIG["exclude_patterns"]
    assert set(CONFIG["sphinx"]["extra_extensions"]) >= {"sphinx_exercise"}
    exts = CONFIG["parse"]["myst_enable_extensions"]
    assert {"amsmath", "dollarmath", "colon_fence"} <= set(exts)


def test_readme_starts_with_the_two_commands():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", readme, flags=re.S)
    assert blocks and blocks[0].split() == ["make", "book"]
    assert blocks[1].split() == ["make", "test"]
    assert "make test" in (REPO / ".ci" / "run").read_text()
