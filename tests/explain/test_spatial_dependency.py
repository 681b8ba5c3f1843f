"""Tests of refimpl.explain.spatial_dependency against maps known exactly."""

import numpy as np
import pytest
import torch
from torch import nn

from refimpl.explain import compare_maps, spatial_dependency


class Affine:
    """A point-wise affine normaliser with spatially varying scale (test double)."""

    def __init__(self, mu, sigma):
        self.mu, self.sigma = mu, sigma

    def encode(self, x):
        return (x - self.mu) / self.sigma

    def decode(self, y):
        return y * self.sigma + self.mu


def _conv(weight, dtype=torch.float64):
    k = weight.shape[-1]
    conv = nn.Conv2d(1, 1, k, padding=k // 2, bias=False).to(dtype)
    with torch.no_grad():
        conv.weight.copy_(weight.view(1, 1, k, k))
    return conv


def _conv_expected(weight, probe, n):
    # PyTorch's conv2d is a cross-correlation: y(p) = sum_ab w[a,b] u(p+a-r), so
    # dy(p)/du(xi) = w[xi-p+r]: the kernel sits unflipped with its centre at p
    # (a true convolution k*u would give the flipped kernel k[p-xi]).
    k = weight.shape[-1]
    r = k // 2
    out = torch.zeros(n, n, dtype=torch.float64)
    for a in range(k):
        for b in range(k):
            i, j = probe[0] + a - r, probe[1] + b - r
            if 0 <= i < n and 0 <= j < n:
                out[i, j] = abs(float(weight[a, b]))
    return out


@pytest.mark.parametrize("probe", [(6, 7), (0, 1), (11, 11)])
def test_fixed_convolution(probe):
    w = torch.randn(5, 5, dtype=torch.float64)
    n = 12
    m = spatial_dependency(_conv(w), torch.randn(3, n, n, dtype=torch.float64), probe,
                           normalize=None)
    torch.testing.assert_close(m, _conv_expected(w, probe, n))


def test_true_convolution_gives_flipped_kernel():
    k = torch.randn(3, 3, dtype=torch.float64)
    # conv2d with the flipped kernel is the convolution with k
    conv = _conv(torch.flip(k, (0, 1)))
    m = spatial_dependency(conv, torch.randn(2, 9, 9, dtype=torch.float64), (4, 4),
                           normalize=None)
    expected = torch.zeros(9, 9, dtype=torch.float64)
    expected[3:6, 3:6] = torch.flip(k, (0, 1)).abs()
    torch.testing.assert_close(m, expected)


class SpectralMultiplier(nn.Module):
    """y = Re ifft2(m * fft2(u)) on a periodic grid."""

    def __init__(self, m):
        super().__init__()
        self.register_buffer("m", m)

    def forward(self, u):
        return torch.fft.ifft2(self.m * torch.fft.fft2(u)).real


def test_spectral_multiplier():
    n, d = 16, (3, -2)
    k = np.fft.fftfreq(n, 1 / n)
    k1, k2 = np.meshgrid(k, k, indexing="ij")
    # Gaussian low-pass times a shift: Hermitian, so the kernel is real, and not
    # symmetric, so the test sees the flip.
    m = (np.exp(-0.03 * (k1**2 + k2**2))
         * np.exp(-2j * np.pi * (k1 * d[0] + k2 * d[1]) / n))
    kernel = np.fft.ifft2(m)
    assert np.abs(kernel.imag).max() < 1e-12
    probe = (5, 12)
    # y(p) = sum_xi kernel[(p - xi) mod n] u(xi)
    i = (probe[0] - np.arange(n)[:, None]) % n
    j = (probe[1] - np.arange(n)[None, :]) % n
    expected = torch.from_numpy(np.abs(kernel.real[i, j]))
    model = SpectralMultiplier(torch.from_numpy(m))
    got = spatial_dependency(model, torch.randn(4, 1, n, n, dtype=torch.float64), probe,
                             normalize=None)
    torch.testing.assert_close(got, expected)
    # normalised maps keep the shape: unit L2 norm for the default
    got_l2 = spatial_dependency(model, torch.randn(4, 1, n, n, dtype=torch.float64),
                                probe)
    torch.testing.assert_close(got_l2, expected / expected.norm())


def test_pointwise_model_is_a_delta():
    model = lambda u: torch.tanh(u) ** 2 + 3 * u  # noqa: E731
    u = torch.randn(5, 10, 10, dtype=torch.float64)
    probe = (2, 7)
    for normalize in ("l2", "max", "sum"):
        m = spatial_dependency(model, u, probe, normalize=normalize)
        expected = torch.zeros(10, 10, dtype=torch.float64)
        expected[probe] = 1.0
        torch.testing.assert_close(m, expected)
    # unnormalised: the mean of |f'(u(p))|, f' = 2 tanh sech^2 + 3
    t = torch.tanh(u[:, 2, 7])
    raw = spatial_dependency(model, u, probe, normalize=None)
    torch.testing.assert_close(raw[probe], (2 * t * (1 - t**2) + 3).abs().mean())


def test_normalizer_chain_rule():
    n = 10
    w = torch.randn(3, 3, dtype=torch.float64)
    conv = _conv(w)
    sigma_a = 0.5 + torch.rand(n, n, dtype=torch.float64)
    mu_a = torch.randn(n, n, dtype=torch.float64)
    sigma_y = 0.5 + torch.rand(n, n, dtype=torch.float64)
    mu_y = torch.randn(n, n, dtype=torch.float64)
    probe = (4, 5)
    u = torch.randn(3, n, n, dtype=torch.float64)
    norms = (Affine(mu_a, sigma_a), Affine(mu_y, sigma_y))
    got = spatial_dependency(conv, u, probe, norms, normalize=None)
    # y = D(conv(E(u))): dy(p)/du(xi) = sigma_y(p) w[xi - p + r] / sigma_a(xi)
    expected = sigma_y[probe] * _conv_expected(w, probe, n) / sigma_a
    torch.testing.assert_close(got, expected)
    # one object is used for both encode and decode
    same = spatial_dependency(conv, u, probe, Affine(mu_a, sigma_a), normalize=None)
    torch.testing.assert_close(
        same, sigma_a[probe] * _conv_expected(w, probe, n) / sigma_a)
    # only an input normaliser, or only an output one
    only_in = spatial_dependency(conv, u, probe, (Affine(mu_a, sigma_a), None),
                                 normalize=None)
    torch.testing.assert_close(only_in, _conv_expected(w, probe, n) / sigma_a)
    only_out = spatial_dependency(conv, u, probe, (None, Affine(mu_y, sigma_y)),
                                  normalize=None)
    torch.testing.assert_close(only_out, sigma_y[probe] * _conv_expected(w, probe, n))


def _small_net(dtype=torch.float64, bn=False):
    torch.manual_seed(1)
    layers = [nn.Conv2d(2, 4, 3, padding=1)]
    if bn:
        layers.append(nn.BatchNorm2d(4))
    layers += [nn.Tanh(), nn.Conv2d(4, 1, 3, padding=1)]
    return nn.Sequential(*layers).to(dtype)


def test_matches_finite_differences_of_a_nonlinear_model():
    net = _small_net()
    u = torch.randn(2, 2, 7, 7, dtype=torch.float64)
    probe, eps = (3, 2), 1e-6
    got = spatial_dependency(net, u, probe, normalize=None)
    fd = torch.zeros(2, 7, 7, dtype=torch.float64)
    with torch.no_grad():
        for i in range(7):
            for j in range(7):
                du = torch.zeros_like(u)
                du[:, 0, i, j] = eps
                fd[:, i, j] = (net(u + du) - net(u - du))[:, 0, 3, 2] / (2 * eps)
    torch.testing.assert_close(got, fd.abs().mean(0), atol=1e-8, rtol=1e-6)


def test_batch_equals_per_sample_loop_and_chunks():
    net = _small_net()
    u = torch.randn(5, 2, 8, 8, dtype=torch.float64)
    probe = (2, 6)
    batched = spatial_dependency(net, u, probe, channel=1)
    loop = torch.stack([spatial_dependency(net, u[i:i + 1], probe, channel=1)
                        for i in range(5)]).mean(0)
    torch.testing.assert_close(batched, loop)
    torch.testing.assert_close(
        spatial_dependency(net, u, probe, channel=1, batch_size=2), batched)
    # each per-sample map has unit L2 norm, so their mean has norm <= 1
    assert batched.norm() <= 1 + 1e-12
    assert (batched >= 0).all()


def test_eval_mode_used_and_restored():
    net = _small_net(bn=True)
    with torch.no_grad():  # non-trivial running statistics
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    net.train()
    net[2].eval()  # a mixed mode must be restored exactly
    stats = net[1].running_mean.clone()
    u = torch.randn(4, 2, 6, 6, dtype=torch.float64)
    got = spatial_dependency(net, u, (3, 3))
    assert net.training and net[1].training and not net[2].training
    torch.testing.assert_close(net[1].running_mean, stats)
    net.eval()
    # in eval mode there is no coupling: the batch equals a per-sample loop
    loop = torch.stack([spatial_dependency(net, u[i:i + 1], (3, 3))
                        for i in range(4)]).mean(0)
    torch.testing.assert_close(got, loop)


def test_works_under_no_grad_and_leaves_parameter_grads_alone():
    net = _small_net()
    u = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        m = spatial_dependency(net, u, (1, 1))
    assert m.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def test_device_placement(device):
    net = _small_net(torch.float32).to(device)
    u = torch.randn(3, 2, 8, 8)  # on the CPU: moved to the model's device
    m = spatial_dependency(net, u, (4, 4))
    assert m.device.type == device.type and m.shape == (8, 8)
    ref = spatial_dependency(_small_net(torch.float32), u, (4, 4))
    torch.testing.assert_close(m.cpu(), ref, atol=1e-5, rtol=1e-4)


def test_output_resolution_differs_from_input():
    model = lambda u: u[:, :, ::2, ::2]  # noqa: E731
    u = torch.randn(2, 1, 8, 8)
    m = spatial_dependency(model, u, (3, 1))
    assert m.shape == (8, 8) and m[6, 2] == 1 and m.sum() == 1
    with pytest.raises(ValueError, match="outside the output grid of size 4x4"):
        spatial_dependency(model, u, (4, 0))


@pytest.mark.parametrize("probe", [(8, 0), (0, 8), (-1, 3), (2, 100)])
def test_probe_outside_grid(probe):
    with pytest.raises(ValueError, match="outside the output grid"):
        spatial_dependency(_conv(torch.ones(3, 3)),
                           torch.randn(2, 8, 8, dtype=torch.float64), probe)


@pytest.mark.parametrize("probe", [(1.0, 2), (1,), "ab", (True, 2)])
def test_malformed_probe(probe):
    with pytest.raises(TypeError, match="probe"):
        spatial_dependency(lambda u: u, torch.randn(2, 8, 8), probe)


@pytest.mark.parametrize("model", [
    lambda u: torch.zeros_like(u),  # not connected to the graph
    lambda u: 0.0 * u,              # connected, zero gradient
    lambda u: u[:, 1:] ** 2,        # depends on another channel only
])
def test_output_independent_of_input(model):
    with pytest.raises(ValueError, match="does not depend on input channel 0"):
        spatial_dependency(model, torch.randn(3, 2, 6, 6), (2, 2))


def test_dead_samples_are_left_out():
    model = lambda u: torch.relu(u)  # noqa: E731  zero gradient where u(p) < 0
    u = torch.randn(4, 6, 6)
    u[0, 2, 2], u[1:, 2, 2] = -1.0, 1.0
    m = spatial_dependency(model, u, (2, 2))
    assert m[2, 2] == 1.0  # averaged over the 3 live samples only


def test_empty_batch_and_bad_inputs():
    model = lambda u: u  # noqa: E731
    with pytest.raises(ValueError, match="empty batch"):
        spatial_dependency(model, torch.zeros(0, 4, 4), (1, 1))
    bad = torch.randn(2, 4, 4)
    bad[1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        spatial_dependency(model, bad, (1, 1))
    with pytest.raises(ValueError, match="shape"):
        spatial_dependency(model, torch.randn(4, 4), (1, 1))
    with pytest.raises(TypeError, match="floating"):
        spatial_dependency(model, torch.ones(2, 4, 4, dtype=torch.long), (1, 1))
    with pytest.raises(ValueError, match="channel"):
        spatial_dependency(model, torch.randn(2, 1, 4, 4), (1, 1), channel=1)
    with pytest.raises(ValueError, match="out_channel"):
        spatial_dependency(model, torch.randn(2, 1, 4, 4), (1, 1), out_channel=1)
    with pytest.raises(ValueError, match="normalize"):
        spatial_dependency(model, torch.randn(2, 4, 4), (1, 1), normalize="l1")
    with pytest.raises(TypeError, match="encode"):
        spatial_dependency(model, torch.randn(2, 4, 4), (1, 1), normalizer=object())
    with pytest.raises(ValueError, match="batch_size"):
        spatial_dependency(model, torch.randn(2, 4, 4), (1, 1), batch_size=0)


# ----------------------------------------------------------------- compare_maps


def test_compare_maps_identical_and_scaled():
    a = torch.rand(9, 9, dtype=torch.float64)
    s = compare_maps(a, 7.0 * a)  # max-normalisation removes the scale
    assert s["pearson"] == pytest.approx(1.0)
    assert s["rel_l2"] == pytest.approx(0.0, abs=1e-12)
    assert s["cosine"] == pytest.approx(1.0)


def test_compare_maps_against_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.random((6, 7)), rng.random((6, 7))
    s = compare_maps(a, torch.from_numpy(b))
    assert s["pearson"] == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1])
    an, bn = a / a.max(), b / b.max()
    assert s["rel_l2"] == pytest.approx(np.linalg.norm(an - bn) / np.linalg.norm(bn))
    # Pearson ignores an offset, rel_l2 does not
    s2 = compare_maps(a + 5.0, b)
    assert s2["pearson"] == pytest.approx(s["pearson"])
    assert s2["rel_l2"] != pytest.approx(s["rel_l2"])


