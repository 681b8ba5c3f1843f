"""Tiny tests of the chapter-2 study loop (refimpl.explain.erf_study)."""

import math
from functools import partial

import pytest
import torch
from torch import nn

from refimpl.explain import compare_maps
from refimpl.explain.erf_study import (ERFRecord, analytic_maps, erf_study,
                                       gaussian_bump, interior_mask,
                                       linearization_gap, plot_maps, plot_records,
                                       paired_comparisons, record_rows,
                                       ring_radius, score_table, study_verdicts,
                                       summary_rows, train_operator, verdicts)
from refimpl.operators.losses import relative_l2
from refimpl.pde import heat, wave

N, K = 12, 4
SAMPLE = partial(wave.sample, K=K)
DEP = partial(wave.dependency_map, K=K)


class Pointwise(nn.Module):
    family = "spatial"

    def __init__(self):
        super().__init__()
        self.lin = nn.Conv2d(1, 1, 1)

    def forward(self, x):
        return self.lin(x)


def test_interior_mask():
    m = interior_mask(6, 2)
    assert m.dtype == torch.bool and m.sum() == 4 and m[2:4, 2:4].all()
    with pytest.raises(ValueError, match="resolution"):
        interior_mask(4, 2)


def test_analytic_maps_stack():
    probes = {"a": (3, 4), "b": (6, 6)}
    maps = analytic_maps(DEP, [1.0, 2.0], probes, resolution=N)
    assert maps.shape == (2, 2, N, N)
    torch.testing.assert_close(maps[1, 0], DEP(1.0, (6, 6), resolution=N))


def test_erf_study_pointwise_model_gives_deltas(device):
    probes = {"mid": (5, 6), "edge": (2, 9)}
    seen = []
    recs = erf_study({"pw": Pointwise}, [0.0, 1.0], sample=SAMPLE, dependency_map=DEP,
                     probes=probes, n_train=16, n_val=4, n_test=6, epochs=1,
                     batch_size=8, n_explain=3, resolution=N, device=device,
                     on_record=seen.append)
    assert [r.t for r in recs] == [0.0, 1.0] and len(seen) == 2
    for r in recs:
        assert isinstance(r, ERFRecord) and r.family == "spatial" and r.n_params == 2
        assert r.trained is not None and r.trained.test_error == r.test_error
        assert 0 < r.test_error < float("inf")
        for k, p in probes.items():
            delta = torch.zeros(N, N)
            delta[p] = 1.0  # a point-wise model depends on the probe only
            torch.testing.assert_close(r.maps[k], delta)
            torch.testing.assert_close(r.analytic[k], DEP(r.t, p, resolution=N))
            scores = compare_maps(delta, r.analytic[k])
            assert {m: r.scores[k][m] for m in scores} == pytest.approx(scores)
            # the signed map of a point-wise model is a signed delta
            assert r.signed[k].abs().argmax() == p[0] * N + p[1]
            assert math.isnan(r.scores[k]["r_proj"])  # no basis given
        assert r.pearson == pytest.approx(
            sum(s["pearson"] for s in r.scores.values()) / 2)


def test_train_operator_split_and_error():
    u0, ut = heat.sample(20, 0.5, resolution=N, K=K)
    torch.manual_seed(0)
    tr = train_operator(Pointwise(), u0, ut, n_train=12, n_val=4, epochs=1,
                        batch_size=4, device="cpu")
    pred = tr.predict(u0[16:].unsqueeze(1))
    assert tr.test_error == pytest.approx(
        relative_l2(pred, ut[16:].unsqueeze(1)).item(), rel=1e-5)
    assert len(tr.history) == 1 and not tr.model.training
    with pytest.raises(ValueError, match="no test samples"):
        train_operator(Pointwise(), u0, ut, n_train=16, n_val=4, epochs=1)
    with pytest.raises(ValueError, match="same number"):
        train_operator(Pointwise(), u0, ut[:5], n_train=2, n_val=1, epochs=1)


