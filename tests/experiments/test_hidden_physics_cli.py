"""The chapter-2 driver: rows, columns, controls and resume (smoke sizes)."""

import math

import pytest

import refimpl
from refimpl.experiments import hidden_physics as hp
from refimpl.explain.erf_study import record_rows
from refimpl.stats import read_csv


@pytest.fixture
def tiny(monkeypatch):
    P = dict(hp.PRESETS["smoke"], times=(1.0,), models=("FNO", "U-Net"),
             n_train=12, n_val=2, n_test=4, n_explain=2)
    monkeypatch.setitem(hp.PRESETS, "smoke", P)
    return P


def test_presets_have_every_scale_and_full_is_real():
    assert set(hp.PRESETS) == set(refimpl.SCALES)
    full, book = hp.PRESETS["full"], hp.PRESETS["book"]
    assert full is not book and len(full["seeds"]) >= 3
    assert full["n_train"] * full["epochs"] > book["n_train"] * book["epochs"]
    for P in hp.PRESETS.values():
        assert 1.0 in P["times"] and 5.0 in P["times"]  # both horizons
        assert set(P["models"]) <= set(hp.MODELS)
    # every spatial and functional model of the study, CNO included, at full
    assert {"U-Net", "CNO", "FNO", "DeepONet", "Attention"} <= set(full["models"])


def test_rows_have_the_columns_the_chapter_reads(tiny):
    """Every cell (a model, the shuffled-target control, the blob) gives one row
    per probe with exactly :data:`COLUMNS`, which chapter 2 passes to
    ``refimpl.results.committed``."""
    names = hp.cell_names(tiny)
    assert names[-2:] == ("FNO (shuffled)", hp.BLOB)
    for model in names:
        recs = hp.run_cell(tiny, model, 1.0, seed=0, device="cpu")
        rows = [{c: r[c] for c in hp.COLUMNS}
                for r in record_rows(recs, seed=0, epochs=1)]
        assert len(rows) == len(hp.probes(tiny))
        assert all(set(r) == set(hp.COLUMNS) for r in rows)
        for r in rows:
            assert -1 <= r["r_proj"] <= 1 and 0 <= r["phi"] <= 1
        if model == hp.BLOB:
            assert rows[0]["family"] == "control" and math.isnan(rows[0]["test_error"])
        if model.endswith("(shuffled)"):
            assert rows[0]["family"] == "control" and rows[0]["model"] == model
    with pytest.raises(ValueError, match="unknown or unavailable"):
        hp.run_cell(tiny, "Transolver", 1.0, seed=0)


def test_run_study_writes_and_resumes(tiny, tmp_path, capsys):
    path = hp.run_study("smoke", out=tmp_path, seeds=(0,), device="cpu")
    rows = read_csv(path)
    assert list(rows[0]) == list(hp.COLUMNS)
    assert {r["model"] for r in rows} == {"FNO", "U-Net", "FNO (shuffled)", hp.BLOB}
    assert (tmp_path / "README.md").is_file()
    parts = sorted(p.name for p in (tmp_path / "parts").iterdir())
    assert len(parts) == 4
    capsys.readouterr()
    again = read_csv(hp.run_study("smoke", out=tmp_path, seeds=(0,), device="cpu"))
    assert "kept" in capsys.readouterr().out
    assert repr(again) == repr(rows)  # (nan != nan)


def test_two_processes_can_split_the_study_by_model(tiny, tmp_path, monkeypatch):
    args = ["--scale", "smoke", "--out", str(tmp_path), "--seeds", "0"]
    assert hp.main(args + ["--models", "U-Net", hp.BLOB]) == 0
    assert {r["model"] for r in read_csv(tmp_path / "results.csv")} == {"U-Net", hp.BLOB}
    assert hp.main(args + ["--models", "FNO", "FNO (shuffled)"]) == 0
    # the last call without --models assembles every part, training nothing
    monkeypatch.setattr(hp, "run_cell", lambda *a, **k: pytest.fail("retrained"))
    assert hp.main(args) == 0
    rows = read_csv(tmp_path / "results.csv")
    assert list(dict.fromkeys(r["model"] for r in rows)) == list(hp.cell_names(tiny))
    with pytest.raises(ValueError, match="models must be"):
        hp.run_study("smoke", out=tmp_path, models=["Transolver"])


def test_the_chapters_committed_section_reads_the_written_rows(tiny, tmp_path,
                                                                monkeypatch):
    """What chapter 2 does with a committed run: read it through
    refimpl.results.committed with the driver's COLUMNS, tabulate it over seeds
    and compare models with each other and with the null controls."""
    from refimpl import results
    from refimpl.explain.erf_study import paired_comparisons, score_table

    out = tmp_path / "hidden_physics" / "full"
    hp.run_study("smoke", out=out, seeds=(0, 1), device="cpu")
    monkeypatch.setattr(results, "data_root", lambda: tmp_path)
    run = results.committed(hp.TOPIC, columns=hp.COLUMNS)
    assert run is not None and len(run.rows) == 2 * 4 * 5
    table = score_table(run.rows).splitlines()
    assert table[0].startswith("| model | family | t | seeds |")
    assert any(line.startswith("| blob (null) | control | 1 | 2 |") for line in table)
    models = [r for r in run.rows if r["family"] != "control"]
    comp = paired_comparisons(models, "r_proj")
    assert len(comp) == 1 and comp[0]["paired"].n == 2
    against = paired_comparisons(run.rows, "r_proj", reference=hp.BLOB)
    assert {c["model"] for c in against} == {"FNO", "U-Net", "FNO (shuffled)"}
    assert all(c["paired"].n == 2 for c in against)
