"""Tests of the operator models (refimpl.operators.models)."""

import math

import pytest
import torch
import torch.nn.functional as F

from refimpl.checkpoint import load_model, save_model
from refimpl.operators import (CNO, FNO, T1, DeepONet, GalerkinTransformer, UNet,
                               count_parameters)
from refimpl.operators.layers import GridEmbedding2d

TINY = {
    "FNO": lambda: FNO(2, 3, modes=3, width=6, n_layers=2, padding=0.25),
    "UNet": lambda: UNet(2, 3, width=4, depth=2),
    "UNet-batchnorm": lambda: UNet(2, 3, width=4, depth=2, norm="batch"),
    "UNet-groupnorm": lambda: UNet(2, 3, width=4, depth=2, norm="group"),
    "DeepONet": lambda: DeepONet(2, 3, n_basis=8, width=4, n_down=2, sensors=8,
                                 trunk_width=16, trunk_layers=2, n_frequencies=2),
    "CNO": lambda: CNO(2, 3, width=4, depth=2, n_res=1, n_res_neck=1),
    "CNO-latent": lambda: CNO(2, 3, width=4, depth=1, n_res=1, n_res_neck=1,
                              latent_resolution=8, mode="bilinear"),
    "CNO-nonorm": lambda: CNO(2, 3, width=4, depth=1, n_res=1, n_res_neck=1,
                              norm=None),
    "T1": lambda: T1(2, 3, modes=4, width=5, n_layers=2),
    "GalerkinTransformer": lambda: GalerkinTransformer(2, 3, width=8, n_layers=2,
                                                       n_heads=2),
    "FourierTransformer": lambda: GalerkinTransformer(
        2, 3, width=8, n_layers=2, n_heads=2, attention_type="fourier"),
}
FAMILY = {"FNO": "functional", "UNet": "spatial", "UNet-batchnorm": "spatial",
          "UNet-groupnorm": "spatial", "DeepONet": "functional",
          "CNO": "spatial", "CNO-latent": "spatial", "CNO-nonorm": "spatial",
          "T1": "functional", "GalerkinTransformer": "spatial",
          "FourierTransformer": "spatial"}


@pytest.fixture(params=sorted(TINY))
def name(request):
    return request.param


@pytest.mark.parametrize("shape", [(12, 12), (13, 11)])
def test_shapes_on_even_and_odd_grids(name, shape):
    model = TINY[name]()
    out = model(torch.randn(2, 2, *shape))
    assert out.shape == (2, 3, *shape) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_family_params_and_config(name):
    model = TINY[name]()
    assert model.family == FAMILY[name]
    assert model.n_params == count_parameters(model) == sum(
        p.numel() for p in model.parameters()) > 0
    clone = type(model)(**model.config())
    shapes = [p.shape for p in model.parameters()]
    assert [p.shape for p in clone.parameters()] == shapes
    text = repr(model)
    assert "family=" in text and "in_channels=2" in text


def test_checkpoint_roundtrip(name, tmp_path):
    model = TINY[name]().eval()
    x = torch.randn(1, 2, 12, 12)
    save_model(model, tmp_path / "m")
    loaded, record = load_model(tmp_path / "m")
    assert record["config"] == model.config()
    assert type(loaded) is type(model)
    torch.testing.assert_close(loaded(x), model(x))


def test_gradients_reach_every_parameter(name):
    model = TINY[name]()
    model(torch.randn(3, 2, 12, 13)).square().mean().backward()
    missing = [n for n, p in model.named_parameters()
               if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_reset_parameters_changes_weights_and_is_seeded(name):
    model = TINY[name]()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(7)
    model.reset_parameters()
    first = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(7)
    model.reset_parameters()
    assert all(torch.equal(first[k], v) for k, v in model.state_dict().items())
    changed = [k for k in before if not torch.equal(before[k], first[k])]
    weights = [n for n, p in model.named_parameters()
               if p.dim() > 1 and not n.endswith("bias")]  # biases start at zero
    assert set(weights) <= set(changed)


def test_bad_input(name):
    model = TINY[name]()
    with pytest.raises(ValueError, match="input channel"):
        model(torch.randn(1, 3, 12, 12))
    with pytest.raises(ValueError, match="4-D input"):
        model(torch.randn(2, 12, 12))
    with pytest.raises(ValueError, match="at least"):
        model(torch.randn(1, 2, 1, 12))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.ones(1, 2, 12, 12, dtype=torch.int64))


def test_device_placement(name, device):
    model = TINY[name]().to(device)
    out = model(torch.randn(2, 2, 12, 12, device=device))
    assert out.device.type == device.type


