"""Chapter 2's committed full-scale study is the study its command makes with the
current preset: every seed, horizon, model and null control, each scored at the
five probes, at the preset's epochs. The test fails when the preset changes
without the committed run being made again."""

import pytest

import refimpl
from refimpl.experiments import hidden_physics as hp
from refimpl.explain import erf_study as study
from refimpl.pde import wave
from refimpl.results import committed

FULL = refimpl.preset(hp.PRESETS, "full")


@pytest.fixture(scope="module")
def rows():
    run = committed(hp.TOPIC, columns=hp.COLUMNS)
    if run is None:
        pytest.skip("no full-scale study committed")
    assert "python -m refimpl.experiments.hidden_physics --scale full" in run.readme
    return run.rows


def test_every_seed_horizon_model_and_probe_once(rows):
    names = hp.cell_names(FULL)
    assert set(FULL["models"]) <= set(names)  # the attention model is there
    got = sorted((int(r["seed"]), float(r["t"]), r["model"], r["probe"]) for r in rows)
    want = sorted((s, float(t), m, k) for s in FULL["seeds"] for t in FULL["times"]
                  for m in names for k in wave.PROBES)
    assert got == want
    for r in rows:
        assert int(r["epochs"]) == (0 if r["model"] == hp.BLOB else FULL["epochs"])


def test_the_chapters_comparisons_come_from_these_rows(rows):
    assert study.score_table(rows).count("\n") >= len(hp.cell_names(FULL))
    controls = (hp.BLOB, f"{hp.SHUFFLED} (shuffled)")
    models = [r for r in rows if r["model"] not in controls]
    for metric in ("r_proj", "test_error"):
        comps = study.paired_comparisons(models, metric)
        # every model but the best, at each horizon
        assert len(comps) == len(FULL["times"]) * (len(FULL["models"]) - 1)
        assert all(c["paired"].n == len(FULL["seeds"]) for c in comps)
