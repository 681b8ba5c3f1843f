"""Tests of the point-wise Gaussian normaliser."""

import pytest
import torch

from refimpl.pde import UnitGaussianNormalizer

F64 = torch.float64


def _data(n=200):
    g = torch.Generator().manual_seed(0)
    scale = torch.linspace(0.5, 3.0, 16, dtype=F64).reshape(1, 1, 4, 4)
    shift = torch.arange(16, dtype=F64).reshape(1, 1, 4, 4)
    return torch.randn(n, 1, 4, 4, generator=g, dtype=F64) * scale + shift


def test_encode_standardises_every_point_and_decode_inverts():
    x = _data()
    norm = UnitGaussianNormalizer(eps=0.0).fit(x)
    z = norm.encode(x)
    torch.testing.assert_close(z.mean(0), torch.zeros(1, 4, 4, dtype=F64), atol=1e-12,
                               rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(1, 4, 4, dtype=F64), atol=1e-12,
                               rtol=0)
    torch.testing.assert_close(norm.decode(z), x)
    assert torch.equal(norm(x), z)
    assert norm.mean.shape == (1, 1, 4, 4)


def test_constant_points_stay_finite():
    x = _data()
    x[:, :, 0, :] = 0.0  # a Dirichlet wall
    norm = UnitGaussianNormalizer().fit(x)
    z = norm.encode(x)
    assert bool(torch.isfinite(z).all()) and float(z[:, :, 0].abs().max()) == 0.0


def test_differentiable_with_the_expected_gradient():
    x = _data()
    norm = UnitGaussianNormalizer().fit(x)
    inp = x[:3].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(norm.encode, (inp,))
    assert torch.autograd.gradcheck(norm.decode, (inp,))
    norm.encode(inp).sum().backward()
    expected = (1.0 / (norm.std + norm.eps)).expand_as(inp)
    torch.testing.assert_close(inp.grad, expected)


def test_other_reduction_dims():
    x = _data()
    norm = UnitGaussianNormalizer(dim=(0, 2, 3)).fit(x)
    assert norm.mean.shape == (1, 1, 1, 1)
    torch.testing.assert_close(norm.mean.flatten(), x.mean().reshape(1))


def test_device_move_and_state_dict_round_trip(device):
    x = _data().float()
    norm = UnitGaussianNormalizer().fit(x).to(device)
    assert norm.mean.device.type == device.type
    z = norm.encode(x.to(device))
    assert z.device.type == device.type
    fresh = UnitGaussianNormalizer()
    fresh.load_state_dict(norm.state_dict())
    torch.testing.assert_close(fresh.encode(x), z.cpu())
    assert "shape=(1, 1, 4, 4)" in repr(norm) and "eps=1e-05" in repr(norm)
    fresh.reset_parameters()
    assert not fresh.fitted


def test_bad_input():
    norm = UnitGaussianNormalizer()
    with pytest.raises(RuntimeError, match="not fitted"):
        norm.encode(torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="NaN"):
        norm.fit(torch.full((3, 2), float("nan")))
    with pytest.raises(ValueError, match="at least 2"):
        norm.fit(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="dim"):
        UnitGaussianNormalizer(dim=5).fit(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="non-negative"):
        UnitGaussianNormalizer(eps=-1.0)
    norm.fit(_data())
    with pytest.raises(ValueError, match="dimensions"):
        norm.encode(torch.zeros(1, 4, 4, dtype=F64))
    with pytest.raises(ValueError, match="does not match"):
        norm.decode(torch.zeros(2, 1, 8, 8, dtype=F64))
    with pytest.raises(TypeError, match="Tensor"):
        norm.encode([[1.0]])
