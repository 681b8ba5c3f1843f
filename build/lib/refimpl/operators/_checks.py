"""Input validation shared by the operator layers and models (private)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

__all__ = ["check_field", "check_positive_int"]


def check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` or raise a :class:`ValueError` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


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
