"""Tests of the dual-space models (DualSpaceMultiScale, DualSpaceFNO) and of the
band-limited resampling they rely on."""

import math

import pytest
import torch

from refimpl.checkpoint import load_model, registered_models, save_model
from refimpl.operators.layers.spectral_conv import SpectralConv2d
from refimpl.operators.layers.unet_blocks import DownBlock2d
from refimpl.operators.models.dual_space import (
    DualSpaceBlock,
    DualSpaceFNO,
    DualSpaceMultiScale,
    MultiScaleCore,
    fourier_resample,
)


def _trig_field(n: int, channels: int = 2, batch: int = 2, kmax: int = 3,
                dtype=torch.float64) -> torch.Tensor:
    """A random trigonometric polynomial with modes |k_i| <= kmax sampled on the
    n x n grid x_j = j / n: the same continuous field at every resolution."""
    g = torch.Generator().manual_seed(1)
    x = torch.arange(n, dtype=dtype) / n
    out = torch.zeros(batch, channels, n, n, dtype=dtype)
    for k1 in range(-kmax, kmax + 1):
        for k2 in range(-kmax, kmax + 1):
            a, b = torch.randn(2, batch, channels, 1, 1, generator=g, dtype=dtype)
            phase = 2 * math.pi * (k1 * x[:, None] + k2 * x[None, :])
            out += a * torch.cos(phase) + b * torch.sin(phase)
    return out


def _small_msn(**kw):
    args = dict(in_channels=2, out_channels=3, width=4, modes=4, latent_resolution=16,
                depth=2, n_res=1, n_res_neck=1)
    args.update(kw)
    return DualSpaceMultiScale(**args)


def _small_dfno(**kw):
    args = dict(in_channels=2, out_channels=3, modes=4, width=6, n_layers=2,
                latent_resolution=16, projection_channels=8)
    args.update(kw)
    return DualSpaceFNO(**args)


def _small_msn_batchnorm(**kw):
    return _small_msn(norm="batch", **kw)


MODELS = [_small_msn, _small_msn_batchnorm, _small_dfno]


# ------------------------------------------------------------------ resampling
def test_resample_is_exact_on_trigonometric_polynomials():
    coarse, fine = _trig_field(16), _trig_field(40)
    torch.testing.assert_close(fourier_resample(coarse, 40), fine)
    torch.testing.assert_close(fourier_resample(fine, 16), coarse)
    # Odd and rectangular grids.
    torch.testing.assert_close(fourier_resample(coarse, (21, 16)).shape[-2:],
                               torch.Size([21, 16]))


def test_resample_upsampling_keeps_coarse_samples_including_nyquist():
    v = torch.randn(2, 3, 8, 8, dtype=torch.float64)  # has Nyquist content
    up = fourier_resample(v, 16)
    torch.testing.assert_close(up[..., ::2, ::2], v)
    assert fourier_resample(v, 8) is v


def test_resample_downsampling_is_a_low_pass_filter():
    n = 32
    x = torch.arange(n, dtype=torch.float64) / n
    high = torch.cos(2 * math.pi * 10 * x)[None, None, :, None].expand(1, 1, n, n)
    low = torch.cos(2 * math.pi * 2 * x)[None, None, :, None].expand(1, 1, n, n)
    out = fourier_resample(high + low, 16)  # mode 10 >= 16/2 is removed, no alias
    torch.testing.assert_close(out, low[..., ::2, ::2].contiguous())


def test_resample_gradcheck_and_bad_input():
    v = torch.randn(1, 1, 6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: fourier_resample(t, (9, 4)), (v,))
    with pytest.raises(ValueError, match="4-D"):
        fourier_resample(torch.randn(4, 4), 8)
    with pytest.raises(TypeError, match="floating-point"):
        fourier_resample(torch.ones(1, 1, 4, 4, dtype=torch.long), 8)
    with pytest.raises(ValueError, match="size"):
        fourier_resample(torch.randn(1, 1, 4, 4), 0)


