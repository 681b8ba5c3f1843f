"""Tests of the exact wave generator and its analytic Green's function."""

import math

import numpy as np
import pytest
import torch

from refimpl.pde import sine, wave

F64 = torch.float64


def _laplacian(u: torch.Tensor, h: float) -> torch.Tensor:
    """5-point Laplacian at interior nodes."""
    return (u[..., 2:, 1:-1] + u[..., :-2, 1:-1] + u[..., 1:-1, 2:] + u[..., 1:-1, :-2]
            - 4 * u[..., 1:-1, 1:-1]) / h**2


def test_shapes_dtype_device(device):
    u0, ut = wave.sample(3, 1.0, resolution=16, K=6, device=device)
    assert u0.shape == ut.shape == (3, 16, 16)
    assert u0.dtype == ut.dtype == torch.float32
    assert u0.device.type == device.type and ut.device.type == device.type
    u0, ut = wave.sample(3, [1.0, 2.0, 5.0], resolution=16, K=6, device=device,
                         dtype=F64)
    assert ut.shape == (3, 3, 16, 16) and ut.dtype == F64
    G = wave.dependency_map([1.0, 2.0], (3, 4), resolution=16, K=6, device=device)
    assert G.shape == (2, 16, 16) and G.device.type == device.type
    assert bool((G >= 0).all())