def test_erf_study_bad_arguments():
    kw = dict(sample=SAMPLE, dependency_map=DEP, probes={"a": (3, 3)}, n_train=4,
              n_val=2, n_test=2, epochs=1, resolution=N)
    with pytest.raises(ValueError, match="models is empty"):
        erf_study({}, [1.0], **kw)
    with pytest.raises(ValueError, match="n_explain"):
        erf_study({"pw": Pointwise}, [1.0], n_explain=3, **kw)
    with pytest.raises(ValueError, match="probes is empty"):
        erf_study({"pw": Pointwise}, [1.0], **{**kw, "probes": {}})


def _rec(name, t, err, scores, family="spatial", maps=None):
    return ERFRecord(name, family, t, err, maps or {}, {}, scores)


def test_score_table():
    def sc(r, d, rp=float("nan"), phi=float("nan"), ring=float("nan")):
        return {"pearson": r, "rel_l2": d, "r_proj": rp, "phi": phi,
                "ring_error": ring}
    recs = [_rec("U-Net", 2.0, 0.05, {"a": sc(0.8, 0.3, 0.5, 0.2, 0.01),
                                      "b": sc(0.6, 0.5, 0.7, 0.4)}),
            _rec("FNO", 1.0, 0.02, {"a": sc(0.4, 0.5), "b": sc(0.2, 0.7)})]
    lines = score_table(recs).splitlines()
    assert lines[0] == ("| model | family | t | test rel. L2 | Pearson r | "
                        "map rel. L2 | r_proj | φ (off-span) | ring-radius error |")
    # sorted by horizon; scores averaged over the probes where they are defined
    assert lines[2] == "| FNO | spatial | 1 | 0.020 | 0.30 | 0.60 | – | – | – |"
    assert lines[3] == ("| U-Net | spatial | 2 | 0.050 | 0.70 | 0.40 | 0.60 | "
                        "0.30 | 0.01 |")
    # several seeds: mean ± sd over seeds of the probe means
    rows = record_rows(recs[1:], seed=0) + record_rows(
        [_rec("FNO", 1.0, 0.04, {"a": sc(0.6, 0.5), "b": sc(0.4, 0.7)})], seed=1)
    lines = score_table(rows).splitlines()
    assert lines[0].startswith("| model | family | t | seeds | test rel. L2 |")
    assert lines[2].startswith("| FNO | spatial | 1 | 2 | 0.030 ± 0.014 | "
                               "0.40 ± 0.14 | 0.60 ± 0.00 |")
    with pytest.raises(ValueError, match="no records"):
        score_table([])


def test_rows_summaries_and_paired_comparisons():
    def sc(rp):
        return {"pearson": 0.5, "rel_l2": 0.5, "r_proj": rp, "phi": 0.1,
                "ring_error": float("nan")}
    rows = []
    for seed, (a, b) in enumerate([(0.9, 0.5), (0.8, 0.45), (0.85, 0.4)]):
        rows += record_rows([_rec("FNO", 1.0, 0.1, {"p": sc(a), "q": sc(a)}),
                             _rec("U-Net", 1.0, 0.2, {"p": sc(b), "q": sc(b)})],
                            seed=seed)
    assert len(rows) == 12 and set(rows[0]) >= {"seed", "model", "probe", "r_proj"}
    summ = {r["model"]: r for r in summary_rows(rows)}
    assert summ["FNO"]["seeds"] == 3
    assert summ["FNO"]["r_proj"].mean == pytest.approx(0.85)
    assert summ["U-Net"]["ring_error"] is None
    comp = paired_comparisons(rows, "r_proj")
    assert len(comp) == 1 and comp[0]["reference"] == "FNO"
    assert comp[0]["paired"].diff == pytest.approx(0.45 - 0.85, abs=1e-12)
    assert comp[0]["verdict"] == "FNO is better than U-Net"
    # lower is better for the test error: the reference is the lowest
    comp = paired_comparisons(rows, "test_error")
    assert comp[0]["reference"] == "FNO" and comp[0]["model"] == "U-Net"


def test_linearization_gap():
    u = torch.randn(1, 1, 5, 5, dtype=torch.float64)
    d = torch.zeros_like(u)
    d[0, 0, 2, 3] = 1.0
    eps = [1e-3, 1e-1, 1.0]
    conv = nn.Conv2d(1, 1, 3, padding=1).double()
    assert linearization_gap(conv, u, (2, 2), d, eps).max() < 1e-9
    # f = u^2: f(u + e d) - f(u) = 2 u e + e^2 at the probe, slope 2u
    gap = linearization_gap(lambda x: x**2, u, (2, 3), d, eps)
    u0 = float(u[0, 0, 2, 3])
    expected = torch.tensor([e / abs(2 * u0 + e) for e in eps], dtype=torch.float64)
    torch.testing.assert_close(gap, expected)
    with pytest.raises(ValueError, match="does not change"):
        linearization_gap(lambda x: x**2, u, (0, 0), d, eps)


