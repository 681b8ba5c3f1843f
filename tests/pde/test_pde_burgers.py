"""Tests of the pseudo-spectral Burgers solver."""

import math

import numpy as np
import pytest
import scipy.special
import torch

from refimpl.pde import burgers

F64 = torch.float64


def _x(s):
    return torch.arange(s, dtype=F64) / s


def test_mass_is_conserved():
    u0 = burgers.initial_condition(3, 64, seed=1, dtype=F64) + 0.3
    u = burgers.solve(u0, 0.1, 0.2, record_steps=5)
    torch.testing.assert_close(u.mean(-1), torch.full((3, 5), 0.3, dtype=F64), rtol=0,
                               atol=1e-12)
    assert bool(torch.isfinite(u).all())


def test_small_amplitude_mode_decays_like_heat():
    s, nu, T, eps = 32, 0.1, 0.5, 1e-5
    u0 = eps * torch.sin(2 * math.pi * _x(s))
    u = burgers.solve(u0, nu, T)
    exact = math.exp(-4 * math.pi**2 * nu * T) * u0
    # the non-linear correction is O(eps) relative
    assert float((u[0] - exact).abs().max() / exact.abs().max()) < 1e-3


def _cole_hopf(A, nu, x, t, terms=40):
    """u = -2 nu phi_x / phi with phi_t = nu phi_xx and
    phi(x, 0) = exp(a cos 2 pi x), a = A / (4 pi nu), for u0 = A sin(2 pi x)."""
    a = A / (4 * math.pi * nu)
    n = np.arange(1, terms)
    decay = np.exp(-4 * math.pi**2 * n**2 * nu * t) * scipy.special.iv(n, a)
    phi = scipy.special.iv(0, a) + 2 * (decay[:, None] * np.cos(2 * math.pi * np.outer(
        n, x))).sum(0)
    phi_x = -2 * (decay[:, None] * 2 * math.pi * n[:, None]
                  * np.sin(2 * math.pi * np.outer(n, x))).sum(0)
    return -2 * nu * phi_x / phi


def test_matches_the_cole_hopf_solution():
    s, nu, A = 64, 0.1, 1.0
    x = _x(s)
    u = burgers.solve(A * torch.sin(2 * math.pi * x), nu, 0.4, record_steps=2)
    for k, t in enumerate((0.2, 0.4)):
        exact = _cole_hopf(A, nu, x.numpy(), t)
        assert np.abs(u[k].numpy() - exact).max() / np.abs(exact).max() < 1e-6


def test_sample_shapes_seeding_and_device(device):
    u0, u = burgers.sample(3, 32, T=0.2, record_steps=2, seed=4, oversample=4,
                           device=device)
    assert u0.shape == (3, 32) and u.shape == (3, 2, 32)
    assert u.dtype == torch.float32 and u.device.type == device.type
    fine = burgers.initial_condition(3, 128, seed=4, dtype=F64)
    torch.testing.assert_close(u0.cpu(), fine[:, ::4].float())
    again = burgers.sample(3, 32, T=0.2, record_steps=2, seed=4, oversample=4,
                           dtype=F64)
    torch.testing.assert_close(again[1].float(), u.cpu(), rtol=1e-4, atol=1e-5)
    # unbatched solve equals the batched one
    u_one = burgers.solve(fine[1], 0.1, 0.2, record_steps=2)
    torch.testing.assert_close(u_one[:, ::4].float(), u[1].cpu(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("call, match", [
    (lambda: burgers.sample(2, 32, viscosity=0.0), "viscosity"),
    (lambda: burgers.sample(2, 32, viscosity=-0.1), "viscosity"),
    (lambda: burgers.sample(2, 31), "even"),
    (lambda: burgers.sample(2, 0), "resolution"),
    (lambda: burgers.sample(2, 32, T=-1.0), "T must be positive"),
    (lambda: burgers.sample(2, 32, oversample=0), "oversample"),
    (lambda: burgers.solve(torch.full((8,), float("nan"))), "NaN"),
    (lambda: burgers.solve(torch.zeros(2, 2, 8)), "shape"),
    (lambda: burgers.solve(torch.zeros(8), record_steps=0), "record_steps"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
