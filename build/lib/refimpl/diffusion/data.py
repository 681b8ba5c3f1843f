r"""Dense molecule tensors for diffusion training and a cropping ``collate_fn``.

EDM :cite:`hoogeboom2022edm` trains on padded batches whose width is the largest
molecule *of the batch* (its collate drops all-zero padding columns); the
``"padded"`` loss normalisation depends on that width.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor
from torch.utils.data import TensorDataset
from torch.utils.data._utils.collate import default_collate

__all__ = ["molecule_tensors", "MoleculeTensors", "crop_collate"]


def molecule_tensors(
    dataset, atomic_numbers: Sequence[int]
) -> tuple[Tensor, Tensor, Tensor]:
    """``(x [M, N, 3], onehot [M, N, K], node_mask [M, N, 1])`` (float32) of a
    :class:`~refimpl.molecules.QM9Dataset` (or anything with ``.dense()``) in the
    type order ``atomic_numbers`` (e.g. ``(1, 6, 7, 8, 9)`` with H, ``(6, 7, 8, 9)``
    without)."""
    from refimpl.molecules.dense import one_hot_types

    d = dataset.dense()
    onehot = one_hot_types(d.z, d.node_mask, atomic_numbers=tuple(atomic_numbers))
    return d.pos.float(), onehot.float(), d.node_mask.float()


class MoleculeTensors(TensorDataset):
    """A :class:`~torch.utils.data.TensorDataset` of ``(x, onehot, node_mask)``."""

    def __init__(self, x: Tensor, onehot: Tensor, node_mask: Tensor):
        if x.dim() != 3 or onehot.dim() != 3 or node_mask.shape != x.shape[:2] + (1,):
            raise ValueError(
                f"expected x [M, N, D], onehot [M, N, K], node_mask [M, N, 1]; got "
                f"{tuple(x.shape)}, {tuple(onehot.shape)}, {tuple(node_mask.shape)}"
            )
        if onehot.shape[:2] != x.shape[:2]:
            raise ValueError("x and onehot disagree on [M, N]")
        super().__init__(x, onehot, node_mask)


def crop_collate(items: Sequence) -> tuple[Tensor, Tensor, Tensor]:
    """Stack ``(x, onehot, node_mask)`` items and drop padding columns that are empty
    in the whole batch (atoms are stored first, padding last)."""
    items = list(items)
    if not items:
        raise ValueError("crop_collate got an empty list of items; expected at least "
                         "one (x, onehot, node_mask) molecule")
    x, onehot, mask = default_collate(items)
    n = int(mask.sum(dim=(1, 2)).max())
    return x[:, :n], onehot[:, :n], mask[:, :n]
