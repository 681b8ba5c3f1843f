"""Exact cases of the operator losses (refimpl.operators.losses)."""

import pytest
import torch

from refimpl.operators.losses import median_relative_l1, relative_l2, relative_lp


def test_relative_l2_exact_values():
    target = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    pred = torch.tensor([[3.0, 0.0], [1.5, 0.0]])
    # sample 0: |(0, 4)| / |(3, 4)| = 0.8; sample 1: 0.5 / 1 = 0.5
    torch.testing.assert_close(relative_l2(pred, target, "none"),
                               torch.tensor([0.8, 0.5]))
    torch.testing.assert_close(relative_l2(pred, target), torch.tensor(0.65))
    torch.testing.assert_close(relative_l2(pred, target, "sum"), torch.tensor(1.3))


def test_relative_l2_flattens_all_non_batch_dims_and_is_scale_free():
    y = torch.randn(3, 2, 5, 4)
    torch.testing.assert_close(relative_l2(y, y), torch.tensor(0.0))
    torch.testing.assert_close(relative_l2(2 * y, y, "none"), torch.ones(3))
    torch.testing.assert_close(relative_l2(torch.zeros_like(y), y), torch.tensor(1.0))
    torch.testing.assert_close(relative_l2(-y, y), torch.tensor(2.0))
    direct = ((y[1] * 1.1 - y[1]).norm() / y[1].norm())
    torch.testing.assert_close(relative_l2(1.1 * y, y, "none")[1], direct)


def test_median_relative_l1_exact():
    target = torch.tensor([[1.0, 1.0, 2.0], [2.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    pred = torch.tensor([[1.0, 2.0, 2.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    # per sample: 1/4, 2/2, 0 -> median 0.25
    torch.testing.assert_close(median_relative_l1(pred, target), torch.tensor(0.25))
    torch.testing.assert_close(relative_lp(pred, target, 1.0, "none"),
                               torch.tensor([0.25, 1.0, 0.0]))


def test_relative_l2_is_differentiable():
    pred = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: relative_l2(p, target), (pred,))


def test_bad_input():
    with pytest.raises(ValueError, match="does not match"):
        relative_l2(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="reduction"):
        relative_l2(torch.zeros(2, 3), torch.ones(2, 3), reduction="max")
    with pytest.raises(ValueError, match="non-empty batch"):
        relative_l2(torch.zeros(0, 3), torch.zeros(0, 3))
    with pytest.raises(TypeError, match="tensors"):
        relative_l2([1.0], torch.ones(1))
