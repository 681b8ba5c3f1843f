"""Tests of the non-spectral operator layers (grid, channel maps, blocks, DCT)."""

import math

import numpy as np
import pytest
import scipy.fft
import torch
import torch.nn.functional as F

from refimpl.operators.layers import (GalerkinAttention, GalerkinEncoderLayer,
                                      AntiAliasedActivation, ChannelLinear,
                                      ChannelMLP, CNOBlock2d, CNOResidualBlock2d,
                                      DownBlock2d, FNOBlock2d, GridEmbedding2d,
                                      ResidualBlock2d, T1Block2d, UpBlock2d, dct,
                                      dct_2d, grid_2d, idct, idct_2d, resample)


def test_grid_embedding_values_and_shape():
    x = torch.zeros(2, 3, 5, 9)
    out = GridEmbedding2d(3)(x)
    assert out.shape == (2, 5, 5, 9)
    torch.testing.assert_close(out[0, 3, :, 0], torch.linspace(0, 1, 5))
    torch.testing.assert_close(out[1, 4, 0, :], torch.linspace(0, 1, 9))
    assert torch.all(out[:, 3].diff(dim=-1) == 0)
    assert torch.all(out[:, 4].diff(dim=-2) == 0)
    with pytest.raises(ValueError, match="4-D input"):
        GridEmbedding2d()(torch.zeros(3, 5, 9))
    with pytest.raises(ValueError, match="input channel"):
        GridEmbedding2d(2)(x)
    with pytest.raises(ValueError, match="at least 2x2"):
        grid_2d(1, 4)


def test_channel_linear_is_a_1x1_convolution():
    lin = ChannelLinear(3, 4)
    x = torch.randn(2, 3, 5, 6)
    ref = F.conv2d(x, lin.weight[:, :, None, None], lin.bias)
    torch.testing.assert_close(lin(x), ref)
    res = torch.randn(2, 4, 5, 6)
    torch.testing.assert_close(lin(x, residual=res), ref + res)
    no_bias = ChannelLinear(3, 4, bias=False)
    ref = F.conv2d(x, no_bias.weight[:, :, None, None])
    torch.testing.assert_close(no_bias(x), ref)
    assert lin(torch.randn(2, 3, 7)).shape == (2, 4, 7)  # any spatial dimension
    with pytest.raises(ValueError, match=r"\(B, 3"):
        lin(torch.randn(2, 5, 4, 4))


def test_channel_mlp():
    mlp = ChannelMLP(2, 8, 3)
    x = torch.randn(1, 2, 4, 4)
    expected = mlp.fc2(F.gelu(mlp.fc1(x)))
    torch.testing.assert_close(mlp(x), expected)
    with pytest.raises(ValueError, match="unknown activation"):
        ChannelMLP(2, 8, 3, activation="swish9")


def test_fno_block_matches_its_formula():
    block = FNOBlock2d(4, 2, 3)
    v = torch.randn(2, 4, 8, 9)
    spec = block.spectral.forward_reference(v)
    expected = F.gelu(spec + F.conv2d(v, block.pointwise.weight[:, :, None, None]))
    torch.testing.assert_close(block(v), expected, rtol=1e-5, atol=1e-6)
    last = FNOBlock2d(4, 2, 3, activation=False)
    assert (last(v) < -0.2).any()  # no GELU: values below GELU's minimum occur


@pytest.mark.parametrize("shape", [(8, 8), (7, 9)])
def test_unet_blocks_shapes(shape):
    x = torch.randn(2, 3, *shape)
    assert ResidualBlock2d(3, 5)(x).shape == (2, 5, *shape)
    down = DownBlock2d(3, 6)(x)
    assert down.shape == (2, 6, math.ceil(shape[0] / 2), math.ceil(shape[1] / 2))
    up = UpBlock2d(6, 3, 4)(down, x)
    assert up.shape == (2, 4, *shape)


