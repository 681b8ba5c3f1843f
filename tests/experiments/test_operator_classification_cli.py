"""Tests of chapter 1's study: matched parameter budgets, the rows the CLI writes
(the columns the chapter reads), resuming, and the over-seed summaries."""

import math

import pytest

import refimpl
from refimpl.experiments import operator_classification as ex
from refimpl.operators import models as zoo
from refimpl.operators.benchmark import paired_rows, summary_rows
from refimpl.stats import paired, read_csv, summarize

SIX = ["FNO", "UNet", "DeepONet", "CNO", "T1", "GalerkinTransformer"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path / "cache"))


def _counts(scale):
    P = refimpl.preset(ex.PRESETS, scale)
    return {m: getattr(zoo, m)(1, 1, **cfg).n_params for m, cfg in P["models"].items()}


@pytest.mark.parametrize("scale", refimpl.SCALES)
def test_every_scale_trains_the_six_models(scale):
    P = refimpl.preset(ex.PRESETS, scale)
    assert list(P["models"]) == SIX
    assert len(P["seeds"]) >= (3 if scale in ("full", "paper") else 1)


@pytest.mark.parametrize("scale", ["book", "full"])
def test_parameter_budgets_are_matched(scale):
    budget, tol = ex.PARAM_BUDGET[scale]
    counts = _counts(scale)
    off = {m: n for m, n in counts.items() if abs(n / budget - 1) > tol}
    assert not off, f"{scale}: outside {budget:,} +- {tol:.0%}: {off}"
    assert ex.PARAM_BUDGET["full"][1] <= 0.10


def test_rows_have_the_columns_the_chapter_reads():
    P = refimpl.preset(ex.PRESETS, "smoke")
    P = dict(P, n_train=8, n_val=4, n_test=4, epochs=1)
    data = ex.make_datasets(P)
    rows, results = ex.run_seed(P, data, seed=3, models=["CNO", "FNO"], scale="smoke")
    assert len(rows) == 2 * 3
    assert all(tuple(r) == ex.COLUMNS for r in rows)
    # what chapter 1's committed section and the over-seed summaries read
    read = {"seed", "dataset", "model", "family", "n_params", "test", "ratio",
            "ratio_exact"}
    assert read <= set(ex.COLUMNS)
    cno = [r for r in rows if r["model"] == "CNO"]
    fno = [r for r in rows if r["model"] == "FNO"]
    assert all(r["seed"] == 3 and r["epochs"] == 1 for r in rows)
    assert all(math.isfinite(r["ratio_exact"]) and r["input_change"] > 0 for r in cno)
    assert all(math.isnan(r["ratio_exact"]) for r in fno)
    run = results.get("CNO", "Darcy")
    assert cno[-1]["ratio"] == pytest.approx(run.extra["33x33"] / run.test)


def test_cli_writes_and_resumes(tmp_path, monkeypatch):
    small = dict(ex.PRESETS["smoke"], n_train=8, n_val=4, n_test=4, epochs=1,
                 seeds=(0, 1),
                 models={m: ex.PRESETS["smoke"]["models"][m] for m in ("T1", "UNet")})
    monkeypatch.setitem(ex.PRESETS, "smoke", small)
    out = tmp_path / "run"
    assert ex.main(["--scale", "smoke", "--out", str(out), "--no-progress"]) == 0
    rows = read_csv(out / "results.csv")
    assert len(rows) == 2 * 2 * 3 and list(rows[0]) == list(ex.COLUMNS)
    assert "--scale smoke" in (out / "README.md").read_text()
    parts = sorted(p.name for p in (out / "parts").iterdir())
    assert parts == ["seed0_T1.csv", "seed0_UNet.csv", "seed1_T1.csv", "seed1_UNet.csv"]
    # a rerun keeps the finished parts: nothing is retrained, same rows
    run_seed = ex.run_seed
    monkeypatch.setattr(ex, "run_seed", lambda *a, **k: pytest.fail("retrained"))
    assert ex.main(["--scale", "smoke", "--out", str(out), "--no-progress"]) == 0
    assert repr(read_csv(out / "results.csv")) == repr(rows)  # nan-safe
    # --double with the plain run: twice the epochs and the convergence check
    monkeypatch.setattr(ex, "run_seed", run_seed)
    monkeypatch.setitem(ex.PRESETS, "smoke", dict(small, seeds=(0,)))
    dbl = tmp_path / "double"
    assert ex.main(["--scale", "smoke", "--out", str(dbl), "--double", "--plain",
                    str(out), "--no-progress"]) == 0
    assert {r["epochs"] for r in read_csv(dbl / "results.csv")} == {2}
    conv = read_csv(dbl / "convergence.csv")
    assert len(conv) == 2 * 3 and "converged" in (dbl / "README.md").read_text()