def test_too_small_grid_names_the_requirement():
    with pytest.raises(ValueError, match="at least 6x6"):
        FNO(1, 1, modes=3, width=4, n_layers=1)(torch.randn(1, 1, 5, 8))
    with pytest.raises(ValueError, match="at least 5x5"):
        T1(1, 1, modes=4)(torch.randn(1, 1, 4, 8))
    with pytest.raises(ValueError, match="at least 4x4"):
        UNet(1, 1, width=2, depth=2)(torch.randn(1, 1, 3, 8))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="padding is a fraction"):
        FNO(1, 1, modes=4, width=4, n_layers=1, padding=9)
    with pytest.raises(ValueError, match="modes"):
        FNO(1, 1, modes=0, width=4, n_layers=1)
    with pytest.raises(ValueError, match="width"):
        UNet(1, 1, width=0)
    with pytest.raises(ValueError, match="dct_type"):
        T1(1, 1, dct_type=3)
    with pytest.raises(ValueError, match="latent_resolution"):
        CNO(1, 1, depth=3, latent_resolution=4)


# ------------------------------------------------------------------------- FNO
def test_fno_equals_its_reference_composition():
    """Fused lifting (coordinates folded into a bias field), padding, fused blocks
    and projection equal the textbook composition of the layers."""
    model = FNO(2, 3, modes=(3, 2), width=5, n_layers=3, padding=0.2)
    x = torch.randn(2, 2, 11, 9)
    v = model.lifting(GridEmbedding2d(2)(x))
    assert (model.padding_cells(11), model.padding_cells(9)) == (1, 1)
    v = F.pad(v, (0, 1, 0, 1))
    for i, block in enumerate(model.blocks):
        w = block.pointwise.weight[:, :, None, None]
        v = block.spectral.forward_reference(v) + F.conv2d(v, w)
        v = F.gelu(v) if i < 2 else v
    expected = model.projection(v[..., :11, :9])
    torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)


def test_fno_is_periodic_shift_equivariant_without_grid_or_padding():
    model = FNO(1, 1, modes=4, width=8, n_layers=3, padding=0.0, grid=False)
    x = torch.randn(2, 1, 16, 12)
    shifted = model(torch.roll(x, (5, -3), dims=(-2, -1)))
    torch.testing.assert_close(shifted, torch.roll(model(x), (5, -3), dims=(-2, -1)),
                               rtol=1e-4, atol=1e-5)
    with_grid = FNO(1, 1, modes=4, width=8, n_layers=3, grid=True)
    diff = with_grid(torch.roll(x, 5, -2)) - torch.roll(with_grid(x), 5, -2)
    assert diff.abs().max() > 1e-3  # coordinates break the symmetry


def test_fno_discretisation_invariance_of_one_layer():
    """With one Fourier layer (point-wise maps commute with sub-sampling) the model
    is exactly consistent across grids on band-limited periodic inputs."""
    model = FNO(1, 1, modes=3, width=4, n_layers=1, grid=False).double()

    def field(n):
        s = torch.arange(n, dtype=torch.float64) / n
        x1, x2 = torch.meshgrid(s, s, indexing="ij")
        f = torch.sin(2 * math.pi * (x1 + 2 * x2)) + torch.cos(4 * math.pi * x1)
        return f[None, None]

    torch.testing.assert_close(model(field(24))[..., ::2, ::2], model(field(12)),
                               rtol=1e-10, atol=1e-12)


def test_fno_padding_keeps_the_physical_period():
    """n nodes with both walls span (n + pad) / (n - 1) after padding: 1 + padding
    on every grid where padding * (n - 1) is an integer."""
    model = FNO(1, 1, modes=2, width=2, n_layers=1, padding=0.125)
    periods = {n: (n + model.padding_cells(n)) / (n - 1) for n in (17, 33, 65, 129)}
    assert all(p == 1.125 for p in periods.values())
    assert FNO(1, 1, modes=2, width=2, n_layers=1).padding_cells(64) == 0


def test_fno_runs_at_another_resolution_and_under_autocast():
    model = FNO(1, 1, modes=4, width=6, n_layers=2, padding=0.125)
    assert model(torch.randn(1, 1, 16, 16)).shape == (1, 1, 16, 16)
    assert model(torch.randn(1, 1, 33, 20)).shape == (1, 1, 33, 20)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 1, 16, 16))
    assert torch.isfinite(out).all()


# ------------------------------------------------------------- DeepONet and T1
def test_deeponet_output_at_any_resolution_is_one_function():
    model = DeepONet(1, 2, n_basis=6, width=4, n_down=1, sensors=8, trunk_width=8,
                     trunk_layers=2).double()
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    fine = model(x, output_shape=(17, 17))
    torch.testing.assert_close(fine[..., ::2, ::2], model(x, output_shape=(9, 9)))
    assert model(torch.randn(2, 1, 20, 30, dtype=torch.float64)).shape == (2, 2, 20, 30)
    coeff = model.branch(x)
    tau = model.trunk(torch.tensor([[0.25, 0.5]], dtype=torch.float64))
    value = coeff @ tau.T + model.bias.view(1, -1, 1)
    ref = model(x, output_shape=(5, 3))[..., 1, 1]  # grid point (0.25, 0.5)
    torch.testing.assert_close(value[..., 0], ref)
    with pytest.raises(ValueError, match="trunk expects"):
        model.trunk(torch.zeros(4, 3))


