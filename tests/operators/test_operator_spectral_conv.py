"""Tests of the spectral convolutions (refimpl.operators.layers.spectral_conv)."""

import math

import pytest
import torch

from refimpl.operators.layers import (SpectralConv1d, SpectralConv2d,
                                      spectral_product_bmm, spectral_product_einsum)


@pytest.mark.parametrize("transform", ["dft", "fft"])
@pytest.mark.parametrize("shape", [(8, 8), (9, 11), (12, 7)])
@pytest.mark.parametrize("bias", [False, True])
def test_fast_path_equals_einsum_reference(shape, bias, transform):
    layer = SpectralConv2d(3, 5, 3, 2, bias=bias, transform=transform)
    x = torch.randn(4, 3, *shape)
    out = layer(x)
    ref = layer.forward_reference(x)
    assert out.shape == (4, 5, *shape) and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("transform", ["dft", "fft"])
def test_fast_path_equals_einsum_reference_float64_and_other_output_grid(transform):
    layer = SpectralConv2d(2, 3, 2, 3, bias=True, transform=transform).double()
    x = torch.randn(2, 2, 7, 8, dtype=torch.float64)
    for shape in [None, (10, 9), (4, 6)]:
        out, ref = layer(x, shape), layer.forward_reference(x, shape)
        assert out.dtype == torch.float64
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-13)


def test_mode_products_agree():
    m, b, ci, co = 6, 4, 3, 5
    x = torch.randn(b, ci, 2, 3, dtype=torch.complex64)
    w = torch.randn(ci, co, 2, 3, dtype=torch.complex64)
    ref = spectral_product_einsum(x, w)
    x_mm = x.permute(2, 3, 0, 1).reshape(m, b, ci)
    w_mm = w.permute(2, 3, 0, 1).reshape(m, ci, co)
    out = spectral_product_bmm(x_mm, w_mm).reshape(2, 3, b, co).permute(2, 3, 0, 1)
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("k1", [2, -2, 0, -3])
def test_single_mode_has_the_analytic_response(k1):
    """A plane wave cos(theta) is mapped to Re(R e^{i theta}) for retained modes."""
    h, w, k2 = 8, 10, 1
    layer = SpectralConv2d(1, 1, 3, 2).double()
    r = complex(0.7, -0.4)
    with torch.no_grad():
        layer.weight.zero_()
        block = layer.complex_weight().view(6, 2)
        row = k1 if k1 >= 0 else 6 + k1
        block[row, k2] = r
    i = torch.arange(h, dtype=torch.float64)[:, None]
    j = torch.arange(w, dtype=torch.float64)[None, :]
    theta = 2 * math.pi * (k1 * i / h + k2 * j / w)
    out = layer(torch.cos(theta)[None, None])[0, 0]
    expected = r.real * torch.cos(theta) - r.imag * torch.sin(theta)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_discarded_modes_are_filtered_out():
    layer = SpectralConv2d(1, 1, 2, 2).double()
    i = torch.arange(16, dtype=torch.float64)[:, None]
    j = torch.arange(16, dtype=torch.float64)[None, :]
    x = torch.cos(2 * math.pi * (5 * i + 3 * j) / 16)[None, None]  # |k1| = 5 > 2
    assert layer(x).abs().max() < 1e-12


def test_discretisation_invariance_on_band_limited_input():
    """The same band-limited periodic field on 16^2 and 32^2 gives the same output
    (at the common points), and synthesising on a finer grid matches."""
    layer = SpectralConv2d(2, 3, 3, 3, bias=True).double()

    def field(n):
        s = torch.arange(n, dtype=torch.float64) / n
        x1, x2 = torch.meshgrid(s, s, indexing="ij")
        a = torch.sin(2 * math.pi * (x1 + 2 * x2)) + torch.cos(2 * math.pi * 2 * x1)
        b = torch.cos(2 * math.pi * (x1 - x2))
        return torch.stack([a, b])[None]

    coarse, fine = layer(field(16)), layer(field(32))
    torch.testing.assert_close(fine[..., ::2, ::2], coarse, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(layer(field(16), output_shape=(32, 32)), fine,
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("transform", ["dft", "fft"])
def test_gradcheck_float64(transform):
    layer = SpectralConv2d(2, 2, 2, 2, bias=True, transform=transform).double()
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))
    w = layer.weight.detach().clone().requires_grad_(True)
    b = layer.bias.detach().clone().requires_grad_(True)

    def with_params(w, b):
        return torch.func.functional_call(layer, {"weight": w, "bias": b}, (x,))

    assert torch.autograd.gradcheck(with_params, (w, b))