def test_unet_block_normalisation():
    from torch import nn

    plain = ResidualBlock2d(3, 12)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in plain.modules())
    # Without normalisation the weights keep the layout of the blocks' first version,
    # so existing U-Net checkpoints load unchanged.
    assert sorted(plain.state_dict()) == ["conv1.bias", "conv1.weight", "conv2.bias",
                                          "conv2.weight", "skip.bias", "skip.weight"]
    batch = ResidualBlock2d(3, 12, norm="batch")
    assert isinstance(batch.norm1, nn.BatchNorm2d) and "norm='batch'" in repr(batch)
    group = ResidualBlock2d(3, 12, norm="group")
    assert isinstance(group.norm2, nn.GroupNorm) and group.norm2.num_groups == 4  # gcd(12, 8)
    x = torch.randn(4, 3, 8, 8)
    # GroupNorm normalises each sample on its own: a sample's output does not depend
    # on the rest of the batch, in training mode too.
    torch.testing.assert_close(group(x)[:1], group(x[:1]))
    # BatchNorm in eval mode uses its running statistics: the same per-sample property.
    batch(x)
    batch.eval()
    torch.testing.assert_close(batch(x)[:1], batch(x[:1]))
    with pytest.raises(ValueError, match="unknown norm 'layer'"):
        ResidualBlock2d(3, 4, norm="layer")


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size", [(16, 18), (4, 5), (8, 9)])
def test_resample_equals_interpolate(mode, size):
    x = torch.randn(2, 3, 8, 9, dtype=torch.float64)
    ref = F.interpolate(x, size=size, mode=mode, align_corners=False,
                        antialias=size[0] < 8 or size[1] < 9)
    torch.testing.assert_close(resample(x, size, mode), ref)
    with pytest.raises(ValueError, match="mode"):
        resample(x, (4, 4), "nearest")


def test_anti_aliased_activation_matches_its_definition():
    act = AntiAliasedActivation(negative_slope=0.1)
    x = torch.randn(2, 3, 7, 8, dtype=torch.float64)
    up = F.interpolate(x, size=(14, 16), mode="bicubic", align_corners=False)
    ref = F.interpolate(F.leaky_relu(up, 0.1), size=(4, 5), mode="bicubic",
                        align_corners=False, antialias=True)
    torch.testing.assert_close(act(x, (4, 5)), ref)


def test_anti_aliased_activation():
    act = AntiAliasedActivation()
    x = torch.randn(2, 3, 8, 8)
    assert act(x).shape == x.shape
    assert act(x, (4, 5)).shape == (2, 3, 4, 5)
    const = torch.full((1, 1, 8, 8), -2.0)
    torch.testing.assert_close(act(const), F.leaky_relu(const, 0.01))
    with pytest.raises(ValueError, match="mode"):
        AntiAliasedActivation(mode="nearest")
    assert CNOBlock2d(3, 4)(x, (5, 5)).shape == (2, 4, 5, 5)
    assert CNOResidualBlock2d(3)(x).shape == x.shape


def test_t1_block():
    block = T1Block2d(3, 4, 5)
    c = torch.randn(2, 3, 4, 5)
    w = block.channel_mix.weight
    mixed = block.mode_mix1 @ c @ block.mode_mix2.transpose(-1, -2)
    expected = torch.sin(torch.einsum("oi,bixy->boxy", w, c) + mixed + block.bias)
    torch.testing.assert_close(block(c), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="expects"):
        block(torch.randn(2, 3, 5, 5))


@pytest.mark.parametrize("dct_type", [1, 2])
@pytest.mark.parametrize("n", [2, 5, 8])
def test_dct_matches_scipy_and_inverts(dct_type, n):
    x = torch.randn(3, n, dtype=torch.float64)
    norm = 2 * (n - 1) if dct_type == 1 else 2 * n
    ref = scipy.fft.dct(x.numpy(), type=dct_type, axis=-1) / norm
    np.testing.assert_allclose(dct(x, dct_type).numpy(), ref, atol=1e-13)
    torch.testing.assert_close(idct(dct(x, dct_type), n, dct_type), x)
    y = torch.randn(2, n, 4, dtype=torch.float64)
    torch.testing.assert_close(idct(dct(y, dct_type, dim=1), n, dct_type, dim=1), y)


