r"""The zero-mean ("zero centre of mass") subspace of a batch of padded molecules.

EDM :cite:`hoogeboom2022edm` diffuses coordinates on the linear subspace

.. math::
    \mathcal{X}_N = \Bigl\{ \mathbf{x}\in\mathbb{R}^{N\times D} :
    \textstyle\sum_{i=1}^{N} \mathbf{x}_i = 0 \Bigr\},
    \qquad \dim \mathcal{X}_N = (N-1)\,D,

which removes translations exactly and makes an isotropic Gaussian on it
E(3)-invariant. The Gaussian-shortcut recipe :cite:`qu2025shortening` applies the
same projection to the atom-type channel as well, so that *every* channel of every
molecule has mean zero at every diffusion step.

All functions work on dense, padded tensors ``[B, N, F]`` with a ``node_mask`` of
shape ``[B, N, 1]`` (1 for real atoms, 0 for padding), on any device.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

__all__ = [
    "check_node_mask",
    "center",
    "is_centered",
    "sample_zero_mean_gaussian",
    "subspace_dim",
]


def check_node_mask(
    node_mask: Tensor, z: Optional[Tensor] = None, min_atoms: int = 1
) -> Tensor:
    """Validate a ``[B, N, 1]`` node mask (and the batch it belongs to).

    Args:
        node_mask: 0/1 mask of real atoms, shape ``[B, N, 1]``.
        z: optional tensor ``[B, N, F]`` that must match the mask.
        min_atoms: the smallest admissible number of real atoms per molecule.

    Returns:
        The number of real atoms per molecule, shape ``[B]`` (same dtype as the mask).

    Raises:
        TypeError: if the mask is not a floating-point tensor.
        ValueError: on a wrong shape, values other than 0/1, padding that is not
            at the end of a molecule, or a molecule with fewer than ``min_atoms``.
    """
    if not isinstance(node_mask, Tensor):
        raise TypeError(
            f"node_mask must be a torch.Tensor, got {type(node_mask).__name__}"
        )
    if node_mask.dim() != 3 or node_mask.shape[-1] != 1:
        raise ValueError(
            f"node_mask must have shape [B, N, 1], got {tuple(node_mask.shape)}"
        )
    if not node_mask.is_floating_point():
        raise TypeError(
            f"node_mask must be a floating-point 0/1 tensor, got {node_mask.dtype}"
        )
    if not bool(((node_mask == 0) | (node_mask == 1)).all()):
        raise ValueError("node_mask must contain only 0 and 1")
    if z is not None:
        if not isinstance(z, Tensor):
            raise TypeError(f"expected a torch.Tensor, got {type(z).__name__}")
        if z.dim() != 3 or z.shape[:2] != node_mask.shape[:2]:
            raise ValueError(
                f"tensor of shape {tuple(z.shape)} does not match node_mask "
                f"of shape {tuple(node_mask.shape)}; expected [B, N, F]"
            )
    n = node_mask.sum(dim=(1, 2))
    if n.numel() and int(n.min()) < min_atoms:
        bad = (n < min_atoms).nonzero().flatten()[:5].tolist()
        raise ValueError(
            f"molecules {bad} have fewer than {min_atoms} real atom(s); "
            "empty (or single-atom) molecules have no zero-mean subspace"
        )
    return n


def subspace_dim(node_mask: Tensor, num_features: int) -> Tensor:
    r"""Dimension :math:`(N_m-1)\,F` of the zero-mean subspace of each molecule.

    Args:
        node_mask: ``[B, N, 1]``.
        num_features: channels per atom :math:`F` (3 for coordinates).

    Returns:
        Tensor ``[B]``.
    """
    if num_features < 1:
        raise ValueError(f"num_features must be positive, got {num_features}")
    n = check_node_mask(node_mask)
    return (n - 1).clamp_min(0) * num_features


def center(z: Tensor, node_mask: Tensor, validate: bool = True) -> Tensor:
    r"""Project onto the zero-mean subspace, channel by channel.

    .. math::
        P(\mathbf{z})_i = \mathbf{z}_i - m_i\,\frac{1}{N}\sum_{j} m_j\,\mathbf{z}_j,

    with :math:`m` the node mask. Padded entries stay exactly zero.

    Args:
        z: ``[B, N, F]``; padded entries are ignored.
        node_mask: ``[B, N, 1]``.
        validate: check the mask's values (a host synchronisation on GPU); hot
            loops that already validated their inputs pass ``False``.
    """
    if validate:
        n = check_node_mask(node_mask, z)
    else:
        n = node_mask.sum(dim=(1, 2))
    mean = (z * node_mask).sum(dim=1, keepdim=True) / n.clamp_min(1).view(-1, 1, 1)
    return (z - mean) * node_mask


def is_centered(z: Tensor, node_mask: Tensor, atol: float = 1e-5) -> bool:
    """Whether every channel of every molecule sums to zero over its real atoms and
    every padded entry is zero (up to ``atol``, relative to the largest entry)."""
    check_node_mask(node_mask, z)
    scale = max(1.0, float(z.abs().max())) if z.numel() else 1.0
    sums = (z * node_mask).sum(dim=1).abs()
    padded = (z * (1 - node_mask)).abs()
    ok_sum = (not sums.numel()) or float(sums.max()) <= atol * scale
    ok_pad = (not padded.numel()) or float(padded.max()) == 0.0
    return bool(ok_sum and ok_pad)


def sample_zero_mean_gaussian(
    shape: Sequence[int],
    node_mask: Tensor,
    *,
    generator: Optional[torch.Generator] = None,
    dtype: Optional[torch.dtype] = None,
) -> Tensor:
    r"""A standard Gaussian *on the subspace*: draw, mask, project.

    Each ambient entry then has variance :math:`(N-1)/N`; on the subspace the
    covariance is the identity, so :math:`\mathbb{E}\lVert\varepsilon\rVert^2 =
    (N-1)\,F`.

    Args:
        shape: ``(B, N, F)``.
        node_mask: ``[B, N, 1]``; its device (and, by default, dtype) is used.
        generator: optional seeded generator (on the mask's device).
        dtype: output dtype (default: the mask's dtype).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or shape[:2] != tuple(node_mask.shape[:2]):
        raise ValueError(
            f"shape must be (B, N, F) matching node_mask {tuple(node_mask.shape)}, "
            f"got {shape}"
        )
    eps = torch.randn(
        shape,
        generator=generator,
        device=node_mask.device,
        dtype=dtype or node_mask.dtype,
    )
    return center(eps * node_mask, node_mask, validate=False)
