"""Tiny tests of the chapter-2 study loop (refimpl.explain.erf_study)."""

from functools import partial

import pytest
import torch
from torch import nn

from refimpl.explain import compare_maps
from refimpl.explain.erf_study import (ERFRecord, analytic_maps, erf_study,
                                       gaussian_bump, interior_mask,
                                       linearization_gap, plot_maps, plot_records,
                                       ring_radius,
                                       score_table, train_operator, verdicts)
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
            assert r.scores[k] == pytest.approx(compare_maps(delta, r.analytic[k]))
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


def test_score_table():
    def rec(name, t, r, d, err):
        return ERFRecord(name, "spatial", t, err, {}, {},
                         {"a": {"pearson": r, "rel_l2": d},
                          "b": {"pearson": r - 0.2, "rel_l2": d + 0.2}})
    table = score_table([rec("U-Net", 2.0, 0.8, 0.3, 0.05),
                         rec("FNO", 1.0, 0.4, 0.5, 0.02)])
    lines = table.splitlines()
    assert lines[0] == ("| model | family | t | map Pearson r | map rel. L2 | "
                        "test rel. L2 |")
    # sorted by horizon; scores averaged over the two probes
    assert lines[2] == "| FNO | spatial | 1 | 0.30 | 0.60 | 0.020 |"
    assert lines[3] == "| U-Net | spatial | 2 | 0.70 | 0.40 | 0.050 |"
    with pytest.raises(ValueError, match="no records"):
        score_table([])


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


def test_verdicts_with_and_without_ring():
    n, h, probe = 33, 1 / 32, (16, 16)
    i = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(n, dtype=torch.float64)[None, :]
    rho = h * torch.sqrt((i - 16) ** 2 + (j - 16) ** 2)
    ring = torch.exp(-((rho - 0.2) / 0.03) ** 2)
    blob = torch.exp(-(rho / 0.1) ** 2)

    def rec(name, m, r):
        return ERFRecord(name, "spatial", 2.0, 0.1, {"mid": m}, {},
                         {"mid": {"pearson": r}})
    recs = [rec("ringy", ring, 0.75), rec("blobby", blob, 0.8), rec("weak", ring, 0.5)]
    plain = verdicts(recs)
    assert "blobby (spatial) at t = 2 recovers" in plain[1]
    assert "weak (spatial) at t = 2 does not recover" in plain[2]
    assert plain[-1].startswith("closest map: blobby")
    ringed = verdicts(recs, ring=("mid", probe, h, 0.1))
    assert " recovers" in ringed[0] and "ring radius 0.21 vs c t = 0.20" in ringed[0]
    assert "does not recover" in ringed[1]  # a blob has no ring at c t
    with pytest.raises(ValueError, match="no records"):
        verdicts([])
