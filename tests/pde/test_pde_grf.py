"""Tests of the Gaussian random field samplers."""

import math

import numpy as np
import pytest
import torch

from refimpl.pde import grf

F64 = torch.float64


def _expected_power(k2: torch.Tensor, alpha: float, tau: float, sigma: float):
    # Re-part of sum_k c_k e^{2 pi i k x}, c_k = sqrt2 sigma lambda_k^(1/2)(xi + i eta):
    # its k-th coefficient is (c_k + conj(c_-k)) / 2, so E|w_k|^2 = (4 + 4) sigma^2
    # lambda_k / 4 = 2 sigma^2 lambda_k.
    return 2 * sigma**2 * (4 * math.pi**2 * k2 + tau**2) ** (-alpha)


def test_periodic_2d_spectrum_and_slope():
    s, alpha, tau = 32, 2.5, 7.0
    sigma = tau ** ((2 * alpha - 2) / 2)
    w = grf.periodic(400, s, alpha=alpha, tau=tau, seed=1, dtype=F64)
    power = (torch.fft.fft2(w, norm="forward").abs() ** 2).mean(0)
    k = torch.fft.fftfreq(s, d=1.0 / s, dtype=F64)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    keep = (k2 > 0) & (k[:, None].abs() < s / 2) & (k[None, :].abs() < s / 2)
    expected = _expected_power(k2, alpha, tau, sigma)
    ratio = power[keep] / expected[keep]
    assert abs(float(ratio.mean()) - 1) < 0.02
    # log-log slope against (4 pi^2 |k|^2 + tau^2) is -alpha
    X = torch.log(4 * math.pi**2 * k2[keep] + tau**2)
    Y = torch.log(power[keep])
    slope = float(((X - X.mean()) * (Y - Y.mean())).sum() / ((X - X.mean()) ** 2).sum())
    assert abs(slope + alpha) < 0.05
    torch.testing.assert_close(grf.periodic_spectrum(s, alpha=alpha, tau=tau), expected
                               * (k2 > 0))
    # the mean mode is removed: every sample has zero mean
    assert float(w.mean((-1, -2)).abs().max()) < 1e-12
    # the FNO NS initial vorticity has std ~ 0.26 at 64^2 (spec §10.2)
    w64 = grf.periodic(200, 64, alpha=2.5, tau=7.0, seed=0, dtype=F64)
    expected_std = math.sqrt(float(grf.periodic_spectrum(64).sum()))
    assert abs(float(w64.std()) / expected_std - 1) < 0.1
    assert abs(expected_std - 0.26) < 0.01


def test_periodic_1d_burgers_law_spectrum():
    s, alpha, tau, sigma = 64, 2.0, 5.0, 25.0
    u = grf.periodic(2000, s, dim=1, alpha=alpha, tau=tau, sigma=sigma, seed=2,
                     dtype=F64)
    assert u.shape == (2000, s)
    power = (torch.fft.fft(u, norm="forward").abs() ** 2).mean(0)
    k = torch.fft.fftfreq(s, d=1.0 / s, dtype=F64)
    keep = (k != 0) & (k.abs() < s / 2)
    ratio = power[keep] / _expected_power(k[keep] ** 2, alpha, tau, sigma)
    assert abs(float(ratio.mean()) - 1) < 0.03


def _bounded_variance(x, modes, kind, alpha, tau, sigma):
    """sigma^2 sum_k lambda_k phi_k1(x1)^2 phi_k2(x2)^2, by explicit loops."""
    out = np.zeros((len(x), len(x)))
    ks = range(modes) if kind == "cosine" else range(1, modes + 1)
    for k1 in ks:
        for k2 in ks:
            if kind == "cosine" and k1 == k2 == 0:
                continue
            lam = (math.pi**2 * (k1**2 + k2**2) + tau**2) ** (-alpha)
            f = np.cos if kind == "cosine" else np.sin
            p1 = (1.0 if k1 == 0 else math.sqrt(2)) * f(k1 * math.pi * x)
            p2 = (1.0 if k2 == 0 else math.sqrt(2)) * f(k2 * math.pi * x)
            out += sigma**2 * lam * np.outer(p1**2, p2**2)
    return out


@pytest.mark.parametrize("kind", ["cosine", "sine"])
def test_bounded_pointwise_variance(kind):
    res, modes, alpha, tau, sigma = 9, 8, 2.0, 3.0, 2.0
    fn = grf.cosine if kind == "cosine" else grf.sine
    g = fn(4000, res, modes=modes, alpha=alpha, tau=tau, sigma=sigma, seed=3, dtype=F64)
    exact = _bounded_variance(np.linspace(0, 1, res), modes, kind, alpha, tau, sigma)
    emp = g.var(0).numpy()
    inside = exact > 1e-12
    assert np.abs(emp[inside] / exact[inside] - 1).max() < 0.12
    if kind == "sine":
        assert float(g[:, 0].abs().max()) < 1e-12
        assert float(g[:, :, -1].abs().max()) < 1e-12


def test_bounded_fields_are_the_same_function_at_every_resolution():
    a = grf.cosine(3, 17, modes=12, seed=5, dtype=F64)
    b = grf.cosine(3, 33, modes=12, seed=5, dtype=F64)
    torch.testing.assert_close(b[:, ::2, ::2], a, rtol=1e-12, atol=1e-12)
    c = grf.bounded_coefficients(3, 12, seed=5)
    torch.testing.assert_close(grf.evaluate(c, 17, dtype=F64), a)


def test_seeded_and_device(device):
    a = grf.periodic(2, 16, seed=4, device=device)
    b = grf.periodic(2, 16, seed=4)
    assert a.device.type == device.type and a.dtype == torch.float32
    torch.testing.assert_close(a.cpu(), b, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(b, grf.periodic(2, 16, seed=5))
    c = grf.cosine(2, 9, modes=4, seed=1, device=device)
    assert c.device.type == device.type and c.shape == (2, 9, 9)
    assert grf.sine(2, 9, dim=1, modes=4).shape == (2, 9)


@pytest.mark.parametrize("call, err, match", [
    (lambda: grf.periodic(2, 16, alpha=0.0), ValueError, "alpha"),
    (lambda: grf.periodic(2, 16, tau=-1.0), ValueError, "tau"),
    (lambda: grf.periodic(2, 16, sigma=0.0), ValueError, "sigma"),
    (lambda: grf.periodic(2, 16, dim=3), ValueError, "dim"),
    (lambda: grf.periodic(0, 16), ValueError, "n must"),
    (lambda: grf.periodic(2, 1), ValueError, "resolution"),
    (lambda: grf.cosine(2, 9, modes=0), ValueError, "modes"),
    (lambda: grf.bounded_coefficients(2, 4, kind="fourier"), ValueError, "kind"),
    (lambda: grf.evaluate(torch.zeros(3), 9), ValueError, "coefficients"),
    (lambda: grf.periodic(2, 16, seed=1.5), TypeError, "seed"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()
