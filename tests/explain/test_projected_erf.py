"""The projected ERF of spec §5.5: r_proj, the off-span fraction phi, the oracle
test of §5.7, and the null controls that give the scores a meaning."""

import math

import pytest
import torch
from torch import nn

from refimpl.explain import compare_maps, projected_scores, spatial_dependency
from refimpl.explain.erf_study import blob_control, score_map
from refimpl.pde import wave
from refimpl.pde.sine import sine_basis

F64 = torch.float64


def _rho(n, probe):
    i = torch.arange(n, dtype=F64)
    return torch.sqrt((i[:, None] - probe[0]) ** 2
                      + (i[None, :] - probe[1]) ** 2) / (n - 1)


@pytest.mark.parametrize("t, probe", [(1.0, (31, 31)), (1.0, (15, 47)),
                                      (5.0, (31, 31)), (5.0, (15, 15))])
def test_oracle_projected_erf(t, probe):
    """Spec §5.7: the exact linear operator's raw-mode signed mean gradient is
    h^2 G_t(x0, .) to ~1e-6 relative, with r_proj = 1 and phi ~ 0."""
    n = 64
    oracle = wave.oracle(t, resolution=n, dtype=F64)
    u0, _ = wave.sample(4, t, resolution=n, dtype=F64, seed=2)
    g = spatial_dependency(oracle, u0, probe, normalize=None, signed=True)
    G = wave.dependency_map(t, probe, resolution=n, signed=True, dtype=F64)
    h = 1.0 / (n - 1)
    assert float((g - h**2 * G).norm() / (h**2 * G).norm()) < 1e-6
    sc = projected_scores(g, G, sine_basis(n, 24))
    assert sc["r_proj"] == pytest.approx(1.0, abs=1e-9)
    assert sc["phi"] < 1e-9
    # the magnitude map is its absolute value
    m = spatial_dependency(oracle, u0, probe, normalize=None)
    torch.testing.assert_close(m, g.abs())


def test_projector_splits_in_span_and_off_span_parts():
    """Adding off-span noise leaves r_proj at 1 and sets phi to the noise share;
    an off-span map alone has phi = 1."""
    n, probe = 32, (15, 15)
    S = sine_basis(n, 8)
    G = wave.dependency_map(2.0, probe, resolution=n, K=8, signed=True, dtype=F64)
    P = S @ torch.linalg.solve(S.T @ S, S.T)
    noise = torch.randn(n, n, dtype=F64, generator=torch.Generator().manual_seed(0))
    off = noise - P @ noise @ P.T
    off = off * (G.norm() / off.norm())  # as large as the kernel
    sc = projected_scores(G + off, G, S)
    assert sc["r_proj"] == pytest.approx(1.0, abs=1e-9)
    assert sc["phi"] == pytest.approx(1 / math.sqrt(2), abs=1e-9)
    assert projected_scores(off, G, S)["phi"] == pytest.approx(1.0, abs=1e-9)
    # the sign matters: the negated kernel is perfectly anti-correlated
    assert projected_scores(-G, G, S)["r_proj"] == pytest.approx(-1.0, abs=1e-9)


@pytest.mark.parametrize("t", [1.0, 2.0])
def test_r_proj_tells_a_ring_from_a_blob(t):
    """A featureless blob of width ct correlates with |G_1| better than a ring of
    radius ct does, so Pearson r cannot tell them apart; the
    signed, projected r_proj scores the blob near zero and the ring clearly
    higher."""
    n, probe, c = 64, (31, 31), 0.1
    ct = c * t
    rho = _rho(n, probe)
    blob = torch.exp(-rho**2 / (2 * ct**2))
    ring = torch.exp(-(rho - ct) ** 2 / (2 * 0.02**2))
    G = wave.dependency_map(t, probe, resolution=n, signed=True, dtype=F64)
    S = sine_basis(n, 24)
    pearson_blob = compare_maps(blob, G.abs())["pearson"]
    pearson_ring = compare_maps(ring, G.abs())["pearson"]
    if t == 1.0:  # the case: Pearson r ranks the blob above the ring
        assert pearson_blob > pearson_ring
    r_blob = projected_scores(blob, G, S)["r_proj"]
    r_ring = projected_scores(ring, G, S)["r_proj"]
    assert abs(r_blob) < 0.2 and r_ring > 0.4 and r_ring - r_blob > 0.3


def test_blob_control_records():
    probes = {"mid": (31, 31), "lu": (15, 15)}
    recs = blob_control([1.0, 5.0], probes=probes, dependency_map=wave.dependency_map,
                        resolution=64, width=lambda t: 0.1 * t,
                        basis=sine_basis(64, 24), ring_speed=0.1)
    assert [r.t for r in recs] == [1.0, 5.0]
    for r in recs:
        assert r.family == "control" and math.isnan(r.test_error)
        assert set(r.scores) == set(probes) and r.maps["mid"].shape == (64, 64)
        assert r.maps["mid"].argmax() == 31 * 64 + 31
    one = recs[0]
    assert one.r_proj < 0.2 < one.pearson
    # a blob has no ring: its brightest annulus is the innermost one counted
    assert one.scores["mid"]["ring_error"] > 0.02
    # at t = 5 the ring has reached the walls: the radius is not scored
    assert math.isnan(recs[1].scores["mid"]["ring_error"])
    with pytest.raises(ValueError, match="width"):
        blob_control([1.0], probes=probes, dependency_map=wave.dependency_map,
                     resolution=64, width=0.0)


def test_score_map_without_basis_or_ring():
    n, probe = 32, (10, 12)
    a = torch.rand(n, n, dtype=F64)
    G = wave.dependency_map(1.0, probe, resolution=n, signed=True, dtype=F64)
    sc = score_map(a, None, G.abs(), G, probe=probe, t=1.0)
    assert math.isnan(sc["r_proj"]) and math.isnan(sc["phi"])
    assert math.isnan(sc["ring_error"])
    assert sc["pearson"] == pytest.approx(compare_maps(a, G.abs())["pearson"])


def test_projected_scores_bad_input():
    S = sine_basis(8, 3)
    G = torch.randn(8, 8, dtype=F64)
    with pytest.raises(ValueError, match="same shape"):
        projected_scores(torch.ones(8, 7), G, S)
    with pytest.raises(ValueError, match="basis"):
        projected_scores(G, G, sine_basis(9, 3))
    with pytest.raises(ValueError, match="identically zero"):
        projected_scores(torch.zeros(8, 8), G, S)
    with pytest.raises(ValueError, match="constant"):
        projected_scores(G, torch.ones(8, 8), S)
    with pytest.raises(ValueError, match="dependent"):
        projected_scores(G, G, torch.cat([S, S[:, :1]], 1))


def test_signed_map_of_a_convolution_keeps_the_sign():
    n, probe = 9, (4, 4)
    w = torch.randn(3, 3, dtype=F64)
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(w.view(1, 1, 3, 3))
    g = spatial_dependency(conv, torch.randn(2, n, n, dtype=F64), probe,
                           normalize=None, signed=True)
    expected = torch.zeros(n, n, dtype=F64)
    expected[3:6, 3:6] = w
    torch.testing.assert_close(g, expected)
