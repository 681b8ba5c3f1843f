"""Argument checks shared by the PDE generators (private).

Every public generator validates its arguments up front so that a bad value
fails with a :class:`ValueError` (or :class:`TypeError`) that names the argument
and what is expected, before any work is done or any cache file is written.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

__all__: list[str] = []

_FLOAT_DTYPES = (torch.float32, torch.float64)


def positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an ``int`` that is at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def real(name: str, value: Any) -> float:
    """``value`` as a finite ``float``."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def positive(name: str, value: Any) -> float:
    """``value`` as a finite ``float`` > 0."""
    value = real(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def non_negative(name: str, value: Any) -> float:
    """``value`` as a finite ``float`` >= 0."""
    value = real(name, value)
    if value < 0:
        raise ValueError(f"{name} must be non-negative, got {value}")
    return value


def horizons(t: Any) -> tuple[list[float], bool]:
    """One horizon or a sequence of horizons, each finite and >= 0.

    Returns the list of horizons and whether ``t`` was a scalar.
    """
    if isinstance(t, (str, bytes)):
        raise TypeError(f"t must be a number or a sequence of numbers, got {t!r}")
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu().tolist()
    if np.ndim(t) == 0:
        return [non_negative("t", t.item() if hasattr(t, "item") else t)], True
    try:
        values = np.asarray(t, dtype=float).ravel().tolist()
    except (TypeError, ValueError):
        raise TypeError(f"t must be a number or a sequence of numbers, got {t!r}") \
            from None
    if not values:
        raise ValueError("t must hold at least one horizon, got an empty sequence")
    return [non_negative("t", v) for v in values], False


def float_dtype(dtype: Any) -> torch.dtype:
    """A floating dtype the generators can produce (float32 or float64)."""
    if dtype not in _FLOAT_DTYPES:
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def probe_index(probe: Any, resolution: int) -> tuple[int, int]:
    """A pair of grid indices ``(i, j)`` with ``0 <= i, j < resolution``."""
    if isinstance(probe, torch.Tensor):
        probe = probe.tolist()
    try:
        items = list(probe)
    except TypeError:
        raise TypeError(f"probe must be a pair of grid indices (i, j), got {probe!r}") \
            from None
    if len(items) != 2 or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in items):
        raise TypeError(f"probe must be a pair of integer grid indices (i, j), "
                        f"got {probe!r}")
    i, j = (int(v) for v in items)
    if not (0 <= i < resolution and 0 <= j < resolution):
        raise ValueError(f"probe {(i, j)} lies outside the {resolution}x{resolution} "
                         f"grid; indices must be in [0, {resolution - 1}]")
    return i, j


def finite_tensor(name: str, x: Any) -> torch.Tensor:
    """``x`` as a floating tensor without NaN or infinity."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def resolve_device(device: Any) -> torch.device:
    """``device`` as a :class:`torch.device` (``None`` means the CPU)."""
    return torch.device("cpu") if device is None else torch.device(device)
