"""Chapter 1's committed full-scale study is the study its command makes with the
current preset: every seed of every model on every task, at the preset's epochs
and parameter counts. The test fails when the preset changes without the
committed run being made again, i.e. when the chapter would show a table its
command no longer reproduces."""

import pytest

from refimpl.experiments import operator_classification as ex
from refimpl.operators import models as zoo
from refimpl.operators.benchmark import paired_rows, summary_rows
from refimpl.results import committed

FULL = ex.PRESETS["full"]
DATASETS = ("wave t=1", "wave t=5", "Darcy")


@pytest.fixture(scope="module")
def rows():
    run = committed(ex.TOPIC, columns=ex.COLUMNS)
    if run is None:
        pytest.skip("no full-scale study committed")
    assert "python -m refimpl.experiments.operator_classification --scale full" \
        in run.readme
    return run.rows


def test_every_seed_of_every_model_on_every_task_once(rows):
    got = sorted((int(r["seed"]), r["model"], r["dataset"]) for r in rows)
    want = sorted((s, m, d) for s in FULL["seeds"] for m in FULL["models"]
                  for d in DATASETS)
    assert got == want
    assert {int(r["epochs"]) for r in rows} == {FULL["epochs"]}
    assert {r["scale"] for r in rows} == {"full"}


def test_parameter_counts_are_the_presets(rows):
    for model, cfg in FULL["models"].items():
        n = getattr(zoo, model)(1, 1, **cfg).n_params
        assert {int(r["n_params"]) for r in rows if r["model"] == model} == {n}, model


def test_the_chapters_tables_come_from_these_rows(rows):
    summary = summary_rows(rows)
    assert len(summary) == len(DATASETS) * len(FULL["models"])
    assert all(s["seeds"] == len(FULL["seeds"]) for s in summary)
    pairs = paired_rows(rows)
    # every model but the best of each task, against that best
    assert len(pairs) == len(DATASETS) * (len(FULL["models"]) - 1)
    conv = committed(ex.TOPIC, name="convergence.csv")
    if conv is not None:
        assert {c["model"] for c in conv.rows} <= set(FULL["models"])
        assert {c["dataset"] for c in conv.rows} <= set(DATASETS)
