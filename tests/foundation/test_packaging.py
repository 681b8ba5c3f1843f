"""The package as a Colab reader gets it: a plain (non-editable) install, a lone
notebook run from some other folder.

* the explicit package list of ``pyproject.toml`` matches the folders on disk;
* chapters 4 and 5 (their setup, data and weight-loading cells) at the book scale
  from a temporary folder against a ``pip install`` (not editable) of this
  repository, load the committed book weights (``refimpl.bookdata``) without
  training, and write nothing into the installed package or the working folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


def test_package_list_matches_the_tree():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(ROOT).parts)
               for p in (ROOT / "refimpl").rglob("__init__.py")}
    assert set(cfg["packages"]) == on_disk | {"refimpl.bookdata"}
    assert cfg["package-dir"] == {"refimpl.bookdata": "book/data"}
    assert (ROOT / "book" / "data" / "__init__.py").is_file()


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


# Run first in the kernel: fail loudly if the chapter would train, and prove where
# refimpl and its data come from.
_GUARD = """
import os, refimpl, refimpl.results
import refimpl.experiments.gaussian_shortcut as _gs, refimpl.experiments.rise as _rx
def _no_training(*a, **k):
    raise RuntimeError("the chapter tried to train instead of loading committed weights")
_gs.train_models = _no_training
_rx.train_model = _no_training
assert refimpl.__file__.startswith(os.environ["EXPECT_SITE"]), refimpl.__file__
assert str(refimpl.results.data_root()).startswith(os.environ["EXPECT_SITE"])
"""


def _loading_cells(path: Path) -> nbformat.NotebookNode:
    """The chapter's setup cell, its data cell and its weight-loading cells, in
    order (the studies in between are not needed to load weights)."""
    nb = nbformat.read(path, as_version=4)
    keep = ("refimpl.preset(", "load_data(", "load_or_train(")
    code = [c for c in nb.cells if c.cell_type == "code"
            and any(k in c.source for k in keep)]
    assert any("load_or_train(" in c.source for c in code), path
    nb.cells = [nbformat.v4.new_code_cell(_GUARD)] + code
    return nb


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    # build from a copy: setuptools writes build/ into the source folder
    src = tmp_path_factory.mktemp("src") / "repo"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "_build", "_vendor", "build", "*.egg-info", "__pycache__",
        ".pytest_cache", ".ruff_cache"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--disable-pip-version-check",
                    "--target", str(site), str(src)], check=True, cwd=site,
                   capture_output=True, timeout=300)
    assert (site / "refimpl" / "bookdata" / "rise" / "schnet_U0_book.pt").is_file()
    assert (site / "refimpl" / "bookdata" / "gaussian_shortcut" / "full.pt").is_file()
    return site


@pytest.mark.parametrize("chapter", ["04_gaussian_shortcut_diffusion", "05_rise"])
def test_lone_notebook_loads_committed_book_weights(site, tmp_path, chapter, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    shared_cache = os.environ.get("REFIMPL_CACHE") or str(Path.home() / ".cache" / "refimpl")
    env = {"PYTHONPATH": str(site), "REFIMPL_SCALE": "book", "REFIMPL_PROGRESS": "0",
           # parsed QM9 is shared with the other tests; weights would go to the cache
           "REFIMPL_CACHE": shared_cache, "EXPECT_SITE": str(site),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    before = _snapshot(site)
    nb = _loading_cells(ROOT / "book" / f"{chapter}.ipynb")
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(work)}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "loaded" in outputs, outputs[-2000:]
    assert _snapshot(site) == before, "the notebook wrote into the installed package"
    assert not any(work.iterdir()), f"the notebook wrote into its folder: {list(work.iterdir())}"
