r"""Dataset statistics of 3-D molecules: atom counts, element frequencies, distances.

For QM9 with hydrogens the published numbers (EDM's ``configs/datasets_config.py``,
training split) are: 3–29 atoms (none with 28), mode 19, mean 18.03; at most 9 heavy
atoms; element counts H 923,537 > C 635,559 > O 140,202 > N 101,476 > F 2,323.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["molecule_statistics"]

_SYMBOL = {1: "H", 6: "C", 7: "N", 8: "O", 9: "F"}


def molecule_statistics(molecules: Any, distance_bins: Tensor | None = None,
                        max_distance_molecules: int | None = None,
                        chunk: int = 2048, seed: int = 0) -> dict[str, Any]:
    r"""Atom-count histograms, element frequencies and interatomic distances.

    Args:
        molecules: a :class:`~refimpl.molecules.QM9Dataset` (fast path), a
            :class:`~refimpl.molecules.DenseMolecules`, a PyG batch or a list of
            ``(z, pos)`` pairs.
        distance_bins (Tensor, optional): histogram edges in Å (default: 0–12 Å in
            0.05 Å bins).
        max_distance_molecules (int, optional): use a seeded random subset of this
            many molecules for the distances (all by default).
        chunk (int): molecules per block in the distance computation.
        seed (int): seed of that subset.

    Returns:
        dict with ``num_molecules``; ``num_atoms_hist`` and ``num_heavy_atoms_hist``
        (``{n: count}``); ``num_atoms_mean``, ``num_atoms_max``,
        ``num_atoms_mode``, ``num_heavy_atoms_max``; ``element_counts`` and
        ``element_fractions`` (``{symbol: ...}``, most frequent first);
        ``distance_hist`` (counts over unordered intramolecular pairs),
        ``distance_bins``, ``distance_min``, ``distance_mean``, ``distance_max``.
    """
    from .chemistry import as_padded

    if hasattr(molecules, "flat") and hasattr(molecules, "subset"):
        # QM9Dataset: counts from the flat arrays, distances block by block
        if len(molecules) == 0:
            raise ValueError("molecule_statistics needs at least one molecule")
        z_flat, _, batch = molecules.flat()
        n_atoms = molecules.num_atoms
        n_heavy = torch.bincount(batch[z_flat > 1], minlength=len(molecules))
        num_mols = len(molecules)

        def block(sel: Tensor) -> tuple[Tensor, Tensor]:
            d = molecules.subset(sel).dense()
            return d.pos, d.node_mask[..., 0] > 0.5
    else:
        z, pos, mask = as_padded(molecules)
        if z.size(0) == 0:
            raise ValueError("molecule_statistics needs at least one molecule")
        z_flat, n_atoms, n_heavy = z[mask], mask.sum(1), (mask & (z > 1)).sum(1)
        num_mols = z.size(0)

        def block(sel: Tensor) -> tuple[Tensor, Tensor]:
            return pos[sel], mask[sel]
    hist = torch.bincount(n_atoms)
    heavy_hist = torch.bincount(n_heavy)
    zc = torch.bincount(z_flat, minlength=10)
    counts = {(_SYMBOL.get(k, str(k))): int(c) for k, c in enumerate(zc.tolist()) if c}
    counts = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
    total = sum(counts.values())

    if distance_bins is None:
        distance_bins = torch.linspace(0.0, 12.0, 241, dtype=torch.float64)
    distance_bins = distance_bins.double().cpu()
    pick = torch.arange(num_mols)
    if max_distance_molecules is not None and max_distance_molecules < num_mols:
        g = torch.Generator().manual_seed(seed)
        pick = torch.randperm(num_mols, generator=g)[:max_distance_molecules]
    dist_hist = torch.zeros(distance_bins.numel() - 1, dtype=torch.long)
    d_min, d_max, d_sum, d_n = float("inf"), 0.0, 0.0, 0
    for i in range(0, pick.numel(), chunk):
        p, m = block(pick[i:i + chunk])
        p = p.double()
        n = p.size(1)
        iu = torch.triu_indices(n, n, 1)
        d = (p[:, iu[0]] - p[:, iu[1]]).norm(dim=-1)
        d = d[m[:, iu[0]] & m[:, iu[1]]].cpu()
        if d.numel():
            dist_hist += torch.histogram(d, distance_bins).hist.long()
            d_min, d_max = min(d_min, float(d.min())), max(d_max, float(d.max()))
            d_sum, d_n = d_sum + float(d.sum()), d_n + d.numel()
    return {
        "num_molecules": int(num_mols),
        "num_atoms_hist": {k: int(c) for k, c in enumerate(hist.tolist()) if c},
        "num_heavy_atoms_hist": {k: int(c) for k, c in enumerate(heavy_hist.tolist())
                                 if c},
        "num_atoms_mean": float(n_atoms.double().mean()),
        "num_atoms_max": int(n_atoms.max()),
        "num_atoms_mode": int(hist.argmax()),
        "num_heavy_atoms_max": int(n_heavy.max()),
        "element_counts": counts,
        "element_fractions": {k: v / total for k, v in counts.items()},
        "distance_hist": dist_hist,
        "distance_bins": distance_bins,
        "distance_min": d_min if d_n else float("nan"),
        "distance_mean": d_sum / d_n if d_n else float("nan"),
        "distance_max": d_max if d_n else float("nan"),
    }
