r"""Quality of generated molecules: EDM's chemistry metrics plus two
distribution-level checks that stay informative for weak (CPU-scale) models.

* Chemistry (stability, RDKit validity, uniqueness, novelty, "valid and connected"):
  :func:`refimpl.molecules.evaluate_molecules` (EDM's rules :cite:`hoogeboom2022edm`).
  For heavy-atom molecules (implicit hydrogens) EDM's stability is meaningless;
  the valence-*feasible* rates (bond-order sum at most the allowed valence) are
  its analogue.
* Radius of gyration :math:`R_g = \sqrt{\frac1N\sum_i \lVert x_i - \bar x\rVert^2}`,
  compared with the training set by the 1-Wasserstein distance — a direct check
  of the size (scale) of the generated molecules.
* Total-variation distance of the atom-type frequencies to the training set.
* Bond lengths: the 1-Wasserstein distance between the lengths of all bonded atom
  pairs (EDM's distance-based bond orders, any order) of the samples and of the
  training set — the spec's check of local geometry (§7.5).
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import torch
from torch import Tensor

from .edm import SampleResult

__all__ = [
    "radius_of_gyration",
    "type_frequencies",
    "bond_lengths",
    "sample_to_molecules",
    "evaluate_samples",
]


def radius_of_gyration(x: Tensor, node_mask: Tensor) -> Tensor:
    """:math:`R_g` per molecule ``[B]`` (coordinates are centred first)."""
    n = node_mask.sum(dim=(1, 2)).clamp_min(1)
    mean = (x * node_mask).sum(1, keepdim=True) / n.view(-1, 1, 1)
    sq = ((x - mean) * node_mask).pow(2).sum(dim=(1, 2))
    return (sq / n).sqrt()


def type_frequencies(types: Tensor, num_types: int) -> Tensor:
    """Frequencies of the classes ``0..K-1`` among real atoms (``types >= 0``)."""
    if isinstance(num_types, bool) or not isinstance(num_types, int) or num_types < 1:
        raise ValueError(f"num_types must be a positive integer, got {num_types!r}")
    t = types[types >= 0].long().flatten()
    if t.numel() == 0:
        raise ValueError("types holds no real atoms (every entry is negative padding)")
    if int(t.max()) >= num_types:
        raise ValueError(f"types holds class {int(t.max())}, outside 0..{num_types - 1} "
                         f"(num_types={num_types})")
    return torch.bincount(t.cpu(), minlength=num_types).double() / t.numel()


def bond_lengths(
    x: Tensor, types: Tensor, node_mask: Tensor, atomic_numbers: Sequence[int]
) -> Tensor:
    """Lengths (Å) of all bonded pairs :math:`i < j` (EDM's distance-based bond
    order > 0) of a padded batch: ``x [B, N, 3]``, ``types [B, N]`` (class index,
    ``-1`` on padding), ``node_mask [B, N, 1]``; a 1-D float64 tensor."""
    from refimpl.molecules.chemistry import bond_order_matrix

    table = torch.as_tensor(list(atomic_numbers))
    mask = node_mask[..., 0].cpu() > 0
    z = table[types.cpu().clamp_min(0).long()]
    z = torch.where(mask, z, torch.ones_like(z))
    pos = x.detach().cpu().double()
    orders = bond_order_matrix(z, pos, mask)
    d = (pos[:, :, None] - pos[:, None]).norm(dim=-1)
    upper = torch.ones_like(orders, dtype=torch.bool).triu(1)
    return d[(orders > 0) & upper]


def sample_to_molecules(
    result: SampleResult, atomic_numbers: Sequence[int]
) -> list[tuple[Tensor, Tensor]]:
    """``(z, pos)`` pairs of the generated molecules (CPU)."""
    table = torch.as_tensor(list(atomic_numbers))
    out = []
    for b in range(result.x.shape[0]):
        m = result.node_mask[b, :, 0].cpu() > 0
        out.append(
            (table[result.types[b].cpu()[m]], result.x[b].detach().cpu()[m].double())
        )
    return out


def evaluate_samples(
    result: SampleResult,
    atomic_numbers: Sequence[int],
    *,
    train_smiles: Optional[Iterable[str]] = None,
    reference_rg: Optional[Tensor] = None,
    reference_type_freq: Optional[Tensor] = None,
    reference_bond_lengths: Optional[Tensor] = None,
) -> dict:
    """All metrics of one batch of samples (rates in [0, 1]).

    Args:
        result: the sampler's output.
        atomic_numbers: element of each type class.
        train_smiles: training SMILES for novelty (same RDKit pipeline).
        reference_rg: training radii of gyration (adds ``rg_w1``).
        reference_type_freq: training type frequencies (adds ``type_tv``).
        reference_bond_lengths: training bond lengths (:func:`bond_lengths`; adds
            ``bond_w1``, Å, and ``bond_mean``).
    """
    from scipy.stats import wasserstein_distance

    from refimpl.molecules.chemistry import evaluate_molecules

    mols = sample_to_molecules(result, atomic_numbers)
    out = dict(evaluate_molecules(mols, train_smiles=train_smiles))
    rg = radius_of_gyration(result.x.double(), result.node_mask.double()).cpu()
    out["rg_mean"] = float(rg.mean())
    if reference_rg is not None:
        out["rg_w1"] = float(
            wasserstein_distance(
                rg.numpy(), torch.as_tensor(reference_rg).double().numpy()
            )
        )
    if reference_bond_lengths is not None:
        bl = bond_lengths(result.x, result.types, result.node_mask, atomic_numbers)
        ref = torch.as_tensor(reference_bond_lengths).double()
        out["bond_mean"] = float(bl.mean()) if bl.numel() else float("nan")
        out["bond_w1"] = (
            float(wasserstein_distance(bl.numpy(), ref.numpy()))
            if bl.numel()
            else float("nan")
        )
    if reference_type_freq is not None:
        freq = type_frequencies(result.types, len(atomic_numbers))
        out["type_tv"] = 0.5 * float(
            (freq - torch.as_tensor(reference_type_freq)).abs().sum()
        )
    out["nfe"] = result.nfe
    return out
