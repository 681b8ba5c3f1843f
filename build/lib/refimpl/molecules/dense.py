r"""Two batch layouts for molecules and the masked zero-mean helpers of EDM.

* **Sparse** (PyG): all atoms of a batch concatenated, ``z [A]``, ``pos [A, 3]`` and
  a ``batch [A]`` vector — what SchNet-style message passing consumes.
* **Dense** (EDM, Hoogeboom et al., 2022): padded ``[B, N, ·]`` tensors with
  ``node_mask [B, N, 1]`` (1 for real atoms) and
  ``edge_mask [B, N, N, 1]`` :math:`= m_i m_j (1 - \delta_{ij})`, where :math:`N` is
  the largest molecule of the batch. Padded entries are exactly zero.

Coordinates of an :math:`E(3)`-invariant diffusion model live on the zero
centre-of-mass subspace :math:`\{x : \sum_i m_i x_i = 0\}` of dimension
:math:`(N_b - 1)\cdot 3` for a molecule of :math:`N_b` atoms; the helpers below
project onto it, check it and sample a standard Gaussian on it, as in EDM's
``equivariant_diffusion/utils.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Sequence

import torch
from torch import Tensor

__all__ = [
    "DenseMolecules", "to_dense", "to_sparse", "collate_dense", "collate_sparse",
    "edge_mask_from_node_mask", "one_hot_types", "remove_mean_with_mask",
    "assert_mean_zero_with_mask", "assert_correctly_masked",
    "sample_center_gravity_zero_gaussian_with_mask", "sample_gaussian_with_mask",
    "center_gravity_zero_gaussian_log_likelihood_with_mask",
]


@dataclass
class DenseMolecules:
    r"""A padded batch of molecules.

    Attributes:
        pos (Tensor): coordinates ``[B, N, 3]`` (Å), zero on padding.
        z (Tensor): atomic numbers ``[B, N]`` (long), zero on padding.
        node_mask (Tensor): ``[B, N, 1]``, 1.0 for real atoms (dtype of ``pos``).
        edge_mask (Tensor): ``[B, N, N, 1]``, :math:`m_i m_j (1-\delta_{ij})`.
            (EDM flattens it to ``[B·N·N, 1]``: ``edge_mask.view(-1, 1)``.)
        y (Tensor, optional): graph targets ``[B, T]``.
        idx (Tensor, optional): molecule identifiers ``[B]``.
    """

    pos: Tensor
    z: Tensor
    node_mask: Tensor
    edge_mask: Tensor
    y: Tensor | None = None
    idx: Tensor | None = None

    @property
    def num_atoms(self) -> Tensor:
        """Atoms per molecule, long ``[B]``."""
        return self.node_mask[..., 0].sum(1).round().long()

    def __len__(self) -> int:
        return self.pos.size(0)

    def to(self, *args, **kwargs) -> "DenseMolecules":
        """Move to a device (and cast floating tensors to a dtype), like ``Tensor.to``;
        integer tensors (``z``, ``idx``) keep their dtype."""
        device = _device_of(args, kwargs)
        non_blocking = kwargs.get("non_blocking", False)
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None:
                out[f.name] = None
            elif v.is_floating_point():
                out[f.name] = v.to(*args, **kwargs)
            else:
                out[f.name] = (v if device is None
                               else v.to(device, non_blocking=non_blocking))
        return replace(self, **out)


def _device_of(args, kwargs) -> torch.device | None:
    for a in list(args) + [kwargs.get("device")]:
        if isinstance(a, (str, torch.device)):
            return torch.device(a)
        if isinstance(a, Tensor):
            return a.device
    return None


def edge_mask_from_node_mask(node_mask: Tensor) -> Tensor:
    r"""``[B, N, N, 1]`` mask :math:`m_i m_j (1-\delta_{ij})` from
    ``node_mask [B, N, 1]``."""
    _check_node_mask(node_mask)
    n = node_mask.size(1)
    eye = torch.eye(n, dtype=torch.bool, device=node_mask.device)
    m = node_mask[..., 0]
    return (m[:, :, None] * m[:, None, :]).masked_fill(eye, 0.0)[..., None]


def _check_node_mask(node_mask: Tensor) -> None:
    if (not isinstance(node_mask, Tensor) or node_mask.dim() != 3
            or node_mask.size(-1) != 1):
        raise ValueError("node_mask must be a tensor of shape [B, N, 1], got "
                         f"{tuple(getattr(node_mask, 'shape', ()))}")


def to_dense(data, max_num_nodes: int | None = None) -> DenseMolecules:
    """Sparse PyG batch (``z``, ``pos``, ``batch``; optional ``y``, ``idx``) → padded.

    Uses :func:`torch_geometric.utils.to_dense_batch` (pure torch).

    Args:
        data: a :class:`torch_geometric.data.Batch` or
            :class:`~torch_geometric.data.Data` (one molecule when it has no
            ``batch``).
        max_num_nodes (int, optional): pad to this size instead of the largest
            molecule of the batch (EDM samples with 29 for QM9).
    """
    from torch_geometric.utils import to_dense_batch

    z, pos = data.z, data.pos
    if pos.dim() != 2 or pos.size(-1) != 3 or z.shape != pos.shape[:1]:
        raise ValueError(f"expected z [A] and pos [A, 3], got {tuple(z.shape)} and "
                         f"{tuple(pos.shape)}")
    batch = getattr(data, "batch", None)
    if batch is None:
        batch = torch.zeros(z.numel(), dtype=torch.long, device=z.device)
    if batch.numel() and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("batch must be sorted (atoms grouped by molecule)")
    num_graphs = int(getattr(data, "num_graphs",
                             int(batch.max()) + 1 if batch.numel() else 0))
    if max_num_nodes is not None and batch.numel():
        largest = int(torch.bincount(batch).max())
        if max_num_nodes < largest:
            raise ValueError(f"max_num_nodes={max_num_nodes} is smaller than the "
                             f"largest molecule of the batch ({largest} atoms)")
    dpos, mask = to_dense_batch(pos, batch, max_num_nodes=max_num_nodes,
                                batch_size=num_graphs)
    dz, _ = to_dense_batch(z, batch, max_num_nodes=max_num_nodes, batch_size=num_graphs)
    node_mask = mask[..., None].to(pos.dtype)
    y = getattr(data, "y", None)
    idx = getattr(data, "idx", None)
    return DenseMolecules(pos=dpos, z=dz.long(), node_mask=node_mask,
                          edge_mask=edge_mask_from_node_mask(node_mask),
                          y=y, idx=idx.view(-1) if isinstance(idx, Tensor) else None)


def to_sparse(dense: DenseMolecules):
    """Padded batch → PyG :class:`~torch_geometric.data.Batch` (``z``, ``pos``,
    ``batch``, ``ptr``; ``y`` and ``idx`` when present). Inverse of :func:`to_dense`."""
    from torch_geometric.data import Batch, Data

    mask = dense.node_mask[..., 0] > 0.5
    counts = mask.sum(1).tolist()
    zs = torch.split(dense.z[mask], counts)
    ps = torch.split(dense.pos[mask], counts)
    items = []
    for b, (zb, pb) in enumerate(zip(zs, ps)):
        extra = {}
        if dense.y is not None:
            extra["y"] = dense.y[b:b + 1]
        if dense.idx is not None:
            extra["idx"] = dense.idx[b:b + 1]
        items.append(Data(z=zb, pos=pb, **extra))
    return Batch.from_data_list(items)


def collate_sparse(items: Sequence):
    """``collate_fn`` for a :class:`~torch.utils.data.DataLoader` over
    :class:`~torch_geometric.data.Data` molecules → PyG ``Batch``."""
    from torch_geometric.data import Batch

    items = list(items)
    if not items:
        raise ValueError("collate got an empty list of molecules; expected at least "
                         "one torch_geometric Data item")
    return Batch.from_data_list(items)


def collate_dense(items: Sequence, max_num_nodes: int | None = None) -> DenseMolecules:
    """``collate_fn`` producing :class:`DenseMolecules` (padded to the largest
    molecule of the batch, as EDM's collate)."""
    return to_dense(collate_sparse(items), max_num_nodes=max_num_nodes)


def one_hot_types(z: Tensor, node_mask: Tensor,
                  atomic_numbers: Sequence[int] = (1, 6, 7, 8, 9)) -> Tensor:
    """One-hot atom types ``[B, N, K]`` in the order of ``atomic_numbers`` (EDM's
    H, C, N, O, F by default), zero on padding.

    Raises:
        ValueError: a real atom's element is not in ``atomic_numbers``.
    """
    _check_node_mask(node_mask)
    size = max(max(atomic_numbers), int(z.max()) if z.numel() else 0) + 1
    table = torch.full((size,), -1, dtype=torch.long, device=z.device)
    table[torch.tensor(list(atomic_numbers), device=z.device)] = torch.arange(
        len(atomic_numbers), device=z.device)
    real = node_mask[..., 0] > 0.5
    k = table[z.clamp(min=0)]
    if bool((real & (k < 0)).any()):
        bad = sorted(set(z[real & (k < 0)].tolist()))
        raise ValueError(f"atomic numbers {bad} are not among the types "
                         f"{tuple(atomic_numbers)}")
    onehot = torch.nn.functional.one_hot(k.clamp(min=0), len(atomic_numbers))
    return onehot.to(node_mask.dtype) * node_mask


# ------------------------------------------------------------ zero-mean subspace (EDM)
def remove_mean_with_mask(x: Tensor, node_mask: Tensor) -> Tensor:
    r"""Project ``x [B, N, D]`` onto the zero centre-of-mass subspace of the real
    atoms: :math:`x_i - m_i \frac{1}{N_b}\sum_j m_j x_j`. Padded entries of ``x``
    must be zero (they stay zero)."""
    _check_node_mask(node_mask)
    assert_correctly_masked(x, node_mask)
    n = node_mask.sum(1, keepdim=True).clamp(min=1)
    mean = (x * node_mask).sum(1, keepdim=True) / n
    return x - mean * node_mask


def assert_correctly_masked(variable: Tensor, node_mask: Tensor,
                            tol: float = 1e-4) -> None:
    """Raise :class:`ValueError` unless ``variable`` is (numerically) zero on
    padding."""
    _check_node_mask(node_mask)
    if variable.shape[:2] != node_mask.shape[:2]:
        raise ValueError(f"variable {tuple(variable.shape)} and node_mask "
                         f"{tuple(node_mask.shape)} disagree on [B, N]")
    err = (variable * (1 - node_mask)).abs().max() if variable.numel() else 0.0
    if float(err) > tol:
        raise ValueError(
            f"variable is not zero on padded atoms (max |value| {float(err):.3g})")


def assert_mean_zero_with_mask(x: Tensor, node_mask: Tensor,
                               eps: float = 1e-10) -> None:
    r"""Raise :class:`ValueError` unless every molecule's masked mean of ``x`` is
    zero relative to its largest entry (EDM:
    :math:`|\sum_i x_i| / \max|x| < 10^{-2}`)."""
    assert_correctly_masked(x, node_mask)
    largest = x.abs().amax(dim=1, keepdim=True)
    rel = (x.sum(1, keepdim=True).abs() / (largest + eps))
    if rel.numel() and float(rel.max()) >= 1e-2:
        raise ValueError(f"x is not centred: relative mean error "
                         f"{float(rel.max()):.3g} (expected < 1e-2; call "
                         "remove_mean_with_mask first)")


def sample_gaussian_with_mask(size: Sequence[int], node_mask: Tensor,
                              generator: torch.Generator | None = None) -> Tensor:
    """Standard normal ``[B, N, D]`` on the real atoms, zero on padding."""
    _check_node_mask(node_mask)
    size = tuple(int(s) for s in size)
    if len(size) != 3 or size[:2] != tuple(node_mask.shape[:2]):
        raise ValueError(f"size must be [B, N, D] with [B, N] = "
                         f"{list(node_mask.shape[:2])} (the node_mask's), got "
                         f"{list(size)}")
    eps = torch.randn(tuple(size), generator=generator, device=node_mask.device,
                      dtype=node_mask.dtype)
    return eps * node_mask


def sample_center_gravity_zero_gaussian_with_mask(
        size: Sequence[int], node_mask: Tensor,
        generator: torch.Generator | None = None) -> Tensor:
    r"""A standard Gaussian on the zero centre-of-mass subspace: draw
    :math:`\epsilon\sim\mathcal N(0, I)` on ``[B, N, D]``, mask, project. Each ambient
    entry then has variance :math:`(N_b-1)/N_b`; padding is exactly zero."""
    return remove_mean_with_mask(sample_gaussian_with_mask(size, node_mask, generator),
                                 node_mask)


def center_gravity_zero_gaussian_log_likelihood_with_mask(x: Tensor,
                                                          node_mask: Tensor) -> Tensor:
    r"""Log-density of a standard Gaussian on the subspace, per molecule ``[B]``:
    :math:`-\tfrac12\lVert x\rVert^2 - \tfrac{d}{2}\log 2\pi` with
    :math:`d = (N_b - 1)\,D`."""
    assert_mean_zero_with_mask(x, node_mask)
    n = node_mask[..., 0].sum(1)
    d = (n - 1) * x.size(-1)
    return -0.5 * (x * x).sum((1, 2)) - 0.5 * d * math.log(2 * math.pi)
