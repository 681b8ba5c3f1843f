import random

import numpy as np
import pytest
import torch

import refimpl


def test_scale_default_follows_cuda(monkeypatch):
    monkeypatch.delenv("REFIMPL_SCALE", raising=False)
    assert refimpl.scale() == ("full" if torch.cuda.is_available() else "book")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert refimpl.scale() == "full"  # paper is never a default
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert refimpl.scale() == "book"


@pytest.mark.parametrize("value", ["smoke", "book", "full", "paper", " Smoke "])
def test_scale_reads_environment(monkeypatch, value):
    monkeypatch.setenv("REFIMPL_SCALE", value)
    assert refimpl.scale() == value.strip().lower()


def test_unknown_scale_lists_valid_ones(monkeypatch):
    monkeypatch.setenv("REFIMPL_SCALE", "huge")
    with pytest.raises(ValueError, match="REFIMPL_SCALE='huge'.*smoke, book, full, paper"):
        refimpl.scale()
    # an explicit choice (a CLI's --scale) wins over a bad environment variable
    assert refimpl.scale("book") == "book"
    assert refimpl.preset({"smoke": 1, "book": 2, "full": 3, "paper": 4}, "full") == 3
    with pytest.raises(ValueError, match="scale='tiny'.*smoke, book, full, paper"):
        refimpl.scale("tiny")


def test_preset_picks_row_and_rejects_bad_tables(monkeypatch):
    table = {"smoke": 1, "book": 2, "full": 3, "paper": 4}
    monkeypatch.setenv("REFIMPL_SCALE", "smoke")
    assert refimpl.preset(table) == 1
    assert refimpl.preset(table, "paper") == 4
    with pytest.raises(ValueError, match="missing"):
        refimpl.preset({"smoke": 1, "book": 2, "paper": 4})
    with pytest.raises(ValueError, match="unexpected"):
        refimpl.preset({**table, "huge": 4})


def test_device_never_names_an_index(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert refimpl.device() == torch.device("cuda") and refimpl.device().index is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert refimpl.device() == torch.device("cpu")


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    refimpl.seed_everything(123)
    a = draw()
    refimpl.seed_everything(123)
    assert draw() == a
    refimpl.seed_everything(124)
    assert draw() != a
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(ValueError, match="non-negative integer"):
            refimpl.seed_everything(bad)


def test_cache_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path / "c"))
    path = refimpl.cache_dir("pde", "wave")
    assert path == tmp_path / "c" / "pde" / "wave" and path.is_dir()