# ------------------------------------------------------------------ models
@pytest.mark.parametrize("make", MODELS)
def test_shapes_at_two_resolutions_and_requested_output_grid(make):
    model = make().eval()
    for n in (32, 64):
        assert model(torch.randn(2, 2, n, n)).shape == (2, 3, n, n)
    out = model(torch.randn(2, 2, 32, 32), output_shape=(24, 40))
    assert out.shape == (2, 3, 24, 40)
    # Inputs coarser than 2 * modes are interpolated first.
    assert model(torch.randn(1, 2, 6, 6)).shape == (1, 3, 6, 6)


@pytest.mark.parametrize("make", MODELS)
def test_band_limited_input_gives_consistent_outputs_across_resolutions(make):
    torch.manual_seed(0)
    model = make().double().eval()
    with torch.no_grad():
        out32 = model(_trig_field(32))
        out64 = model(_trig_field(64))
    # The same continuous input gives the same output function, sampled on each grid.
    torch.testing.assert_close(out64[..., ::2, ::2], out32, rtol=1e-9, atol=1e-9)
    # A model without the latent grid (plain grid stencils) is not consistent.
    plain = _small_dfno(latent_resolution=None).double().eval()
    with torch.no_grad():
        a, b = plain(_trig_field(32)), plain(_trig_field(64))[..., ::2, ::2]
    assert (a - b).abs().max() > 1e-6


@pytest.mark.parametrize("make", MODELS)
def test_gradient_reaches_every_parameter(make):
    model = make().train()
    x = torch.randn(3, 2, 16, 16, requires_grad=True)
    model(x).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("make", MODELS)
def test_device_placement(make, device):
    model = make().to(device).eval()
    x = torch.randn(2, 2, 16, 16, device=device)
    y = model(x)
    assert y.device.type == device.type and y.dtype == torch.float32
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("make", MODELS)
def test_bad_input_raises(make):
    model = make()
    with pytest.raises(ValueError, match="input channel"):
        model(torch.randn(1, 5, 16, 16))
    with pytest.raises(ValueError, match="4-D"):
        model(torch.randn(2, 16, 16))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.ones(1, 2, 16, 16, dtype=torch.int64))
    with pytest.raises(ValueError, match="output_shape"):
        model(torch.randn(1, 2, 16, 16), output_shape=(16, 0))
    with pytest.raises(ValueError, match="output_shape"):
        model(torch.randn(1, 2, 16, 16), output_shape=(1, 2, 3))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="divisible"):
        _small_msn(latent_resolution=20, depth=3)
    with pytest.raises(ValueError, match="latent_resolution"):
        _small_msn(latent_resolution=8, modes=6)
    with pytest.raises(ValueError, match="width"):
        _small_msn(width=0)
    with pytest.raises(ValueError, match="latent_resolution"):
        _small_dfno(latent_resolution=6)
    with pytest.raises(ValueError, match="padding"):
        _small_dfno(padding=-1)
    with pytest.raises(ValueError, match="n_layers"):
        _small_dfno(n_layers=0)


@pytest.mark.parametrize("make", MODELS)
def test_reset_parameters_redraws_weights(make):
    model = make()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    model.reset_parameters()
    zero = [n for n, p in model.named_parameters()
            if p.abs().sum() == 0 and not n.endswith(("bias", "norm.weight"))]
    assert not zero, zero
    assert torch.isfinite(model.eval()(torch.randn(1, 2, 16, 16))).all()


@pytest.mark.parametrize("make", MODELS)
def test_seeded_construction_is_reproducible(make):
    torch.manual_seed(3)
    a = make().eval()
    torch.manual_seed(3)
    b = make().eval()
    x = torch.randn(2, 2, 16, 16)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