def test_seeded_and_shared_inputs():
    a = wave.sample(4, 5.0, resolution=12, K=5, seed=3)
    b = wave.sample(4, 5.0, resolution=12, K=5, seed=3)
    c = wave.sample(4, 5.0, resolution=12, K=5, seed=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.allclose(a[0], c[0])
    # one input set serves every horizon, and t = 0 is the identity
    u0, ut = wave.sample(4, [0.0, 5.0], resolution=12, K=5, seed=3, dtype=F64)
    u0_5, u5 = wave.sample(4, 5.0, resolution=12, K=5, seed=3, dtype=F64)
    assert torch.equal(u0, u0_5)
    torch.testing.assert_close(ut[:, 1], u5, rtol=1e-12, atol=1e-18)
    torch.testing.assert_close(ut[:, 0], u0, rtol=1e-12, atol=1e-18)


def test_float32_matches_float64():
    u0, ut = wave.sample(5, 3.0, resolution=20, K=8)
    v0, vt = wave.sample(5, 3.0, resolution=20, K=8, dtype=F64)
    torch.testing.assert_close(u0.double(), v0, rtol=0, atol=1e-6 * v0.abs().max())
    torch.testing.assert_close(ut.double(), vt, rtol=0, atol=1e-6 * vt.abs().max())


def test_walls_are_zero():
    u0, ut = wave.sample(3, 2.0, resolution=17, K=6, dtype=F64)
    for u in (u0, ut):
        edges = torch.cat([u[:, 0], u[:, -1], u[:, :, 0], u[:, :, -1]])
        assert edges.abs().max() < 1e-15


def test_solution_satisfies_the_wave_equation():
    """u_tt - c^2 Lap_h u -> 0 at second order in h (central differences in t)."""
    c, t, dt, K = 0.1, 3.0, 5e-3, 4
    residuals = []
    for res in (33, 65):
        h = 1.0 / (res - 1)
        _, u = wave.sample(6, [t - dt, t, t + dt], resolution=res, K=K, c=c, dtype=F64)
        u_tt = (u[:, 2] - 2 * u[:, 1] + u[:, 0]) / dt**2
        r = u_tt[:, 1:-1, 1:-1] - c**2 * _laplacian(u[:, 1], h)
        residuals.append(float(r.abs().max() / u_tt.abs().max()))
    assert residuals[1] < 5e-3
    assert residuals[0] / residuals[1] > 3.5  # second order in h


def test_zero_initial_velocity():
    """u(dt) - u(0) = O(dt^2): the increment quadruples when dt doubles."""
    dt = 1e-2
    u0, u = wave.sample(4, [dt, 2 * dt], resolution=17, K=6, dtype=F64)
    d1 = (u[:, 0] - u0).abs().max()
    d2 = (u[:, 1] - u0).abs().max()
    assert abs(float(d2 / d1) - 4.0) < 0.01


def test_dependency_map_matches_brute_force_double_loop():
    res, K, t, c, (p, q) = 7, 3, 2.5, 0.3, (2, 4)
    x = [k / (res - 1) for k in range(res)]
    brute = np.zeros((res, res))
    for a in range(res):
        for b in range(res):
            for i in range(1, K + 1):
                for j in range(1, K + 1):
                    brute[a, b] += 4 * math.cos(c * math.pi * t * math.hypot(i, j)) \
                        * math.sin(i * math.pi * x[p]) * math.sin(j * math.pi * x[q]) \
                        * math.sin(i * math.pi * x[a]) * math.sin(j * math.pi * x[b])
    G = wave.dependency_map(t, (p, q), resolution=res, K=K, c=c, signed=True, dtype=F64)
    np.testing.assert_allclose(G.numpy(), brute, rtol=1e-12, atol=1e-12)
    Gabs = wave.dependency_map(t, (p, q), resolution=res, K=K, c=c, dtype=F64)
    np.testing.assert_allclose(Gabs.numpy(), np.abs(brute), rtol=1e-12, atol=1e-12)


def test_dependency_map_is_the_finite_difference_jacobian_of_sample():
    """Perturb the generator's coefficients: d u_t(x0) = h^2 sum_xi G(x0, xi) d u0(xi)
    for every sine direction of the data subspace (K <= res - 2)."""
    res, K, t, c, probe = 11, 5, 4.0, 0.1, (3, 6)
    h = 1.0 / (res - 1)
    B0 = sine.coefficients(1, K, 1.0, seed=0)
    base0, base_t = wave.evaluate(B0, t, res, c, dtype=F64)
    eps = 1e-3
    directions = eps * torch.eye(K * K, dtype=F64).reshape(K * K, K, K)
    pert0, pert_t = wave.evaluate(B0 + directions, t, res, c, dtype=F64)
    d0, dt_ = pert0 - base0, pert_t - base_t
    G = wave.dependency_map(t, probe, resolution=res, K=K, c=c, signed=True, dtype=F64)
    predicted = h**2 * (G * d0).sum((-1, -2))
    torch.testing.assert_close(predicted, dt_[:, probe[0], probe[1]], rtol=1e-9,
                               atol=1e-12 * float(dt_.abs().max()))


def test_generator_identity_at_default_size():
    """Spec §5.7: u(x0, t) = h^2 sum G_t u0 to 1e-10 relative at 64^2, K = 24."""
    u0, u5 = wave.sample(8, 5.0, dtype=F64)
    h = 1.0 / 63
    for probe in wave.PROBES.values():
        G = wave.dependency_map(5.0, probe, signed=True, dtype=F64)
        pred = h**2 * (G * u0).sum((-1, -2))
        target = u5[:, probe[0], probe[1]]
        assert float((pred - target).abs().max() / target.abs().max()) < 1e-10


def test_oracle_reproduces_data_and_has_the_analytic_jacobian():
    res, K, t, c = 9, 5, 2.0, 0.2
    oracle = wave.oracle(t, res, K, c, dtype=F64)
    u0, ut = wave.sample(3, t, resolution=res, K=K, c=c, dtype=F64)
    torch.testing.assert_close(oracle(u0), ut, rtol=1e-10, atol=1e-16)
    torch.testing.assert_close(oracle(u0[:, None]), ut[:, None], rtol=1e-10, atol=1e-16)
    probe = (2, 5)
    x = torch.randn(res, res, dtype=F64)
    J = torch.autograd.functional.jacobian(lambda u: oracle(u)[probe], x)
    G = wave.dependency_map(t, probe, resolution=res, K=K, c=c, signed=True, dtype=F64)
    torch.testing.assert_close(J, G / (res - 1) ** 2, rtol=1e-10, atol=1e-14)
    assert torch.autograd.gradcheck(oracle, (x[None].requires_grad_(),))
    assert "K=5" in repr(oracle) and "resolution=9" in repr(oracle)


@pytest.mark.parametrize("res", [12, 13])
def test_dependency_map_symmetries_of_the_square(res):
    K, t, c = 6, 3.0, 0.15

    def m(p):
        return wave.dependency_map(t, p, resolution=res, K=K, c=c, signed=True,
                                   dtype=F64)

    p, q = 2, 7
    n = res - 1
    G = m((p, q))
    torch.testing.assert_close(m((n - p, q)), G.flip(0), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(m((p, n - q)), G.flip(1), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(m((q, p)), G.T, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(m((n - q, p)), torch.rot90(G, 1), rtol=1e-10, atol=1e-10)


def test_ring_radius_is_ct():
    """Spec §4.4: the radially averaged |G_t| peaks at radius ~ ct."""
    c, res = 0.1, 64
    x = torch.linspace(0, 1, res, dtype=F64)
    rho = torch.sqrt((x[:, None] - x[31]) ** 2 + (x[None, :] - x[31]) ** 2)
    bins = torch.arange(0.06, 0.46, 0.02, dtype=F64)  # width 0.02, rho < 0.05 ignored
    for t in (1.0, 2.0, 3.0, 4.0):
        G = wave.dependency_map(t, (31, 31), c=c, dtype=F64)
        means = [G[(rho >= b) & (rho < b + 0.02)].mean() for b in bins]
        peak = float(bins[int(torch.stack(means).argmax())]) + 0.01
        assert abs(peak - c * t) <= 0.02


def test_input_and_target_std_match_the_sample_std():
    res, K = 17, 6
    u0, u3 = wave.sample(4000, 3.0, resolution=res, K=K, dtype=F64, seed=1)
    interior = (slice(2, -2), slice(2, -2))
    for emp, exact in ((u0.std(0), wave.input_std(K, 1.0, res)),
                       (u3.std(0), wave.target_std(3.0, K, 1.0, res))):
        ratio = emp[interior] / exact[interior]
        assert float((ratio - 1).abs().max()) < 0.06
    s = wave.input_std()
    assert s[0].abs().max() < 1e-18 and abs(float(s[31, 31]) - 1.67e-3) < 0.01e-3


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(probe=(64, 0)), ValueError, "outside"),
    (dict(probe=(-1, 3)), ValueError, "outside"),
    (dict(probe=(1.5, 2)), TypeError, "integer"),
    (dict(probe=(1, 2, 3)), TypeError, "pair"),
    (dict(probe=5), TypeError, "pair"),
    (dict(resolution=0), ValueError, "resolution"),
    (dict(K=0), ValueError, "K"),
    (dict(c=0.0), ValueError, "c must be positive"),
    (dict(c=-1.0), ValueError, "c must be positive"),
    (dict(t=-1.0), ValueError, "t must be non-negative"),
    (dict(t=float("nan")), ValueError, "finite"),
    (dict(t=[]), ValueError, "empty"),
    (dict(dtype=torch.int64), TypeError, "dtype"),
])
def test_dependency_map_bad_input(kwargs, err, match):
    args = dict(t=1.0, probe=(3, 3), resolution=64, K=24, c=0.1) | kwargs
    with pytest.raises(err, match=match):
        wave.dependency_map(**args)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), "n must be"), (dict(resolution=0), "resolution"),
    (dict(resolution=-3), "resolution"), (dict(K=0), "K must be"),
    (dict(c=0.0), "c must be positive"), (dict(t=-0.5), "t must be non-negative"),
    (dict(t=[1.0, -2.0]), "t must be non-negative"), (dict(seed=-1), "seed"),
    (dict(r=float("inf")), "r must be finite"),
])
def test_sample_bad_input(kwargs, match):
    args = dict(n=2, t=1.0, resolution=8, K=3) | kwargs
    with pytest.raises(ValueError, match=match):
        wave.sample(**args)


def test_oracle_bad_input():
    with pytest.raises(ValueError, match="K <= resolution - 2"):
        wave.oracle(1.0, resolution=10, K=9)
    with pytest.raises(ValueError, match="one horizon"):
        wave.oracle([1.0, 2.0], resolution=10, K=4)
    with pytest.raises(ValueError, match="shape"):
        wave.oracle(1.0, resolution=10, K=4)(torch.zeros(2, 9, 9))
