"""Chapter 3's committed full-scale study is the study its command makes with the
current preset: the whole sweep grid, every model at its selected setting for
every seed, the ablation, the convergence check and the spectra. The test fails
when the preset (or the code that selects rows) changes without the committed run
being made again, i.e. when the chapter would show a table its command no longer
reproduces."""

import pytest

from refimpl.experiments import dual_space as ds
from refimpl.results import committed

FULL = ds.PRESETS["full"]


@pytest.fixture(scope="module")
def rows():
    run = committed("dual_space", columns=ds.COLUMNS)
    if run is None:
        pytest.skip("no full-scale study committed")
    assert "python -m refimpl.experiments.dual_space --scale full --double" in run.readme
    return run.rows


def _hp(r):
    return (f"{float(r['lr']):g}", f"{float(r['weight_decay']):g}")


def test_the_sweep_covers_the_presets_grid_for_every_model(rows):
    grid = {(f"{g['lr']:g}", f"{g['weight_decay']:g}") for g in ds.sweep_grid(FULL)}
    for problem in ds.PROBLEMS:
        for model in ds.MODELS:
            done = {_hp(r) for r in rows if r["stage"] == "sweep"
                    and r["problem"] == problem and r["model"] == model
                    and int(r["epochs"]) == FULL["epochs"]}
            assert done == grid, (problem, model, grid - done)


def test_every_stage_has_every_seed_at_the_selected_setting(rows):
    kept = ds.at_selection(rows)
    seeds = set(FULL["seeds"])
    for problem in ds.PROBLEMS:
        for model in ds.MODELS:
            for epochs in (FULL["epochs"], 2 * FULL["epochs"]):  # and the doubled run
                got = {int(r["seed"]) for r in kept if r["stage"] == "benchmark"
                       and r["problem"] == problem and r["model"] == model
                       and int(r["epochs"]) == epochs}
                assert got == seeds, (problem, model, epochs, got)
        for variant in ds.ABLATIONS:
            if variant == "full":
                continue
            got = {int(r["seed"]) for r in kept if r["stage"] == "ablation"
                   and r["problem"] == problem and r["model"] == variant}
            assert got == seeds, (problem, variant, got)


def test_the_chapters_tables_and_spectra_come_from_these_rows(rows):
    tables = ds.study_tables(rows, FULL["epochs"])
    for key in ("sweep", "benchmark", "paired", "convergence", "ablation",
                "ablation_paired", "transfer", "findings"):
        assert tables[key], key
    # one verdict line per benchmark and ablation pair and problem, plus the
    # convergence line
    lines = tables["findings"].splitlines()
    pairs = len(ds.PROBLEMS) * (len(ds.BENCHMARK_PAIRS) + len(ds.ABLATION_PAIRS))
    assert sum(line.startswith("- Convergence") for line in lines) == 1
    assert len([ln for ln in lines if not ln.startswith(("- Convergence",
                                                         "- Tuning"))]) == pairs
    spectra = committed("dual_space", name="spectra.csv",
                        columns=ds.SPECTRUM_COLUMNS)
    assert spectra is not None
    bench = {(r["problem"], r["model"], int(r["seed"])) for r in ds.at_selection(rows)
             if r["stage"] == "benchmark" and int(r["epochs"]) == FULL["epochs"]}
    chosen = ds.select_hyperparameters(rows)
    have = [(r["problem"], r["model"], int(r["seed"]))
            for r in ds.at_selection(spectra.rows, chosen)
            if r["stage"] == "benchmark" and int(r["epochs"]) == FULL["epochs"]
            and int(r["k"]) == 1]
    # exactly one spectrum per run the chapter plots (no stale selection mixed in)
    assert sorted(have) == sorted(bench)
