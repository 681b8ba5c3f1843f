"""Input validation shared by the operator layers and models (private)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

__all__ = ["check_field", "check_finite", "check_input_dtype", "check_positive_int",
           "check_shape"]


def check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` or raise a :class:`ValueError` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_shape(shape: object, name: str = "output_shape") -> tuple[int, int]:
    """An ``int`` or a pair ``(H, W)`` of positive integers (never truncated)."""
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape, shape)
    if not (isinstance(shape, (tuple, list, torch.Size)) and len(shape) == 2):
        raise ValueError(f"{name} must be an int or a pair (H, W), got {shape!r}")
    h, w = (check_positive_int(s, name) for s in shape)
    return h, w


def check_finite(x: Tensor, *, owner: str, name: str = "input") -> None:
    """Raise a :class:`ValueError` if ``x`` holds NaN or infinity.

    One reduction and one host synchronisation: called by the public ``forward``
    of the top-level models only, never inside layers.
    """
    if x.numel() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{owner} got an {name} with {bad} NaN or infinite value(s) "
                         f"(shape {tuple(x.shape)}); expected finite values")


def check_input_dtype(x: Tensor, reference: Tensor | None, *, owner: str,
                      also: Sequence[torch.dtype] = ()) -> None:
    """Outside autocast, ``x`` must have the dtype of the parameters
    (``reference``) or one of ``also`` (the conversions a model documents)."""
    if reference is None or x.dtype == reference.dtype or x.dtype in also:
        return
    if torch.is_autocast_enabled(x.device.type):
        return
    raise TypeError(
        f"{owner} has {reference.dtype} parameters and expects a {reference.dtype} "
        f"input, got {x.dtype}; convert the input with x.to({reference.dtype}) or "
        f"the model with .to({x.dtype}), or run under torch.autocast")


def check_field(
    x: Tensor,
    *,
    owner: str,
    channels: int | None,
    spatial_dims: int = 2,
    min_size: int | Sequence[int] = 1,
) -> None:
    """Check that ``x`` is a ``(B, C, *spatial)`` floating-point field.

    Args:
        x: the input tensor.
        owner: the layer or model name used in the error message.
        channels: the expected channel count ``C`` (``None``: any).
        spatial_dims: the number of spatial dimensions.
        min_size: the smallest admissible size of every spatial dimension
            (one int for all, or one per dimension).

    Raises:
        TypeError: if ``x`` is not a floating-point tensor.
        ValueError: on a wrong number of dimensions, a wrong channel count or a grid
            that is too small.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{owner} expects a torch.Tensor, got {type(x).__name__}")
    if not (x.is_floating_point()):
        raise TypeError(f"{owner} expects a floating-point tensor, got dtype {x.dtype}")
    names = ("H", "W", "D")[:spatial_dims] if spatial_dims > 1 else ("L",)
    expected = "(B, C, " + ", ".join(names) + ")"
    if x.dim() != 2 + spatial_dims:
        raise ValueError(
            f"{owner} expects a {2 + spatial_dims}-D input {expected}, "
            f"got shape {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{owner} got an empty batch (shape {tuple(x.shape)}); "
                         "expected at least one sample")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(
            f"{owner} expects {channels} input channel(s) (dim 1 of {expected}), "
            f"got {x.shape[1]} (shape {tuple(x.shape)})"
        )
    mins = [min_size] * spatial_dims if isinstance(min_size, int) else list(min_size)
    sizes = list(x.shape[2:])
    if any(s < m for s, m in zip(sizes, mins)):
        raise ValueError(
            f"{owner} needs a grid of at least {'x'.join(map(str, mins))} "
            f"points, got {'x'.join(map(str, sizes))}"
        )


def _is_low_precision(x: Tensor) -> bool:
    return x.dtype in (torch.float16, torch.bfloat16)