def test_dct1_coefficients_do_not_depend_on_the_grid():
    """cos(pi k x) sampled at x = k/(n-1) has the same DCT-I coefficients on every
    grid, and truncated synthesis samples the same band-limited function."""
    def f(n):
        x = torch.linspace(0, 1, n, dtype=torch.float64)
        g = 1.0 + 0.5 * torch.cos(math.pi * x) - 0.3 * torch.cos(3 * math.pi * x)
        return g[:, None] * torch.cos(2 * math.pi * x)[None, :]

    c9, c17 = dct_2d(f(9)), dct_2d(f(17))
    torch.testing.assert_close(c17[:9, :9], c9)
    torch.testing.assert_close(idct_2d(c9[:5, :5], (17, 17)), f(17))
    with pytest.raises(ValueError, match="type"):
        dct(torch.randn(4), type=3)
    with pytest.raises(ValueError, match="at least 2"):
        dct(torch.randn(1))
    with pytest.raises(ValueError, match="cannot synthesise"):
        idct(torch.randn(6), 4)


def test_dct_gradcheck():
    x = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: idct(dct(t, 2)[..., :3], 6, 2), (x,))
    assert torch.autograd.gradcheck(lambda t: dct(t, 1), (x,))


# -------------------------------------------------------------- linear attention
def _attention_reference(layer, x):
    """Cao's formulas, head by head, with explicit n x n products for Fourier."""
    n = x.shape[1]
    h, dh = layer.n_heads, layer.head_dim
    q, k, v = layer.qkv(x).chunk(3, dim=-1)
    outs = []

    def ln(t, which, sl):
        w = getattr(layer, f"norm_{which}_weight")[sl]
        bias = getattr(layer, f"norm_{which}_bias")[sl]
        return torch.nn.functional.layer_norm(t, (dh,), w, bias, layer.eps)

    for i in range(h):
        sl = slice(i * dh, (i + 1) * dh)
        qi, ki, vi = q[..., sl], k[..., sl], v[..., sl]

        if layer.attention_type == "galerkin":
            outs.append(qi @ (ln(ki, "a", sl).transpose(1, 2) @ ln(vi, "b", sl)) / n)
        else:
            outs.append((ln(qi, "a", sl) @ ln(ki, "b", sl).transpose(1, 2)) @ vi / n)
    return layer.out(torch.cat(outs, dim=-1))


@pytest.mark.parametrize("kind", ["galerkin", "fourier"])
def test_galerkin_attention_matches_cao_formula(kind):
    layer = GalerkinAttention(8, n_heads=2, attention_type=kind).double()
    with torch.no_grad():  # non-trivial affine norms and weights
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(3, 17, 8, dtype=torch.float64)
    torch.testing.assert_close(layer(x), _attention_reference(layer, x))
    # softmax-free attention commutes with a permutation of the points
    perm = torch.randperm(17)
    torch.testing.assert_close(layer(x[:, perm]), layer(x)[:, perm])
    # the 1/n quadrature: duplicating every point leaves each output unchanged
    torch.testing.assert_close(layer(torch.cat([x, x], dim=1))[:, :17], layer(x))


def test_galerkin_attention_init_and_errors():
    layer = GalerkinAttention(8, n_heads=4)
    d = 8
    w_q = layer.qkv.weight[:d]
    assert (w_q.diagonal() - 1e-2).abs().max() < 0.05  # near 1e-2 * identity
    assert "attention_type='galerkin'" in repr(layer)
    with pytest.raises(ValueError, match="n_heads must divide embed_dim"):
        GalerkinAttention(6, n_heads=4)
    with pytest.raises(ValueError, match="attention_type"):
        GalerkinAttention(8, attention_type="softmax")
    with pytest.raises(ValueError, match=r"\(B, n, 8\)"):
        layer(torch.randn(2, 5, 7))
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.ones(2, 5, 8, dtype=torch.int64))
    enc = GalerkinEncoderLayer(8, n_heads=2, ffn_width=12)
    assert enc(torch.randn(2, 5, 8)).shape == (2, 5, 8)
    assert "ffn_width=12" in repr(enc)
