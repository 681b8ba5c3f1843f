"""The experiment CLI end to end on a tiny QM9 subset (a few seconds)."""

import pytest
import torch

pytest.importorskip("rdkit")

from refimpl.experiments import gaussian_shortcut as gs  # noqa: E402
from refimpl.molecules.qm9 import qm9pack_files  # noqa: E402

try:
    qm9pack_files()
except Exception:  # the wheel is not installed
    pytest.skip("qm9pack not installed", allow_module_level=True)

TINY = dict(
    gs.PRESETS["smoke"],
    limit=120,
    T=6,
    t_star=4,
    hidden_nf=8,
    n_layers=1,
    batch_size=32,
    epochs=1,
    n_samples=5,
    sample_batch=2,  # three batches of different widths are concatenated
    seeds=(0,),
)


@pytest.fixture(scope="module")
def data():
    return gs.load_data(TINY)


def test_data_statistics(data):
    assert data.num_types == 4 and data.atomic_numbers == (6, 7, 8, 9)
    assert 0 < data.v_h < data.v_hat < data.v_x
    assert abs(float(data.type_freq.sum()) - 1) < 1e-9


def test_train_save_load_and_evaluate(data, tmp_path):
    models, log = gs.train_models(
        TINY, data, out=tmp_path, progress=False, command="test"
    )
    assert (
        log["arms"]["truncated"]["t_max"] == 4
        and len(log["arms"]["full"]["history"]) == 1
    )
    assert (tmp_path / "full.pt").exists() and (tmp_path / "training_log.json").exists()
    loaded = gs.load_models(tmp_path, device=torch.device("cpu"))
    for arm in ("full", "truncated"):
        for a, b in zip(
            models[arm].state_dict().values(), loaded[arm].state_dict().values()
        ):
            torch.testing.assert_close(a.cpu(), b)
    res, samples = gs.evaluate_arms(loaded, TINY, data)
    assert samples["C"].x.shape[0] == TINY["n_samples"]
    nfe = {a: rows[0]["nfe"] for a, rows in res.items()}
    assert nfe == {"A": 7, "B": 5, "C": 5, "D": 5, "C-pc": 5}
    summary = gs.summarize(res)
    live = ("A", "B", "C", "D", "C-pc")  # evaluate_arms' default (the chapter's)
    assert set(summary) == set(live) and summary["A"]["nfe"] == (7.0, 0.0)
    diff = gs.paired_difference(res, "C", "A", "nfe")
    assert diff == (-2.0, 0.0)
    table = gs.markdown_table(summary, ["valid_x_unique", "nfe"])
    assert table.count("\n") == 1 + len(live) and "| A |" in table


def test_cli_rejects_unknown_arms(data):
    with pytest.raises(ValueError, match="unknown training arm"):
        gs.train_models(TINY, data, arms=("half",), progress=False)


def test_qm9_coordinates_are_nearly_gaussian_in_the_marginal_but_not_in_distances():
    from refimpl.diffusion import NoiseSchedule, pointcloud_curves

    x, _, mask = gs.qm9_sample(200, remove_h=False)
    c = pointcloud_curves(
        x,
        mask,
        NoiseSchedule(100),
        [0],
        repeats=1,
        statistics=("marg", "dist"),
        generator=torch.Generator().manual_seed(0),
    )
    assert float(c.curve("marg")[0]) < 0.03  # spec: 0.019 at M = 500
    assert float(c.excess("dist")[0]) > 0.02  # bond-length peaks (spec: 0.051 - 0.011)


def test_checkpoint_folders_are_keyed_by_scale_seed_and_preset(tmp_path, monkeypatch):
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path))
    monkeypatch.setenv("REFIMPL_SCALE", "smoke")
    P = dict(gs.PRESETS["smoke"])
    base = gs._checkpoint_folder(P, 0, "full")
    assert base.parent.name.startswith("smoke-seed0-") and base.name == "full"
    assert base == gs._checkpoint_folder(dict(P), 0, "full")
    others = {gs._checkpoint_folder(P, 1, "full"),
              gs._checkpoint_folder(P | {"epochs": P["epochs"] + 1}, 0, "full"),
              gs._checkpoint_folder(P, 0, "truncated")}
    monkeypatch.setenv("REFIMPL_SCALE", "book")
    others.add(gs._checkpoint_folder(P, 0, "full"))
    assert base not in others and len(others) == 4


