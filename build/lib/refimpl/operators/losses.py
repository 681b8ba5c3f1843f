r"""Losses and metrics for operator learning, computed per sample over all non-batch
dimensions (channels, grid points and time frames flattened together)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["relative_l2", "median_relative_l1", "relative_lp"]

_REDUCTIONS = ("mean", "sum", "none", "median")


def _check_pair(pred: Tensor, target: Tensor, name: str) -> None:
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{name} expects tensors, got {type(pred).__name__} and "
                        f"{type(target).__name__}")
    if pred.shape != target.shape:
        raise ValueError(f"{name}: prediction shape {tuple(pred.shape)} does not match "
                         f"target shape {tuple(target.shape)}")
    if pred.dim() < 1 or pred.shape[0] == 0:
        raise ValueError(f"{name} needs a non-empty batch dimension, got shape "
                         f"{tuple(pred.shape)}")


def relative_lp(pred: Tensor, target: Tensor, p: float = 2.0,
                reduction: str = "mean") -> Tensor:
    r"""Per-sample relative :math:`L^p` error
    :math:`\ell_n = \Vert\hat y_n - y_n\Vert_p / \Vert y_n\Vert_p`, reduced over the
    batch.

    The norms are plain vector norms over all non-batch entries (the grid spacing
    cancels in the ratio). A sample whose target is identically zero has an infinite
    (or undefined) error; the function does not guard against it.

    Args:
        pred: ``(B, ...)`` prediction.
        target: ``(B, ...)`` target, same shape.
        p: the norm's exponent (default 2).
        reduction: ``"mean"`` (default), ``"sum"`` (the sum over the batch, as in
            the FNO code's ``LpLoss``), ``"median"`` or ``"none"`` (per-sample,
            shape ``(B,)``).
    """
    _check_pair(pred, target, "relative_lp")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    diff = (pred - target).flatten(1)
    err = torch.linalg.vector_norm(diff, ord=p, dim=1)
    ref = torch.linalg.vector_norm(target.flatten(1), ord=p, dim=1)
    ratio = err / ref
    if reduction == "mean":
        return ratio.mean()
    if reduction == "sum":
        return ratio.sum()
    if reduction == "median":
        return ratio.median()
    return ratio


def relative_l2(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    r"""Per-sample relative :math:`L^2` error
    :math:`\Vert\hat y_n-y_n\Vert_2/\Vert y_n\Vert_2` over all non-batch dimensions,
    averaged over the batch by default (the metric of the FNO family of benchmarks).

    Args:
        pred, target: ``(B, ...)`` tensors of the same shape.
        reduction: ``"mean"`` (default), ``"sum"``, ``"median"`` or ``"none"``.
    """
    return relative_lp(pred, target, 2.0, reduction)


def median_relative_l1(pred: Tensor, target: Tensor) -> Tensor:
    r"""Median over samples of :math:`\Vert\hat y_n-y_n\Vert_1/\Vert y_n\Vert_1`, the
    metric of the CNO "Representative PDE Benchmarks" (Raonić et al., 2023). Multiply
    by 100 for the percentages of their tables."""
    return relative_lp(pred, target, 1.0, "median")