def test_plot_maps():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig = plot_maps([[torch.rand(4, 4), None], [torch.zeros(4, 4), torch.rand(4, 4)]],
                    ["a", "b"], ["x", "y"], title="t")
    assert len(fig.axes) == 4
    plt.close(fig)
    fig = plot_maps([[torch.rand(8, 8)]], ["a"], ["x"], quantile=0.9)
    m = fig.axes[0].images[0].get_array()
    assert m.max() == 1.0 and (m == 1.0).sum() >= 6  # the top 10 % saturate
    plt.close(fig)
    with pytest.raises(ValueError, match="quantile"):
        plot_maps([[torch.rand(4, 4)]], ["a"], ["x"], quantile=0.0)


def test_plot_records_puts_the_analytic_row_above_each_model():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    maps = {k: torch.rand(4, 4) for k in ("a", "b", "c")}
    recs = [ERFRecord(name, "spatial", 1.0, 0.1, maps={k: v + i for k, v in maps.items()},
                      analytic=maps, scores={}) for i, name in enumerate(("U", "F"))]
    fig = plot_records(recs, ("c", "a"), title="t")
    assert len(fig.axes) == 6
    assert [ax.get_ylabel() for ax in fig.axes[::2]] == ["analytic", "U", "F"]
    assert [ax.get_title() for ax in fig.axes[:2]] == ["c", "a"]
    plt.close(fig)
    with pytest.raises(ValueError, match="empty"):
        plot_records([], ("a",))


def test_ring_radius_on_a_synthetic_ring_and_the_wave_map():
    n, h = 41, 1 / 40
    i = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(n, dtype=torch.float64)[None, :]
    rho = h * torch.sqrt((i - 20) ** 2 + (j - 18) ** 2)
    ring = torch.exp(-((rho - 0.25) / 0.02) ** 2)
    ring[20, 18] = 5.0  # a bright probe spot is ignored (r_min)
    assert ring_radius(ring, (20, 18), h) == pytest.approx(0.25, abs=0.02)
    # the analytic wave map at the centre peaks at c t (spec §4.4)
    m = wave.dependency_map(3.0, (31, 31), resolution=64)
    assert ring_radius(m, (31, 31), 1 / 63) == pytest.approx(0.3, abs=0.02)
    with pytest.raises(ValueError, match="2-D"):
        ring_radius(torch.rand(3), (0, 0), 0.1)


def test_gaussian_bump():
    b = gaussian_bump(9, (2, 5), 1.5, amplitude=3.0)
    assert b.shape == (1, 1, 9, 9) and b[0, 0, 2, 5] == 3.0
    expected = 3.0 * torch.exp(torch.tensor(-1 / 4.5)).item()
    assert b[0, 0, 2, 6] == pytest.approx(expected)
    with pytest.raises(ValueError, match="width"):
        gaussian_bump(9, (2, 5), 0.0)


