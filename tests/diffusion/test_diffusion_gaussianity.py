import math

import numpy as np
import pytest
import torch

from refimpl.diffusion import (
    NoiseSchedule,
    T_star,
    covariance_mismatch_kl,
    ks_normal,
    ks_two_sample,
    ksg_mutual_information,
    per_molecule_test,
    pointcloud_curves,
    random_rotations,
    sample_zero_mean_gaussian,
    vector_curves,
)


def test_ks_statistics_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 50)), rng.normal(0.3, 1.2, size=(3, 70))
    d1 = ks_normal(torch.from_numpy(a))
    d2 = ks_two_sample(torch.from_numpy(a), torch.from_numpy(b))
    ta, tb = rng.integers(0, 5, size=(2, 40)), rng.integers(1, 7, size=(2, 30))  # ties
    d3 = ks_two_sample(torch.from_numpy(ta).double(), torch.from_numpy(tb).double())
    for i in range(2):
        assert float(d3[i]) == pytest.approx(stats.ks_2samp(ta[i], tb[i]).statistic)
    for i in range(3):
        assert float(d1[i]) == pytest.approx(
            stats.kstest(a[i], "norm").statistic, abs=1e-12
        )
        assert float(d2[i]) == pytest.approx(
            stats.ks_2samp(a[i], b[i]).statistic, abs=1e-12
        )


def test_ksg_matches_sklearn_and_the_gaussian_formula():
    fs = pytest.importorskip("sklearn.feature_selection")
    rng = np.random.default_rng(1)
    rho = 0.8
    x = rng.normal(size=1500)
    y = rho * x + math.sqrt(1 - rho**2) * rng.normal(size=1500)
    ours = float(ksg_mutual_information(torch.from_numpy(x), torch.from_numpy(y), k=3))
    ref = fs.mutual_info_regression(x[:, None], y, n_neighbors=3, random_state=0)[0]
    assert ours == pytest.approx(ref, abs=1e-3)  # sklearn jitters by ~1e-10
    assert ours == pytest.approx(-0.5 * math.log(1 - rho**2), abs=0.05)
    g = torch.Generator().manual_seed(0)
    indep = ksg_mutual_information(
        torch.randn(4, 400, generator=g, dtype=torch.float64),
        torch.randn(4, 400, generator=g, dtype=torch.float64),
        k=3,
    )
    assert float(indep.abs().max()) < 0.1  # KSG's spread at n = 400 is about 0.03


def test_T_star_on_synthetic_curves():
    ts = [0, 10, 20, 30, 40, 50]
    curve = torch.tensor([0.5, 0.3, 0.05, 0.2, 0.04, 0.01])
    assert T_star(curve, 0.1, ts) == 40  # the dip at 20 does not count
    assert T_star(curve, 0.6, ts) == 0
    assert T_star(curve, 0.001, ts) is None
    assert T_star(curve, [0.1, 0.25, 0.35], ts) == [40, 20, 10]
    assert T_star(curve, 0.1) == 4  # indices without a grid
    with pytest.raises(ValueError, match="increasing"):
        T_star(curve, 0.1, ts[::-1])
    with pytest.raises(ValueError, match="NaN"):
        T_star(torch.tensor([float("nan")]), 0.1)


def test_random_rotations_are_haar_rotations():
    R = random_rotations(500, 3, generator=torch.Generator().manual_seed(0))
    eye = torch.eye(3, dtype=torch.float64).expand(500, 3, 3)
    torch.testing.assert_close(R @ R.transpose(1, 2), eye)
    torch.testing.assert_close(
        torch.linalg.det(R), torch.ones(500, dtype=torch.float64)
    )
    assert float(R.mean(0).abs().max()) < 5 / math.sqrt(3 * 500)  # E[R] = 0 under Haar


def _mask(counts, n_max):
    return (
        (torch.arange(n_max)[None] < torch.tensor(counts)[:, None])
        .double()
        .unsqueeze(-1)
    )


def test_gaussian_clouds_sit_at_their_floor():
    g = torch.Generator().manual_seed(0)
    M, N = 150, 6
    mask = _mask(torch.randint(3, N + 1, (M,), generator=g).tolist(), N)
    x = (
        sample_zero_mean_gaussian((M, N, 3), mask, generator=g, dtype=torch.float64)
        * 1.3
    )
    c = pointcloud_curves(
        x, mask, NoiseSchedule(100), [0, 50, 100], repeats=3, generator=g
    )
    for name in ("marg", "dist", "rho"):
        assert float(c.excess(name).abs().max()) <= 3 * c.band(name), name
        assert c.t_star(name, 3 * c.band(name)) == 0


def test_hexagons_are_non_gaussian_at_t0_and_gaussian_at_T():
    g = torch.Generator().manual_seed(1)
    M = 200
    ang = torch.arange(6, dtype=torch.float64) * math.pi / 3
    hexagon = 1.4 * torch.stack([ang.cos(), ang.sin()], -1)
    x = hexagon.expand(M, 6, 2) + 0.05 * torch.randn(
        M, 6, 2, generator=g, dtype=torch.float64
    )
    c = pointcloud_curves(
        x,
        torch.ones(M, 6, 1, dtype=torch.float64),
        NoiseSchedule(100),
        [0, 100],
        generator=g,
    )
    assert float(c.excess("marg")[0]) > 0.05 and float(c.excess("dist")[0]) > 0.15
    assert float(c.excess("dep")[0]) > 0.5
    assert abs(float(c.excess("dist")[-1])) < 3 * c.band("dist")
    assert c.t_star("dist") == 100


