"""Tests of the exact heat generator and its analytic heat kernel."""

import math

import pytest
import torch

from refimpl.pde import heat, wave

F64 = torch.float64


def test_shapes_device_and_inputs_shared_with_wave(device):
    u0, ut = heat.sample(3, [1.0, 2.0], resolution=12, K=5, device=device)
    assert u0.shape == (3, 12, 12) and ut.shape == (3, 2, 12, 12)
    assert ut.device.type == device.type and ut.dtype == torch.float32
    w0, _ = wave.sample(3, 1.0, resolution=12, K=5, device=device)
    assert torch.equal(u0, w0)
    G = heat.dependency_map(1.0, (4, 4), resolution=12, K=5, device=device)
    assert G.shape == (12, 12) and G.device.type == device.type


def test_interior_kernel_is_the_free_space_gaussian():
    """Small t, interior probe: G_t = exp(-|x - xi|^2 / (4 kappa t)) / (4 pi kappa t)
    (the images are e^-100 away)."""
    res, kappa, t, probe = 65, 1e-3, 2.5, (32, 32)
    x = torch.linspace(0, 1, res, dtype=F64)
    r2 = (x[:, None] - x[32]) ** 2 + (x[None, :] - x[32]) ** 2
    gauss = torch.exp(-r2 / (4 * kappa * t)) / (4 * math.pi * kappa * t)
    for kw in (dict(K=80), dict(kernel_type="images")):
        G = heat.dependency_map(t, probe, resolution=res, kappa=kappa, signed=True,
                                dtype=F64, **kw)
        assert float((G - gauss).abs().max() / gauss.max()) < 1e-8
    # the width is sqrt(2 kappa t) per direction
    h = 1.0 / (res - 1)
    G = heat.dependency_map(t, probe, resolution=res, K=80, kappa=kappa, dtype=F64)
    var_x = float(h**2 * (G * (x[:, None] - x[32]) ** 2).sum())
    assert abs(var_x - 2 * kappa * t) < 1e-6


def test_truncated_series_converges_to_the_image_kernel_near_a_wall():
    res, kappa, t, probe = 33, 1e-3, 20.0, (3, 10)
    series = heat.dependency_map(t, probe, resolution=res, K=60, kappa=kappa,
                                 signed=True, dtype=F64)
    images = heat.dependency_map(t, probe, resolution=res, kappa=kappa, signed=True,
                                 kernel_type="images", dtype=F64)
    assert float((series - images).abs().max() / images.abs().max()) < 1e-10
    assert images[0].abs().max() < 1e-12 and images[:, -1].abs().max() < 1e-12


def test_solution_satisfies_the_heat_equation():
    kappa, t, dt, K = 1e-3, 2.0, 1e-2, 4
    residuals = []
    for res in (33, 65):
        h = 1.0 / (res - 1)
        _, u = heat.sample(4, [t - dt, t, t + dt], resolution=res, K=K, kappa=kappa,
                           dtype=F64)
        u_t = (u[:, 2] - u[:, 0]) / (2 * dt)
        v = u[:, 1]
        lap = (v[:, 2:, 1:-1] + v[:, :-2, 1:-1] + v[:, 1:-1, 2:] + v[:, 1:-1, :-2]
               - 4 * v[:, 1:-1, 1:-1]) / h**2
        r = u_t[:, 1:-1, 1:-1] - kappa * lap
        residuals.append(float(r.abs().max() / u_t.abs().max()))
    assert residuals[1] < 5e-3
    assert residuals[0] / residuals[1] > 3.5


def test_generator_identity_and_oracle_jacobian():
    res, K, t, kappa = 10, 6, 3.0, 2e-3
    h = 1.0 / (res - 1)
    u0, ut = heat.sample(4, t, resolution=res, K=K, kappa=kappa, dtype=F64)
    probe = (3, 7)
    G = heat.dependency_map(t, probe, resolution=res, K=K, kappa=kappa, signed=True,
                            dtype=F64)
    torch.testing.assert_close(h**2 * (G * u0).sum((-1, -2)), ut[:, 3, 7], rtol=1e-10,
                               atol=1e-18)
    oracle = heat.oracle(t, res, K, kappa, dtype=F64)
    torch.testing.assert_close(oracle(u0), ut, rtol=1e-10, atol=1e-18)
    J = torch.autograd.functional.jacobian(lambda u: oracle(u)[probe],
                                           torch.zeros(res, res, dtype=F64))
    torch.testing.assert_close(J, h**2 * G, rtol=1e-10, atol=1e-14)


def test_heat_kernel_reflection_symmetry():
    res = 14
    G = heat.dependency_map(1.5, (2, 9), resolution=res, K=7, signed=True, dtype=F64)
    Gr = heat.dependency_map(1.5, (res - 3, 9), resolution=res, K=7, signed=True,
                             dtype=F64)
    torch.testing.assert_close(Gr, G.flip(0), rtol=1e-10, atol=1e-10)


def test_decay_is_monotone_and_exact_for_one_mode():
    """u0 = sin(pi x) sin(2 pi y) in the span decays by exp(-5 kappa pi^2 t)."""
    res, K, kappa, t = 12, 4, 1e-2, 3.0
    x = torch.linspace(0, 1, res, dtype=F64)
    u0 = torch.outer(torch.sin(math.pi * x), torch.sin(2 * math.pi * x))
    out = heat.oracle(t, res, K, kappa, dtype=F64)(u0)
    torch.testing.assert_close(out, math.exp(-5 * kappa * math.pi**2 * t) * u0,
                               rtol=1e-10, atol=1e-14)
    std = heat.target_std(t, K, 1.0, res, kappa)
    assert bool((std <= heat.input_std(K, 1.0, res) + 1e-18).all())


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(kappa=0.0), ValueError, "kappa must be positive"),
    (dict(kappa=-1e-3), ValueError, "kappa must be positive"),
    (dict(t=-1.0), ValueError, "t must be non-negative"),
    (dict(probe=(0, 40)), ValueError, "outside"),
    (dict(kernel_type="free"), ValueError, "kernel_type"),
    (dict(kernel_type="images", t=0.0), ValueError, "t must be positive"),
    (dict(resolution=1), ValueError, "resolution"),
])
def test_bad_input(kwargs, err, match):
    args = dict(t=1.0, probe=(3, 3), resolution=16, K=4, kappa=1e-3) | kwargs
    with pytest.raises(err, match=match):
        heat.dependency_map(**args)


def test_sample_bad_input():
    with pytest.raises(ValueError, match="kappa"):
        heat.sample(2, 1.0, resolution=8, K=3, kappa=0)
    with pytest.raises(ValueError, match="resolution"):
        heat.sample(2, 1.0, resolution=0, K=3)