def test_t1_is_consistent_across_grids_for_band_limited_input():
    model = T1(1, 1, modes=4, width=5, n_layers=2, grid=False).double()

    def field(n):
        x = torch.linspace(0, 1, n, dtype=torch.float64)
        return (torch.cos(math.pi * x)[:, None] * torch.cos(2 * math.pi * x)[None, :]
                + 0.5 * torch.cos(3 * math.pi * x)[None, :])[None, None]

    fine, coarse = model(field(17)), model(field(9))
    torch.testing.assert_close(fine[..., ::2, ::2], coarse)
    torch.testing.assert_close(model(field(9), output_shape=(17, 17)), fine)


def _smooth_field(n):
    s = torch.linspace(0, 1, n, dtype=torch.float64)
    x1, x2 = torch.meshgrid(s, s, indexing="ij")
    return (torch.sin(math.pi * x1) * torch.sin(2 * math.pi * x2)
            + 0.5 * torch.cos(math.pi * x1))[None, None]


def _grid_discrepancy(model, coarse=9, fine=17):
    """Relative difference between the output on the coarse grid and the output on
    the fine grid (nested: every other node) for the same smooth function."""
    out_coarse = model(_smooth_field(coarse))
    step = (fine - 1) // (coarse - 1)
    out_fine = model(_smooth_field(fine))[..., ::step, ::step]
    return ((out_fine - out_coarse).norm() / out_coarse.norm()).item()


def test_cno_latent_grid_makes_it_resolution_agnostic():
    """With a latent grid the same function on a finer grid gives (nearly) the same
    output: the stencils always see the latent grid. Without it (the same weights
    run on the input grid) the stencils span half the distance and the output
    changes a lot. Disabling the latent resampling in ``CNO.forward`` fails this."""
    torch.manual_seed(0)
    model = CNO(1, 1, width=4, depth=1, n_res=1, n_res_neck=1,
                latent_resolution=9).double().eval()
    plain = CNO(**{**model.config(), "latent_resolution": None}).double().eval()
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        latent_err, plain_err = _grid_discrepancy(model), _grid_discrepancy(plain)
    # what remains is the anti-aliased down-sampling of the input (a smoothing)
    assert latent_err < 0.25
    assert latent_err < 0.5 * plain_err
    # at the latent resolution no resampling happens at all
    x = torch.randn(1, 1, 9, 9, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), plain(x))
    up = F.interpolate(x, size=(15, 15), mode="bicubic", align_corners=True)
    assert model(up).shape == (1, 1, 15, 15)


def test_cno_reference_normalisation():
    """Default: BatchNorm after every convolution of a block, two per residual
    block (Raonić et al.); ``norm=None`` has none; a bad value is named."""
    model = CNO(1, 1, width=4, depth=2, n_res=1, n_res_neck=2)
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    n_blocks = 1 + 2 + 2 + 2  # lift, encoder, decoder up, decoder mix
    n_res = 2 * 1 + 2  # skips (one per level) + neck
    assert n_bn == n_blocks + 2 * n_res
    bare = CNO(1, 1, width=4, depth=2, n_res=1, n_res_neck=2, norm=None)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in bare.modules())
    assert model.n_params == bare.n_params + 2 * sum(
        m.num_features for m in model.modules()
        if isinstance(m, torch.nn.BatchNorm2d))
    with pytest.raises(ValueError, match="norm"):
        CNO(1, 1, norm="layer")
    # train mode normalises with batch statistics: scaling the whole batch is
    # undone by the BN after the first convolution (not so without it)
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(model.lift(5 * x), model.lift(x), rtol=1e-3, atol=1e-3)
    assert not torch.allclose(bare.lift(5 * x), bare.lift(x), atol=1e-2)


# --------------------------------------------------------- Galerkin transformer
def test_galerkin_transformer_is_close_across_grids():
    """The attention is a quadrature (1/n sum over points), so the same smooth
    function on nested grids gives outputs that agree better as the grids refine;
    a U-Net-like stencil model would not converge."""
    torch.manual_seed(0)
    model = GalerkinTransformer(1, 1, width=8, n_layers=2, n_heads=2).double()
    for layer in model.layers:  # a non-trivial attention (the init is near zero)
        torch.nn.init.normal_(layer.attention.qkv.weight, std=0.5)
    with torch.no_grad():
        coarse = _grid_discrepancy(model, 9, 17)
        fine = _grid_discrepancy(model, 17, 33)
    assert fine < 0.6 * coarse
    assert fine < 0.05


def test_galerkin_transformer_bad_arguments():
    with pytest.raises(ValueError, match="n_heads must divide width"):
        GalerkinTransformer(1, 1, width=6, n_heads=4)
    with pytest.raises(ValueError, match="attention_type"):
        GalerkinTransformer(1, 1, attention_type="softmax")
    with pytest.raises(ValueError, match="n_layers"):
        GalerkinTransformer(1, 1, n_layers=0)