@pytest.mark.parametrize("make", MODELS)
def test_config_and_checkpoint_round_trip(make, tmp_path):
    model = make().eval()
    assert type(model).__name__ in registered_models()
    assert model.family == "dual"
    rebuilt = type(model)(**model.config())
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(
        p.numel() for p in model.parameters())
    save_model(model, tmp_path / "m")
    loaded, record = load_model(tmp_path / "m")
    x = torch.randn(1, 2, 16, 16)
    torch.testing.assert_close(loaded(x), model(x))
    assert record["config"] == model.config()
    assert "width=" in repr(model)


def test_ablations_remove_the_named_part():
    full = _small_msn()
    no_spec = _small_msn(spectral=False)
    no_ms = _small_msn(multiscale=False)
    assert any(isinstance(m, SpectralConv2d) for m in full.modules())
    assert not any(isinstance(m, SpectralConv2d) for m in no_spec.modules())
    assert any(isinstance(m, DownBlock2d) for m in full.modules())
    assert not any(isinstance(m, DownBlock2d) for m in no_ms.modules())
    for m in (no_spec, no_ms):
        assert m.eval()(torch.randn(1, 2, 16, 16)).shape == (1, 3, 16, 16)
    # Same number of residual blocks with and without the multi-scale structure.
    core = MultiScaleCore(4, 2, 2, 3)
    flat = MultiScaleCore(4, 2, 2, 3, multiscale=False)
    assert len(flat.blocks) == 2 * 2 * 2 + 3
    assert core(torch.randn(1, 4, 16, 16)).shape == (1, 4, 16, 16)


def test_core_spans_three_resolutions():
    core = MultiScaleCore(4, depth=2)
    seen = []
    hooks = [b.register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
             for b in core.modules() if type(b).__name__ == "ResidualBlock2d"]
    core(torch.randn(1, 4, 16, 16))
    for h in hooks:
        h.remove()
    assert sorted(set(seen)) == [4, 8, 16]


def test_dual_space_block_without_local_path_is_a_fourier_layer():
    block = DualSpaceBlock(width=3, modes=2)
    with torch.no_grad():
        block.local.weight.zero_()
    v = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(block(v), torch.nn.functional.gelu(block.spectral(v)))
    # The local path alone is a 3 x 3 stencil: a delta spreads to its 8 neighbours.
    with torch.no_grad():
        block.spectral.weight.zero_()
        block.spectral.bias.zero_()
    block.local.reset_parameters()
    delta = torch.zeros(1, 3, 8, 8)
    delta[..., 4, 4] = 1.0
    out = block(delta)
    support = (out.abs().sum(1)[0] > 0).nonzero()
    assert len(support) == 9 and support.min() >= 3 and support.max() <= 5


def test_multiscale_padding_is_the_unpadded_model_on_the_zero_padded_input():
    """With domain padding the model reads the input zero-padded on the high side,
    synthesises its output on the padded grid and crops it: in eval mode (BN is
    then point-wise) that equals the unpadded model run on the padded input."""
    from torch.nn import functional as F

    from refimpl.operators.models.fno import padding_cells

    torch.manual_seed(0)
    padded = _small_msn(norm="batch", padding=0.125).double().eval()
    plain = _small_msn(norm="batch").double().eval()
    plain.load_state_dict(padded.state_dict())  # padding adds no parameter
    x = torch.randn(2, 2, 16, 16, dtype=torch.float64)
    p = padding_cells(16, 0.125)
    assert p > 0
    with torch.no_grad():
        out = padded(x)
        ref = plain(F.pad(x, (0, p, 0, p)))[..., :16, :16]
        assert out.shape == (2, 3, 16, 16)
        torch.testing.assert_close(out, ref)
        assert not torch.allclose(out, plain(x))
        assert padded(x, output_shape=24).shape == (2, 3, 24, 24)
        assert padded(x, output_shape=6).shape == (2, 3, 6, 6)
    assert padded.config()["padding"] == 0.125
    with pytest.raises(ValueError, match="padding"):
        _small_msn(padding=1.5)
    with pytest.raises(ValueError, match="padding"):
        _small_msn(padding=True)
