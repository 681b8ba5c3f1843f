r"""Toy data for Gaussianity curves: point clouds with a clear geometric signature
and an image-like control.

* :func:`hexagons`: regular hexagons (2-D, 6 points) of radius 1.4 with Gaussian
  jitter and a uniformly random rotation — a point cloud whose pairwise distances
  take only three values.
* :func:`digits_vectors`: scikit-learn's 8×8 handwritten digits (the UCI optical
  digits, shipped with scikit-learn, offline), scaled to :math:`[-1, 1]` and
  flattened to 64-vectors, with the horizontally adjacent pixel pairs.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

__all__ = ["hexagons", "digits_vectors"]


def hexagons(
    M: int,
    *,
    radius: float = 1.4,
    jitter: float = 0.05,
    generator: Optional[torch.Generator] = None,
) -> tuple[Tensor, Tensor]:
    """``M`` jittered, randomly rotated, centred hexagons:
    ``(x [M, 6, 2], mask [M, 6, 1])``
    (float64)."""
    if not isinstance(M, int) or M < 1:
        raise ValueError(f"M must be a positive integer, got {M!r}")
    if radius <= 0 or jitter < 0:
        raise ValueError("radius must be positive and jitter non-negative")
    ang = torch.arange(6, dtype=torch.float64) * math.pi / 3
    phi = 2 * math.pi * torch.rand(M, 1, generator=generator, dtype=torch.float64)
    a = ang.unsqueeze(0) + phi
    x = radius * torch.stack([a.cos(), a.sin()], -1)
    x = x + jitter * torch.randn(M, 6, 2, generator=generator, dtype=torch.float64)
    x = x - x.mean(1, keepdim=True)
    return x, torch.ones(M, 6, 1, dtype=torch.float64)


def digits_vectors(limit: Optional[int] = None) -> tuple[Tensor, Tensor]:
    """``(X [M, 64] in [-1, 1], pairs [56, 2])``: the digits and their horizontally
    adjacent pixel pairs."""
    from sklearn.datasets import load_digits

    X = torch.from_numpy(load_digits().data).double() / 16 * 2 - 1
    if limit is not None:
        if not isinstance(limit, int) or limit < 3:
            raise ValueError(f"limit must be an integer >= 3, got {limit!r}")
        X = X[:limit]
    pairs = torch.tensor(
        [(r * 8 + c, r * 8 + c + 1) for r in range(8) for c in range(7)]
    )
    return X, pairs