def test_checkpointed_training_never_resumes_another_seed(data, tmp_path, monkeypatch):
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path))
    kw = {"arms": ("full",), "progress": False, "checkpoint": True}
    first, _ = gs.train_models(TINY, data, seed=0, **kw)
    other, _ = gs.train_models(TINY, data, seed=1, **kw)
    again, _ = gs.train_models(TINY, data, seed=0, **kw)  # the finished run, resumed
    a, b, c = (m["full"].state_dict() for m in (first, other, again))
    assert any(not torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(a[k], c[k]) for k in a)
    assert len(list((tmp_path / "gaussian_shortcut" / "ckpt").iterdir())) == 2


def test_study_writes_the_chapter_columns_and_resumes(data, tmp_path, monkeypatch):
    from refimpl.stats import read_csv

    P = dict(TINY, epochs=2, tstar_sweep=(0.5,), train_seeds=(0, 1),
             train_seeds_per_arm={"full_raw": (0,)}, n_samples=4)
    arms = ("A", "C", "C-half", "A-raw")
    rows = gs.run_study(P, data, tmp_path, arms=arms, progress=False,
                        novelty=False)
    csv = read_csv(tmp_path / "results.csv")
    assert list(csv[0]) == list(gs.STUDY_COLUMNS)
    assert (tmp_path / "README.md").is_file()
    got = {(r["arm"], r["t_star"], r["train_seed"]) for r in rows}
    # main T* = 4 for all training seeds (A-raw only seed 0); C again at T* = 3
    assert got == {("A", 4, 0), ("A", 4, 1), ("C", 4, 0), ("C", 4, 1),
                   ("C-half", 4, 0), ("C-half", 4, 1), ("A-raw", 4, 0), ("C", 3, 0)}
    nfe = {(r["arm"], r["t_star"]): r["nfe"] for r in rows}
    assert nfe[("A", 4)] == nfe[("A-raw", 4)] == 7 and nfe[("C", 3)] == 4
    steps = {r["arm"]: r["optimizer_steps"] for r in rows}
    assert steps["C-half"] * 2 == steps["C"] == steps["A"]
    plan = gs.study_plan(dict(P, arms=arms), 4)
    # full x2, truncated@4 x2, truncated_half@4 x2 (half budget), full_raw, truncated@3
    assert plan["n_runs"] == 8 and plan["budget_units"] == 7
    # resuming trains and samples nothing
    monkeypatch.setattr(gs, "train_one", lambda *a, **k: pytest.fail("retrained"))
    monkeypatch.setattr(gs, "study_row", lambda *a, **k: pytest.fail("resampled"))
    again = gs.run_study(P, data, tmp_path, arms=arms, progress=False,
                         novelty=False)
    assert sorted(map(str, again)) == sorted(map(str, rows))
    # the chapter's tables of these rows (paired over the two training seeds)
    tabs = gs.study_tables(csv)
    assert tabs["t_star"] == 4 and "C − A" in tabs["paired"]
    assert ("C", "A", "valid_x_unique") in tabs["verdicts"]
    assert "| 0.50 | C |" in tabs["sweep"] and "A-raw" in tabs["arms"]


def test_chapter_reads_the_study_columns():
    # The chapter reads the committed study with the driver's column constant and
    # tabulates it with study_tables (exercised on real CLI rows above).
    from pathlib import Path

    text = (Path(__file__).parents[2] / "book"
            / "04_gaussian_shortcut_diffusion.py").read_text()
    assert 'committed("gaussian_shortcut", columns=gs.STUDY_COLUMNS)' in text
    assert "gs.study_tables(study.rows)" in text


def test_estimate_projects_the_study_time(data):
    P = dict(TINY, epochs=2, train_seeds=(0, 1), tstar_sweep=(0.5,),
             arms=("A", "C", "C-half"))
    est = gs.estimate_study_time(P, data, steps=2)
    assert est["training_runs"] == gs.study_plan(P, TINY["t_star"])["n_runs"] == 7
    assert est["step_seconds"] > 0 and est["total_hours"] > est["training_hours"] > 0


def test_plot_samples_fits_the_page_width():
    from types import SimpleNamespace

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from refimpl.diffusion.plots import plot_samples

    g = torch.Generator().manual_seed(0)
    res = SimpleNamespace(x=torch.randn(6, 4, 3, generator=g),
                          node_mask=torch.ones(6, 4, 1),
                          types=torch.zeros(6, 4, dtype=torch.long))
    fig = plot_samples({"A": res, "C": res}, (6,), n=6)
    w, h = fig.get_size_inches()
    assert w <= 7.5 + 1e-9 and h == pytest.approx(2 * 7.5 / 6)
    plt.close(fig)
    fig = plot_samples({"A": res}, (6,), n=2)  # narrow enough: 2 in per view
    assert tuple(fig.get_size_inches()) == pytest.approx((4.0, 2.0))
    plt.close(fig)
    with pytest.raises(ValueError, match="n must be"):
        plot_samples({"A": res}, (6,), n=0)