def test_verdicts_use_r_proj_the_null_controls_and_the_ring():
    def sc(r, rp, ring=float("nan"), d=0.5):
        return {"mid": {"pearson": r, "rel_l2": d, "r_proj": rp, "phi": 0.3,
                        "ring_error": ring}}
    recs = [_rec("ringy", 1.0, 0.1, sc(0.75, 0.95, 0.01, d=0.4)),
            _rec("blobby", 1.0, 0.1, sc(0.8, 0.1, 0.05, d=0.6)),
            _rec("offring", 1.0, 0.1, sc(0.7, 0.9, 0.04)),
            _rec("blob (null)", 1.0, float("nan"), sc(0.79, 0.08), "control"),
            _rec("FNO (shuffled)", 1.0, 1.0, sc(0.3, 0.92), "control")]
    lines = verdicts(recs, threshold=0.8)
    assert lines[0].startswith("ringy (spatial) at t = 1 recovers the analytic "
                               "kernel: r_proj = 0.95")
    assert "null controls: blob (null) 0.08, FNO (shuffled) 0.92" in lines[0]
    assert "blobby (spatial) at t = 1 does not recover" in lines[1]
    # r_proj high but the ring is in the wrong place
    assert "offring (spatial) at t = 1 does not recover" in lines[2]
    assert lines[-1] == ("closest map at t = 1: by r_proj: ringy (0.95); by "
                         "Pearson r: blobby (0.80); by map rel. L2: ringy (0.40) "
                         "(the scores disagree)")
    # a control that scores as high as the model voids the verdict
    recs[4] = _rec("FNO (shuffled)", 1.0, 1.0, sc(0.3, 0.97), "control")
    assert "ringy (spatial) at t = 1 does not recover" in verdicts(recs)[0]
    # without projected scores the verdict falls back to Pearson r
    plain = verdicts([_rec("a", 2.0, 0.1, sc(0.9, float("nan")))])
    assert "recovers the analytic kernel: pearson = 0.90" in plain[0]
    with pytest.raises(ValueError, match="no records"):
        verdicts([])


def test_study_verdicts_need_the_threshold_paired_margins_and_the_ring():
    def sc(rp, ring=float("nan")):
        return {"mid": {"pearson": 0.5, "rel_l2": 0.5, "r_proj": rp, "phi": 0.3,
                        "ring_error": ring}}
    rows = []
    for seed, eps in enumerate((0.0, 0.02, -0.01)):
        rows += record_rows([
            _rec("ringy", 1.0, 0.1, sc(0.95 + eps, 0.01)),
            _rec("low", 1.0, 0.2, sc(0.6 + eps)),
            _rec("offring", 1.0, 0.1, sc(0.9 + eps, 0.05)),
            # above the threshold on average, but not resolved above the
            # shuffled control: it beats it in one seed only
            _rec("close", 1.0, 0.1, sc((0.95, 0.80, 0.82)[seed])),
            _rec("blob (null)", 1.0, float("nan"), sc(0.08), "control"),
            _rec("FNO (shuffled)", 1.0, 1.0, sc(0.85), "control")], seed=seed)
    lines = study_verdicts(rows)
    assert len(lines) == 5 and all(ln.startswith("- t = 1: ") for ln in lines)
    # the last line: the best r_proj and what it is not resolved against
    assert lines[4] == ("- t = 1: the highest r_proj is ringy's; not resolved "
                        "against close")
    assert lines[0].startswith("- t = 1: ringy recovers the kernel: r_proj 0.953 "
                               "± 0.015 over 3 seeds, test error 0.1")
    assert ";" not in lines[0]  # no failed condition listed
    assert "low does not recover" in lines[1] and "r_proj below 0.8" in lines[1]
    assert "not resolved above FNO (shuffled)" in lines[1]
    assert "not resolved above blob" not in lines[1]
    assert "offring does not recover" in lines[2]
    assert "ring-radius error 0.050 > 0.02" in lines[2]
    assert "close does not recover" in lines[3]
    assert lines[3].endswith("not resolved above FNO (shuffled) (difference +0.01)")
    with pytest.raises(ValueError, match="no rows"):
        study_verdicts([])


def test_shuffled_target_control_and_projected_scores(device):
    """With shuffle_targets the targets are permuted across samples: the record
    is a control and its test error (against true targets) is large; with a
    basis the projected scores are defined."""
    from refimpl.pde.sine import sine_basis
    probes = {"mid": (5, 6)}
    kw = dict(sample=SAMPLE, dependency_map=DEP, probes=probes, n_train=16,
              n_val=4, n_test=6, epochs=3, batch_size=8, n_explain=3,
              resolution=N, device=device, basis=sine_basis(N, K), ring_speed=0.1)
    real = erf_study({"pw": Pointwise}, [0.5], **kw)[0]
    shuf = erf_study({"pw": Pointwise}, [0.5], shuffle_targets=True, **kw)[0]
    assert shuf.name == "pw (shuffled)" and shuf.family == "control"
    assert real.family == "spatial"
    assert shuf.test_error > real.test_error
    for rec in (real, shuf):
        assert -1 <= rec.r_proj <= 1 and 0 <= rec.mean("phi") <= 1
        assert rec.signed["mid"].shape == (N, N)