def test_digits_marginal_is_far_from_gaussian():
    ds = pytest.importorskip("sklearn.datasets")
    X = torch.from_numpy(ds.load_digits().data[:400]) / 16 * 2 - 1
    pairs = torch.tensor(
        [(r * 8 + c, r * 8 + c + 1) for r in range(8) for c in range(7)]
    )
    c = vector_curves(
        X,
        NoiseSchedule(100),
        [0, 100],
        pairs=pairs,
        generator=torch.Generator().manual_seed(0),
    )
    assert float(c.curve("marg")[0]) > 0.2
    assert abs(float(c.excess("marg")[-1])) < 3 * c.band("marg")
    assert float(c.excess("rho")[0]) > 0.2


def test_covariance_mismatch_kl():
    sch = NoiseSchedule(100)
    iso = covariance_mismatch_kl(torch.full((5,), 2.0), sch, [0, 50, 100])
    torch.testing.assert_close(iso, torch.zeros(3, dtype=torch.float64))
    kl = covariance_mismatch_kl(torch.tensor([4.0, 1.0, 0.1]), sch, [0, 50, 90, 100])
    assert bool((kl[1:] < kl[:-1]).all()) and float(kl[0]) > 0 and float(kl[-1]) < 1e-6
    with pytest.raises(ValueError, match="non-negative"):
        covariance_mismatch_kl(torch.tensor([-1.0, 1.0]), sch, [0])


def test_per_molecule_test_has_the_ks_level_on_pure_noise():
    g = torch.Generator().manual_seed(2)
    M, N = 300, 8
    mask = torch.ones(M, N, 1, dtype=torch.float64)
    x = sample_zero_mean_gaussian((M, N, 3), mask, generator=g, dtype=torch.float64)
    res = per_molecule_test(
        x, mask, NoiseSchedule(100), [0, 50, 100], v_x=1.0, reference=True, generator=g
    )
    # On the null, the KS test (with the (N-1)/N ambient variance ignored, as the
    # authors do) passes at a rate near 1 - 0.05; the MI test fails far more often.
    rate = float(res.pass_ks.double().mean())
    assert rate > 0.9
    assert float(res.pass_mi.double().mean()) < rate - 0.1
    assert res.passed.shape == (3, M) and res.earliest.shape == (M,)


def test_bad_curve_inputs():
    sch = NoiseSchedule(10)
    mask = torch.ones(4, 3, 1)
    with pytest.raises(ValueError, match="grid steps"):
        pointcloud_curves(torch.randn(4, 3, 3), mask, sch, [5, 3])
    with pytest.raises(ValueError, match="unknown statistics"):
        pointcloud_curves(torch.randn(4, 3, 3), mask, sch, [0], statistics=("kl",))
    with pytest.raises(ValueError, match="NaN"):
        pointcloud_curves(torch.full((4, 3, 3), float("nan")), mask, sch, [0])
    with pytest.raises(ValueError, match="k must be"):
        ksg_mutual_information(torch.randn(5), torch.randn(5), k=5)


def test_characteristic_step_is_the_largest_per_statistic_step():
    from refimpl.diffusion import GaussianityCurves, characteristic_step

    ts = list(range(0, 101, 10))
    g = torch.Generator().manual_seed(0)

    def stat(excess):  # [R=4, G] values whose mean excess is `excess`, band ~0.01
        null = 0.01 * torch.randn(4, len(ts), generator=g, dtype=torch.float64)
        null2 = 0.01 * torch.randn(4, len(ts), generator=g, dtype=torch.float64)
        return null + torch.as_tensor(excess, dtype=torch.float64), null, null2

    c = GaussianityCurves(ts=ts, T=100)
    # "marg" decays early, "dist" late, "rho" never settles at 2 bands.
    for name, ex in [
        ("marg", [0.5, 0.2, 0.05, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("dist", [0.9, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0, 0, 0, 0]),
        ("rho", [0.9] * 11),
    ]:
        c.value[name], c.null[name], c.null2[name] = stat(ex)
        # make the excess exact (the test is about the rule, not the noise)
        c.value[name] = c.null[name] + torch.as_tensor(ex, dtype=torch.float64)
    r = characteristic_step(c, ["marg", "dist"], bands=2.0)
    assert r.per_statistic == {"marg": 30, "dist": 70}
    assert r.t_star == 70 and r.limiting == ["dist"] and abs(r.fraction - 0.7) < 1e-12
    assert r.eps["dist"] == pytest.approx(2 * c.band("dist"))
    wide = characteristic_step(c, ["marg", "dist"], bands=0.45 / c.band("dist"))
    assert wide.per_statistic["dist"] == 40  # a larger tolerance: an earlier T*
    never = characteristic_step(c, bands=2.0)  # default statistics include rho
    assert never.per_statistic["rho"] is None and never.t_star == 100
    with pytest.raises(ValueError, match="bands"):
        characteristic_step(c, bands=0)
    with pytest.raises(ValueError, match="no statistic"):
        characteristic_step(GaussianityCurves(ts=ts, T=100))