def test_gradients_reach_weights_and_bias():
    layer = SpectralConv2d(3, 4, 2, 3, bias=True)
    layer(torch.randn(2, 3, 8, 8)).square().sum().backward()
    assert layer.weight.grad.abs().sum() > 0 and layer.bias.grad.abs().sum() > 0


def test_runs_in_float32_under_autocast_and_from_bf16():
    layer = SpectralConv2d(2, 2, 2, 2)
    x = torch.randn(2, 2, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, layer(x))
    assert layer(x.bfloat16()).dtype == torch.float32


def test_bad_input():
    layer = SpectralConv2d(3, 4, 4, 3)
    with pytest.raises(ValueError, match="input channel"):
        layer(torch.randn(1, 2, 8, 8))
    with pytest.raises(ValueError, match="at least 8x6"):
        layer(torch.randn(1, 3, 7, 8))
    with pytest.raises(ValueError, match="4-D input"):
        layer(torch.randn(3, 8, 8))
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.ones(1, 3, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="cannot hold"):
        layer(torch.randn(1, 3, 8, 8), output_shape=(6, 8))
    with pytest.raises(ValueError, match="modes1"):
        SpectralConv2d(3, 4, 0, 3)
    with pytest.raises(ValueError, match="transform"):
        SpectralConv2d(3, 4, 2, 3, transform="fftw")


def test_reset_parameters_is_seeded():
    layer = SpectralConv2d(2, 3, 2, 2, bias=True)
    before = [p.detach().clone() for p in layer.parameters()]
    torch.manual_seed(123)
    layer.reset_parameters()
    first = [p.detach().clone() for p in layer.parameters()]
    torch.manual_seed(123)
    layer.reset_parameters()
    assert all(torch.equal(a, p) for a, p in zip(first, layer.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(before, first))


def test_repr_and_weight_layout():
    layer = SpectralConv2d(2, 3, 4, 5)
    assert "modes1=4" in repr(layer) and "modes2=5" in repr(layer)
    assert "transform='dft'" in repr(layer)
    assert layer.classic_weight().shape == (2, 3, 8, 5)
    assert sum(p.numel() for p in layer.parameters()) == 2 * 2 * 3 * 8 * 5


@pytest.mark.parametrize("transform", ["dft", "fft"])
def test_device_placement(device, transform):
    layer = SpectralConv2d(2, 3, 2, 2, bias=True, transform=transform).to(device)
    x = torch.randn(2, 2, 8, 9, device=device)
    out = layer(x)
    assert out.device.type == device.type and out.shape == (2, 3, 8, 9)
    torch.testing.assert_close(out, layer.forward_reference(x), rtol=1e-5, atol=1e-6)
    layer1 = SpectralConv1d(2, 3, 3).to(device)
    assert layer1(torch.randn(2, 2, 10, device=device)).device.type == device.type


@pytest.mark.parametrize("transform", ["dft", "fft"])
@pytest.mark.parametrize("n", [8, 11])
def test_1d_equals_reference_and_is_shift_equivariant(n, transform):
    layer = SpectralConv1d(2, 3, 3, bias=True, transform=transform)
    x = torch.randn(4, 2, n)
    torch.testing.assert_close(layer(x), layer.forward_reference(x), rtol=1e-5,
                               atol=1e-6)
    torch.testing.assert_close(layer(torch.roll(x, 3, -1)),
                               torch.roll(layer(x), 3, -1), rtol=1e-4, atol=1e-5)
    assert layer(x, output_size=2 * n).shape == (4, 3, 2 * n)
    with pytest.raises(ValueError, match="3-D input"):
        layer(torch.randn(2, 8))
    with pytest.raises(ValueError, match="at least 6"):
        layer(torch.randn(1, 2, 5))