def test_two_processes_can_split_a_study_by_model(tmp_path, monkeypatch):
    small = dict(ex.PRESETS["smoke"], n_train=8, n_val=4, n_test=4, epochs=1,
                 seeds=(0,),
                 models={m: ex.PRESETS["smoke"]["models"][m] for m in ("T1", "UNet")})
    monkeypatch.setitem(ex.PRESETS, "smoke", small)
    out = tmp_path / "run"
    args = ["--scale", "smoke", "--out", str(out), "--no-progress"]
    assert ex.main(args + ["--models", "UNet"]) == 0
    assert {r["model"] for r in read_csv(out / "results.csv")} == {"UNet"}
    assert ex.main(args + ["--models", "T1"]) == 0
    # the last call without --models assembles both parts, training nothing
    monkeypatch.setattr(ex, "run_seed", lambda *a, **k: pytest.fail("retrained"))
    assert ex.main(args) == 0
    rows = read_csv(out / "results.csv")
    assert [r["model"] for r in rows] == ["T1"] * 3 + ["UNet"] * 3
    assert "Training time summed over all rows" in (out / "README.md").read_text()
    with pytest.raises(ValueError, match="models must be"):
        ex.run_study("smoke", out=out, models=["Transformer"])


def _synthetic_rows():
    rows = []
    for seed, (a, b, c) in enumerate([(0.1, 0.2, 0.15), (0.12, 0.25, 0.11),
                                      (0.11, 0.22, 0.14)]):
        for model, test in (("A", a), ("B", b), ("C", c)):
            rows.append(dict(seed=seed, dataset="d", model=model, family="f",
                             n_params=10, test=test, ratio=1.0 + test,
                             ratio_exact=math.nan))
    return rows


def test_convergence_rows():
    from refimpl.operators.benchmark import convergence_rows

    short = _synthetic_rows()
    long = [dict(r, test=r["test"] * (1.05 if r["model"] == "A" else 1.5))
            for r in short]
    conv = {c["model"]: c for c in convergence_rows(short, long)}
    assert conv["A"]["converged"] and not conv["B"]["converged"]
    assert conv["A"]["rel_change"] == pytest.approx(0.05)


def test_summaries_over_seeds_use_refimpl_stats():
    rows = _synthetic_rows()
    summ = {r["model"]: r for r in summary_rows(rows)}
    assert summ["A"]["test"] == summarize([0.1, 0.12, 0.11])
    assert summ["A"]["seeds"] == 3 and "ratio_exact" not in summ["A"]
    pairs = {r["model"]: r for r in paired_rows(rows)}
    assert set(pairs) == {"B", "C"} and pairs["B"]["reference"] == "A"  # lowest mean
    assert pairs["B"]["difference"] == paired([0.2, 0.25, 0.22], [0.1, 0.12, 0.11])
    assert pairs["B"]["verdict"] == "A is better than B"
    assert "not resolved" in pairs["C"]["verdict"]
    fixed = paired_rows(rows, reference="C")
    assert {r["model"] for r in fixed} == {"A", "B"}
    with pytest.raises(ValueError, match="reference model"):
        paired_rows(rows, reference="Z")


def test_caveats_name_the_untuned_rate_and_the_missing_convergence_check():
    P = ex.PRESETS["full"]
    lines = ex.caveats(P)
    assert len(lines) == 2 and all(line.startswith("- ") for line in lines)
    assert f"({P['lr']:g})" in lines[0] and "tuned" in lines[0]
    assert "has not been run" in lines[1] and f"{P['epochs']} epochs" in lines[1]


def test_caveats_report_what_moved_and_what_was_not_checked():
    P = ex.PRESETS["full"]
    conv = [dict(dataset="Darcy", model="FNO", short=0.10, long=0.085),
            dict(dataset="Darcy", model="UNet", short=0.10, long=0.095),
            dict(dataset="wave t=1", model="FNO", short=0.20, long=0.20)]
    line = ex.caveats(P, conv)[1]
    assert "Darcy / FNO (-15 %)" in line and "UNet (" not in line
    assert "2 of 3 checked pairs" in line
    assert "Not checked" in line and "GalerkinTransformer" in line
    assert "FNO," not in line.split("Not checked")[1]
    everything = [dict(dataset="Darcy", model=m, short=0.1, long=0.1)
                  for m in P["models"]]
    line = ex.caveats(P, everything)[1]
    assert "at most 10 %" in line and "Not checked" not in line
