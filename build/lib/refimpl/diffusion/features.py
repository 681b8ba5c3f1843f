r"""One preprocessing function for molecules, used everywhere (training, validation,
Gaussianity curves, variance estimates).

A molecule is :math:`z = [x, h]` with coordinates :math:`x \in \mathbb{R}^{N\times D}`
and atom-type features

.. math::
    h = \frac{\mathrm{onehot} - \mathbb{1}_N\,\bar p^\top}{4}, \qquad
    \bar p = \frac{1}{N}\sum_i \mathrm{onehot}_i,

i.e. EDM's one-hot scaled by 1/4 :cite:`hoogeboom2022edm` and, in the
Gaussian-shortcut recipe :cite:`qu2025shortening`, centred over the molecule's
atoms so that every channel has mean zero. Centring is harmless for decoding: an
atom of class :math:`k` has the value :math:`(1-\bar p_k)/4 > 0` in channel
:math:`k` and :math:`-\bar p_j/4 \le 0` elsewhere, so the argmax recovers
:math:`k`. (The authors' validation path skipped the centring; here there is only
this one function.)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .subspace import center, check_node_mask

__all__ = ["encode", "decode_types", "one_hot"]


def one_hot(types: Tensor, num_types: int, node_mask: Tensor) -> Tensor:
    """Masked one-hot ``[B, N, K]`` of integer types ``[B, N]`` (padding may hold any
    value; it is zeroed)."""
    if types.is_floating_point():
        raise TypeError(f"types must be integers, got {types.dtype}")
    real = node_mask[..., 0] > 0
    if bool(((types < 0) | (types >= num_types))[real].any()):
        raise ValueError(f"atom types must lie in [0, {num_types}) on real atoms")
    oh = torch.nn.functional.one_hot(types.clamp(0, num_types - 1).long(), num_types)
    return oh.to(node_mask.dtype) * node_mask


def encode(
    x: Tensor,
    onehot: Tensor,
    node_mask: Tensor,
    *,
    center_types: bool = True,
    type_scale: float = 4.0,
) -> tuple[Tensor, Tensor]:
    r"""Centre the coordinates and encode the types.

    Args:
        x: coordinates ``[B, N, D]`` (Å), zero (or anything) on padding.
        onehot: one-hot atom types ``[B, N, K]``.
        node_mask: ``[B, N, 1]``; every molecule needs at least 2 atoms.
        center_types: centre the one-hot per molecule (GAGA; default) or not (EDM).
        type_scale: EDM's normalisation factor of the one-hot (4).

    Returns:
        ``(x, h)``: centred coordinates and features, zero on padding.
    """
    n = check_node_mask(node_mask, x, min_atoms=2)
    check_node_mask(node_mask, onehot)
    del n
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x contains NaN or infinite coordinates")
    if type_scale <= 0:
        raise ValueError(f"type_scale must be positive, got {type_scale}")
    real = node_mask[..., 0] > 0
    oh = onehot.to(x.dtype)
    ok_values = bool(((oh == 0) | (oh == 1)).all())
    if not ok_values or not bool((oh.sum(-1)[real] == 1).all()):
        raise ValueError("onehot must be a one-hot encoding (one 1 per real atom)")
    x = center(x * node_mask, node_mask)
    oh = oh * node_mask
    h = center(oh, node_mask) if center_types else oh
    return x, h / type_scale


def decode_types(h: Tensor, node_mask: Tensor) -> Tensor:
    """Atom classes by argmax over channels, ``[B, N]``, ``-1`` on padding."""
    check_node_mask(node_mask, h)
    types = h.argmax(dim=-1)
    return torch.where(node_mask[..., 0] > 0, types, torch.full_like(types, -1))
