r"""Radius graphs in pure PyTorch.

PyG 2.8's :func:`torch_geometric.nn.radius_graph` needs the compiled ``pyg-lib``
kernel (and older releases ``torch-cluster``), neither of which installs from
PyPI. This module builds the same graph with plain tensor operations, on any
device:

.. math::
    \mathcal{E}_c = \{\, j \to i \;:\; \operatorname{batch}_i = \operatorname{batch}_j,
    \; i \ne j,\; \lVert \mathbf{x}_i - \mathbf{x}_j \rVert < c \,\}.

The atoms are scattered into a padded ``[B, N_max, D]`` block per molecule and the
pairwise distances are computed block by block (a few molecules, or a few rows of one
large molecule, at a time), so memory stays bounded and atoms of different molecules
never meet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

import torch
from torch import Tensor

__all__ = ["radius_graph", "edge_lengths"]

# Upper bound on the number of pairwise distances held at once by one block.
_BLOCK_ELEMENTS = 1 << 22


def _check_pos(pos: Tensor) -> None:
    if not isinstance(pos, Tensor):
        raise TypeError(f"pos must be a torch.Tensor, got {type(pos).__name__}")
    if pos.dim() != 2:
        raise ValueError(
            f"pos must have shape [num_atoms, dim] (2-D), got shape {tuple(pos.shape)}"
        )
    if not pos.is_floating_point():
        raise TypeError(f"pos must be a floating-point tensor, got dtype {pos.dtype}")
    if pos.numel() and not bool(torch.isfinite(pos).all()):
        bad = (~torch.isfinite(pos)).any(dim=1).nonzero().flatten()[:5].tolist()
        raise ValueError(f"pos contains NaN or infinite coordinates (atoms {bad}...)")


def _check_batch(batch: Tensor | None, num_atoms: int, device: torch.device, *,
                 contiguous: bool = False) -> Tensor:
    """``batch`` as a long tensor (zeros for :obj:`None`); with ``contiguous``,
    every molecule index ``0..max`` must own at least one atom (a gap would be an
    empty molecule, silently predicted from nothing)."""
    if batch is None:
        return torch.zeros(num_atoms, dtype=torch.long, device=device)
    if not isinstance(batch, Tensor):
        raise TypeError(
            f"batch must be a torch.Tensor or None, got {type(batch).__name__}")
    if batch.dim() != 1 or batch.numel() != num_atoms:
        raise ValueError(
            f"batch must be a 1-D tensor with one entry per atom ({num_atoms}), "
            f"got shape {tuple(batch.shape)}"
        )
    if batch.is_floating_point() or batch.dtype == torch.bool:
        raise TypeError(f"batch must be an integer tensor, got dtype {batch.dtype}")
    if batch.device != device:
        raise ValueError(f"batch is on {batch.device} but pos is on {device}")
    if num_atoms and int(batch.min()) < 0:
        raise ValueError("batch must hold non-negative molecule indices, got "
                         f"{int(batch.min())}")
    if contiguous and num_atoms:
        present = torch.unique(batch)
        count = int(present[-1]) + 1
        if present.numel() != count:
            missing = sorted(set(range(count)) - set(present.tolist()))
            raise ValueError(
                f"batch skips molecule index(es) {missing[:10]}: expected every "
                f"index 0..{count - 1} to own at least one atom (a gap in the batch "
                "vector is an empty molecule); renumber the molecules consecutively")
    return batch.long()


def _check_edge_index(edge_index: Tensor, num_atoms: int,
                      name: str = "edge_index") -> Tensor:
    """A ``[2, E]`` integer tensor of atom indices in ``0..num_atoms-1``."""
    if not isinstance(edge_index, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got "
                        f"{type(edge_index).__name__}")
    if edge_index.is_floating_point() or edge_index.dtype == torch.bool \
            or edge_index.is_complex():
        raise TypeError(f"{name} must be an integer tensor, got dtype "
                        f"{edge_index.dtype}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(
            f"{name} must have shape [2, E], got {tuple(edge_index.shape)}")
    if edge_index.numel():
        low, high = int(edge_index.min()), int(edge_index.max())
        if low < 0 or high >= num_atoms:
            raise ValueError(
                f"{name} refers to atoms outside 0..{num_atoms - 1} (got indices "
                f"from {low} to {high})")
    return edge_index


def _check_atomic_numbers(z: Tensor, num_embeddings: int, name: str = "z",
                          elements: Sequence[int] | None = None) -> None:
    """Integer atomic numbers in ``1..num_embeddings-1`` (and in ``elements``
    when given): an unknown element is a clear error, not an embedding lookup
    that fails (``IndexError``) or silently reads an untrained row."""
    if not isinstance(z, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of atomic numbers, got "
                        f"{type(z).__name__}")
    if z.is_floating_point() or z.dtype == torch.bool or z.is_complex() \
            or z.dim() != 1:
        raise TypeError(f"{name} must be a 1-D integer tensor of atomic numbers, got "
                        f"dtype {z.dtype} and shape {tuple(z.shape)}")
    if not z.numel():
        return
    bad = (z < 1) | (z >= num_embeddings)
    if elements is not None:
        bad = bad | ~torch.isin(z, torch.as_tensor(list(elements), device=z.device))
    if bool(bad.any()):
        values = sorted(set(z[bad].tolist()))[:10]
        allowed = (f"the elements {sorted(elements)}" if elements is not None
                   else f"atomic numbers 1..{num_embeddings - 1}")
        raise ValueError(f"{name} holds unknown element(s) with atomic number "
                         f"{values}; the model knows {allowed}")


def radius_graph(
    pos: Tensor,
    r: float,
    batch: Tensor | None = None,
    max_num_neighbors: int | None = None,
    loop: bool = False,
) -> Tensor:
    r"""All directed pairs of atoms of the same molecule closer than ``r``.

    .. math::
        \mathcal{E}_r = \{\, j \to i \;:\;
        \operatorname{batch}_i = \operatorname{batch}_j,\; i \ne j,\;
        \lVert \mathbf{x}_i - \mathbf{x}_j \rVert < r \,\}

    A pure-torch replacement of :func:`torch_geometric.nn.radius_graph` (which needs
    ``pyg-lib``), as used by 3-D GNNs such as SchNet (Schütt et al., 2017).

    The result follows PyG's ``source_to_target`` convention: ``edge_index[0]`` is the
    source :math:`j`, ``edge_index[1]`` the target :math:`i`, and both directions of
    every pair are present. Edges are sorted by target, then by source, so the output
    is deterministic and identical on CPU and GPU.

    Args:
        pos (Tensor): positions ``[num_atoms, D]`` (Å for molecules), floating point.
        r (float): cutoff radius :math:`r \ge 0` (strict inequality; ``math.inf``
            gives the complete graph of each molecule).
        batch (Tensor, optional): molecule index of every atom ``[num_atoms]``; it
            need not be sorted. (default: :obj:`None`, one molecule)
        max_num_neighbors (int, optional): keep, for every target, only its
            ``max_num_neighbors`` nearest sources (ties broken by the lower source
            index). Unlike PyG's cap, which keeps an arbitrary subset, the kept
            neighbours are always the nearest. (default: :obj:`None`, no cap)
        loop (bool): include self-loops :math:`i \to i` (they count towards
            ``max_num_neighbors``). (default: :obj:`False`)

    Returns:
        LongTensor ``[2, E]`` on ``pos.device``.

    Raises:
        ValueError: on a negative or NaN radius, a ``pos``/``batch`` length mismatch,
            non-finite positions or a non-positive ``max_num_neighbors``.
    """
    _check_pos(pos)
    if pos.dtype in (torch.float16, torch.bfloat16) and pos.device.type == "cpu":
        raise TypeError(f"radius_graph: pos of dtype {pos.dtype} is not supported on "
                        "the CPU (no half-precision distances); pass pos.float()")
    pos = pos.detach()  # only the edge set is returned: no autograd graph needed
    if isinstance(r, Tensor):
        if r.numel() != 1:
            raise ValueError(
                f"r must be a scalar, got a tensor of shape {tuple(r.shape)}")
        r = float(r)
    if not isinstance(r, Real) or isinstance(r, bool):
        raise TypeError(f"r must be a real number, got {type(r).__name__}")
    r = float(r)
    if math.isnan(r) or r < 0:
        raise ValueError(f"the radius r must be a non-negative number, got {r}")
    if max_num_neighbors is not None:
        if (not isinstance(max_num_neighbors, int)
                or isinstance(max_num_neighbors, bool) or max_num_neighbors < 1):
            raise ValueError(
                f"max_num_neighbors must be a positive integer or None, "
                f"got {max_num_neighbors!r}"
            )
    device = pos.device
    num_atoms = pos.size(0)
    batch = _check_batch(batch, num_atoms, device)
    if num_atoms == 0:
        return torch.empty(2, 0, dtype=torch.long, device=device)

    # Group the atoms by molecule (stable, so atoms keep their relative order).
    is_sorted = num_atoms < 2 or bool((batch[1:] >= batch[:-1]).all())
    perm = None if is_sorted else torch.argsort(batch, stable=True)
    pos_s = pos if perm is None else pos[perm]
    batch_s = batch if perm is None else batch[perm]
    _, counts = torch.unique_consecutive(batch_s, return_counts=True)
    ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    num_mols = counts.numel()
    n_max = int(counts.max())
    mol = torch.repeat_interleave(torch.arange(num_mols, device=device), counts)
    local = torch.arange(num_atoms, device=device) - ptr[mol]
    dense = pos_s.new_zeros(num_mols, n_max, pos.size(1))
    dense[mol, local] = pos_s
    valid = torch.zeros(num_mols, n_max, dtype=torch.bool, device=device)
    valid[mol, local] = True

    mols_per_block = max(1, _BLOCK_ELEMENTS // (n_max * n_max))
    rows_per_block = n_max if mols_per_block > 1 else max(1, _BLOCK_ELEMENTS // n_max)
    cols = torch.arange(n_max, device=device)
    pieces = []
    for b0 in range(0, num_mols, mols_per_block):
        b1 = min(b0 + mols_per_block, num_mols)
        for r0 in range(0, n_max, rows_per_block):
            r1 = min(r0 + rows_per_block, n_max)
            # Exact differences (no matmul trick), so edges at the boundary are the
            # same as a brute-force loop and invariant under rigid motions.
            dist = torch.cdist(dense[b0:b1, r0:r1], dense[b0:b1],
                               compute_mode="donot_use_mm_for_euclid_dist")
            ok = valid[b0:b1, r0:r1, None] & valid[b0:b1, None, :] & (dist < r)
            diag = (torch.arange(r0, r1, device=device)[:, None] == cols[None, :])
            ok = ok | (diag & valid[b0:b1, r0:r1, None]) if loop else ok & ~diag
            if max_num_neighbors is not None and max_num_neighbors < n_max:
                masked = dist.masked_fill(~ok, math.inf)
                if loop:
                    masked = masked.masked_fill(diag & ok, -1.0)
                nearest = torch.sort(masked, dim=-1, stable=True).indices
                keep = torch.zeros_like(ok).scatter_(
                    -1, nearest[..., :max_num_neighbors], True)
                ok = ok & keep
            bb, ii, jj = ok.nonzero(as_tuple=True)
            offset = ptr[b0 + bb]
            pieces.append(torch.stack([offset + jj, offset + r0 + ii]))
    edge_index = torch.cat(pieces, dim=1)
    if perm is not None:
        edge_index = perm[edge_index]
        key = edge_index[1] * num_atoms + edge_index[0]
        edge_index = edge_index[:, torch.argsort(key)]
    return edge_index


def edge_lengths(pos: Tensor, edge_index: Tensor) -> Tensor:
    r"""Edge lengths :math:`d_{ji} = \lVert \mathbf{x}_i - \mathbf{x}_j \rVert`,
    ``[E]``.

    Recomputed from ``pos`` (not read from a distance matrix), so gradients with
    respect to positions are exact.

    Args:
        pos (Tensor): positions ``[num_atoms, D]``.
        edge_index (LongTensor): ``[2, E]``, source row 0, target row 1.
    """
    _check_pos(pos)
    _check_edge_index(edge_index, pos.size(0))
    return (pos[edge_index[1]] - pos[edge_index[0]]).norm(dim=-1)