def test_compare_maps_anticorrelated():
    a = torch.linspace(0, 1, 16).view(4, 4)
    assert compare_maps(a, 1 - a)["pearson"] == pytest.approx(-1.0)


def test_compare_maps_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        compare_maps(torch.rand(4, 4), torch.rand(4, 5))
    with pytest.raises(ValueError, match="2-D"):
        compare_maps(torch.rand(16), torch.rand(16))
    with pytest.raises(ValueError, match="identically zero"):
        compare_maps(torch.zeros(4, 4), torch.rand(4, 4))
    with pytest.raises(ValueError, match="constant"):
        compare_maps(torch.rand(4, 4), torch.ones(4, 4))
    nan = torch.rand(4, 4)
    nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        compare_maps(nan, torch.rand(4, 4))


# ------------------------------------------------------------------ mask, oracle


def test_mask_zeroes_points_before_normalising():
    w = torch.randn(3, 3, dtype=torch.float64)
    conv, n, probe = _conv(w), 8, (1, 4)
    mask = torch.ones(n, n, dtype=torch.bool)
    mask[0] = False  # e.g. a wall whose values never vary
    u = torch.randn(2, n, n, dtype=torch.float64)
    got = spatial_dependency(conv, u, probe, mask=mask)
    expected = _conv_expected(w, probe, n) * mask
    torch.testing.assert_close(got, expected / expected.norm())
    with pytest.raises(ValueError, match="mask must be a boolean"):
        spatial_dependency(conv, u, probe, mask=mask.double())
    with pytest.raises(ValueError, match="mask must be a boolean"):
        spatial_dependency(conv, u, probe, mask=mask[1:])
    with pytest.raises(ValueError, match="keeps no grid point"):
        spatial_dependency(conv, u, probe, mask=torch.zeros(n, n, dtype=torch.bool))
    only_row0 = ~mask
    with pytest.raises(ValueError, match="inside the mask"):
        spatial_dependency(lambda x: x, u, (5, 5), mask=only_row0)


def test_wave_oracle_gives_the_greens_function():
    """The exact linear wave operator's Jacobian is h^2 G_t(x0, .) (spec §4.2)."""
    wave = pytest.importorskip("refimpl.pde.wave")
    n, K, t, probe = 16, 6, 2.0, (5, 9)
    oracle = wave.oracle(t, resolution=n, K=K, dtype=torch.float64)
    u0, _ = wave.sample(3, t, resolution=n, K=K, dtype=torch.float64)
    got = spatial_dependency(oracle, u0, probe, normalize=None)
    h = 1.0 / (n - 1)
    expected = h**2 * wave.dependency_map(t, probe, resolution=n, K=K,
                                          dtype=torch.float64)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-9)
    assert compare_maps(got, expected)["pearson"] == pytest.approx(1.0)
