r"""Chemistry checks of 3-D molecules: EDM's distance-based bonds, stability, and
RDKit validity, uniqueness and novelty.

**Bonds from distances** (EDM, Hoogeboom et al., 2022, ``qm9/bond_analyze.py``). With
tabulated single, double and triple bond lengths :math:`\ell_1, \ell_2, \ell_3` (pm)
and margins :math:`m_1, m_2, m_3 = 10, 5, 3` pm, a pair at distance :math:`d` gets

.. math::
    \operatorname{order}(d) = \begin{cases}
      0 & d \ge \ell_1 + m_1 \\
      3 & d < \ell_3 + m_3 \text{ (if } \ell_3 \text{ exists and } d < \ell_2 + m_2) \\
      2 & d < \ell_2 + m_2 \text{ (if } \ell_2 \text{ exists)} \\
      1 & \text{otherwise.}
    \end{cases}

Every pair of atoms of a molecule is checked. An atom is **stable** when the sum of
its bond orders equals its allowed valence (H 1, C 4, N 3, O 2, F 1); a molecule is
stable when all its atoms are. **Atom stability** pools atoms over all molecules,
**molecule stability** is the fraction of stable molecules (EDM's
``check_stability``).

**RDKit metrics** (EDM's ``qm9/rdkit_functions.py``): the atoms and the bonds above
make an RDKit molecule; it is *valid* if :func:`rdkit.Chem.SanitizeMol` succeeds
(disconnected molecules count as valid) and is then represented by the canonical
SMILES of its largest fragment. Validity = valid / all, uniqueness = distinct valid
SMILES / valid, novelty = distinct valid SMILES not among the training SMILES (made
by the same pipeline from training geometries) / distinct valid SMILES.

Only the QM9 elements H, C, N, O, F are tabulated here (EDM's file also lists
lengths for B, Si, P, S, Cl, Br, I, As used with GEOM; they are not in our spec, so
those elements raise a :class:`ValueError`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Iterable

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "BOND_LENGTHS_PM", "BOND_MARGINS_PM", "ALLOWED_VALENCE", "bond_order",
    "bond_order_matrix", "atom_stability", "check_stability", "to_rdkit_mol",
    "mol_to_smiles", "largest_fragment_smiles", "molecule_smiles",
    "evaluate_molecules", "as_padded",
]

_SYMBOL = {1: "H", 6: "C", 7: "N", 8: "O", 9: "F"}
_Z = {v: k for k, v in _SYMBOL.items()}

#: EDM's reference bond lengths in pm, per bond order (symmetric).
BOND_LENGTHS_PM: dict[int, dict[tuple[str, str], float]] = {
    1: {("H", "H"): 74, ("H", "C"): 109, ("H", "N"): 101, ("H", "O"): 96,
        ("H", "F"): 92, ("C", "C"): 154, ("C", "N"): 147, ("C", "O"): 143,
        ("C", "F"): 135,
        ("N", "N"): 145, ("N", "O"): 140, ("N", "F"): 136,
        ("O", "O"): 148, ("O", "F"): 142, ("F", "F"): 142},
    2: {("C", "C"): 134, ("C", "N"): 129, ("C", "O"): 120, ("N", "N"): 125,
        ("N", "O"): 121, ("O", "O"): 121},
    3: {("C", "C"): 120, ("C", "N"): 116, ("C", "O"): 113, ("N", "N"): 110},
}
#: Margins (pm) for single, double and triple bonds, tuned by EDM on QM9.
BOND_MARGINS_PM: tuple[float, float, float] = (10.0, 5.0, 3.0)
#: Allowed total bond order per element (EDM's ``allowed_bonds`` for QM9).
ALLOWED_VALENCE: dict[str, int] = {"H": 1, "C": 4, "N": 3, "O": 2, "F": 1}


@functools.lru_cache(maxsize=8)
def _tables(device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    lengths = torch.zeros(3, 10, 10, dtype=torch.float64)
    for order, table in BOND_LENGTHS_PM.items():
        for (a, b), v in table.items():
            lengths[order - 1, _Z[a], _Z[b]] = lengths[order - 1, _Z[b], _Z[a]] = v
    valence = torch.full((10,), -1, dtype=torch.long)
    for s, v in ALLOWED_VALENCE.items():
        valence[_Z[s]] = v
    known = valence >= 0
    return lengths.to(device), valence.to(device), known.to(device), \
        torch.tensor(BOND_MARGINS_PM, dtype=torch.float64, device=device)


def _check_z(z: Tensor, mask: Tensor | None = None) -> None:
    if z.is_floating_point():
        raise TypeError(f"z must hold integer atomic numbers, got dtype {z.dtype}")
    real = z if mask is None else z[mask]
    if real.numel():
        ok = (real >= 0) & (real < 10)
        ok = ok & torch.isin(real, torch.tensor(list(_SYMBOL), device=z.device))
        if not bool(ok.all()):
            bad = sorted(set(real[~ok].tolist()))
            raise ValueError(f"unknown element(s) with atomic number {bad}; the "
                             f"bond tables cover {sorted(_SYMBOL.values())} "
                             f"(Z {sorted(_SYMBOL)})")


def bond_order(z_i: Tensor, z_j: Tensor, d: Tensor) -> Tensor:
    """EDM's bond order (0–3) of atom pairs ``(z_i, z_j)`` at distances ``d`` (Å),
    broadcast over any shape."""
    z_i, z_j = torch.as_tensor(z_i), torch.as_tensor(z_j)
    d = torch.as_tensor(d, dtype=torch.float64)
    _check_z(z_i)
    _check_z(z_j)
    if not bool(torch.isfinite(d).all()):
        raise ValueError("distances must be finite")
    lengths, _, _, margin = _tables(d.device)
    z_i, z_j = z_i.to(d.device).long(), z_j.to(d.device).long()
    pm = 100.0 * d
    l1, l2, l3 = lengths[0][z_i, z_j], lengths[1][z_i, z_j], lengths[2][z_i, z_j]
    single = pm < l1 + margin[0]
    double = single & (l2 > 0) & (pm < l2 + margin[1])
    triple = double & (l3 > 0) & (pm < l3 + margin[2])
    return single.long() + double.long() + triple.long()


def as_padded(molecules: Any) -> tuple[Tensor, Tensor, Tensor]:
    """``(z [B, N], pos [B, N, 3], mask [B, N] bool)`` from a list of ``(z, pos)``
    pairs (tensors or arrays), a :class:`~refimpl.molecules.DenseMolecules`, or a
    PyG ``Batch``/``Data``. Real atoms come first in every row.

    Raises:
        ValueError: shapes disagree, NaN coordinates, or an empty molecule.
    """
    from .dense import DenseMolecules, to_dense

    if isinstance(molecules, DenseMolecules):
        z, pos, mask = molecules.z, molecules.pos, molecules.node_mask[..., 0] > 0.5
    elif hasattr(molecules, "z") and hasattr(molecules, "pos"):
        d = to_dense(molecules)
        z, pos, mask = d.z, d.pos, d.node_mask[..., 0] > 0.5
    else:
        mols = list(molecules)
        zs, ps = [], []
        for k, item in enumerate(mols):
            if len(item) != 2:
                raise ValueError(f"molecule {k}: expected a (z, pos) pair")
            zk = torch.as_tensor(np.asarray(item[0]) if not isinstance(item[0], Tensor)
                                 else item[0]).reshape(-1).long().cpu()
            pk = torch.as_tensor(np.asarray(item[1]) if not isinstance(item[1], Tensor)
                                 else item[1]).double().cpu()
            if pk.dim() != 2 or pk.size(-1) != 3 or pk.size(0) != zk.numel():
                raise ValueError(f"molecule {k}: z has {zk.numel()} atoms but pos has "
                                 f"shape {tuple(pk.shape)}; expected [{zk.numel()}, 3]")
            zs.append(zk)
            ps.append(pk)
        n = max((z_.numel() for z_ in zs), default=0)
        z = torch.zeros(len(zs), n, dtype=torch.long)
        pos = torch.zeros(len(zs), n, 3, dtype=torch.float64)
        mask = torch.zeros(len(zs), n, dtype=torch.bool)
        for k, (zk, pk) in enumerate(zip(zs, ps)):
            z[k, :zk.numel()], pos[k, :zk.numel()], mask[k, :zk.numel()] = zk, pk, True
    if z.numel() and not bool((mask[:, 1:] <= mask[:, :-1]).all()):
        # move each molecule's real atoms to the front (stable), keep their order
        order = torch.argsort((~mask).int(), dim=1, stable=True)
        z, mask = z.gather(1, order), mask.gather(1, order)
        pos = pos.gather(1, order[..., None].expand(-1, -1, 3))
    empty = (mask.sum(1) == 0).nonzero().flatten()
    if empty.numel():
        raise ValueError(f"molecule {int(empty[0])} has no atoms")
    bad = ~torch.isfinite(pos).all(-1) & mask
    if bool(bad.any()):
        raise ValueError(f"molecule {int(bad.any(1).nonzero()[0])} has NaN or infinite "
                         "coordinates")
    _check_z(z, mask)
    return z, pos, mask


def bond_order_matrix(z: Tensor, pos: Tensor, mask: Tensor | None = None) -> Tensor:
    """Bond orders of all atom pairs, ``[N, N]`` (or ``[B, N, N]`` for padded input
    with ``mask [B, N]``), zero on the diagonal and on padding."""
    single = z.dim() == 1
    if single:
        z, pos = z[None], pos[None]
        mask = None if mask is None else mask[None]
    if pos.shape[:-1] != z.shape or pos.size(-1) != 3:
        raise ValueError(f"expected z [B, N] and pos [B, N, 3], got {tuple(z.shape)} "
                         f"and {tuple(pos.shape)}")
    if mask is None:
        mask = torch.ones_like(z, dtype=torch.bool)
    _check_z(z, mask)
    pos = pos.double()
    d = (pos[:, :, None, :] - pos[:, None, :, :]).norm(dim=-1)
    zz = torch.where(mask, z, torch.ones_like(z))  # padding as H, masked out below
    order = bond_order(zz[:, :, None], zz[:, None, :], d)
    pair = mask[:, :, None] & mask[:, None, :]
    pair = pair & ~torch.eye(z.size(1), dtype=torch.bool, device=z.device)
    order = order * pair
    return order[0] if single else order


def atom_stability(z: Tensor, pos: Tensor, mask: Tensor | None = None,
                   chunk: int = 1024, return_orders: bool = False) -> dict[str, Tensor]:
    """Vectorised stability of a padded batch ``z [B, N]``, ``pos [B, N, 3]``.

    Returns:
        dict with ``valence [B, N]`` (sum of bond orders), ``stable [B, N]`` (valence
        equals the allowed one; False on padding), ``feasible [B, N]`` (valence at
        most the allowed one, for heavy-atom molecules with implicit H),
        ``molecule_stable [B]``, ``molecule_feasible [B]`` and, with
        ``return_orders``, the bond-order matrices ``orders [B, N, N]`` (int8).
    """
    if mask is None:
        mask = torch.ones_like(z, dtype=torch.bool)
    _, allowed, _, _ = _tables(z.device)
    orders = [bond_order_matrix(z[i:i + chunk], pos[i:i + chunk], mask[i:i + chunk])
              for i in range(0, z.size(0), chunk)]
    valence = torch.cat([o.sum(-1) for o in orders]) if orders else torch.zeros_like(z)
    target = allowed[torch.where(mask, z, torch.ones_like(z))]
    stable = (valence == target) & mask
    feasible = (valence <= target) & mask
    out = {"valence": valence, "stable": stable, "feasible": feasible,
           "molecule_stable": (stable | ~mask).all(1),
           "molecule_feasible": (feasible | ~mask).all(1)}
    if return_orders:
        out["orders"] = (torch.cat(orders).to(torch.int8) if orders
                         else torch.zeros(0, z.size(1), z.size(1), dtype=torch.int8))
    return out


def check_stability(z: Tensor, pos: Tensor) -> tuple[bool, int, int]:
    """EDM's ``check_stability`` for one molecule: ``(molecule_stable,
    number_of_stable_atoms, number_of_atoms)``."""
    zb, pb, mb = as_padded([(z, pos)])
    out = atom_stability(zb, pb, mb)
    return bool(out["molecule_stable"][0]), int(out["stable"].sum()), int(mb.sum())


# ------------------------------------------------------------------------------ RDKit
def to_rdkit_mol(z: Tensor | Sequence[int], pos: Tensor | None = None,
                 bonds: Tensor | Iterable[tuple[int, int, int]] | None = None,
                 sanitize: bool = False):
    """An RDKit molecule from atomic numbers, positions (Å) and bonds.

    Args:
        z: atomic numbers ``[N]``.
        pos: positions ``[N, 3]``; stored as a conformer, and used to infer the bonds
            with :func:`bond_order_matrix` when ``bonds`` is None.
        bonds: an ``[N, N]`` bond-order matrix or ``(i, j, order)`` triples with
            orders 1, 2, 3 (0 = no bond).
        sanitize (bool): run :func:`rdkit.Chem.SanitizeMol` (may raise).

    Returns:
        :class:`rdkit.Chem.Mol` (unsanitised unless asked), explicit H as atoms.
    """
    from rdkit import Chem
    from rdkit.Geometry import Point3D

    z = torch.as_tensor(z).reshape(-1).long().cpu()
    if pos is not None:
        pos = torch.as_tensor(pos).double().cpu()
        if pos.shape != (z.numel(), 3):
            raise ValueError(
                f"pos must have shape [{z.numel()}, 3], got {tuple(pos.shape)}")
    if bonds is None:
        if pos is None:
            raise ValueError("give pos or bonds")
        bonds = bond_order_matrix(z, pos)
    if isinstance(bonds, Tensor) or isinstance(bonds, np.ndarray):
        b = np.asarray(bonds.cpu() if isinstance(bonds, Tensor) else bonds)
        if b.shape != (z.numel(), z.numel()):
            raise ValueError(f"a bond matrix must be [{z.numel()}, {z.numel()}], "
                             f"got {tuple(b.shape)}")
        ii, jj = np.nonzero(np.triu(b, 1))
        triples = list(zip(ii.tolist(), jj.tolist(), b[ii, jj].tolist()))
    else:
        triples = [(int(i), int(j), int(k)) for i, j, k in bonds if k > 0]
    kinds = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}
    mol = Chem.RWMol()
    for zi in z.tolist():
        if zi < 1:
            raise ValueError(f"atomic numbers must be positive, got {zi}")
        mol.AddAtom(Chem.Atom(int(zi)))
    for i, j, k in triples:
        if k not in kinds:
            raise ValueError(f"bond ({i}, {j}) has order {k}; expected 1, 2 or 3")
        mol.AddBond(i, j, kinds[k])
    if pos is not None:
        conf = Chem.Conformer(z.numel())
        for a, (x, y, w) in enumerate(pos.tolist()):
            conf.SetAtomPosition(a, Point3D(x, y, w))
        mol.AddConformer(conf, assignId=True)
    mol = mol.GetMol()
    if sanitize:
        Chem.SanitizeMol(mol)
    return mol


def mol_to_smiles(mol) -> str | None:
    """Canonical SMILES after sanitisation, or None if sanitisation fails (EDM's
    ``mol2smiles``). Sanitises ``mol`` in place."""
    from rdkit import Chem, rdBase

    with rdBase.BlockLogs():
        try:
            Chem.SanitizeMol(mol)
        except Exception:  # RDKit raises several sanitisation exception types
            return None
        return Chem.MolToSmiles(mol)


def largest_fragment_smiles(mol) -> str | None:
    """SMILES of the largest fragment (by atom count) of a molecule that sanitises,
    else None — EDM's validity rule."""
    from rdkit import Chem

    if mol_to_smiles(mol) is None:
        return None
    frags = Chem.rdmolops.GetMolFrags(mol, asMols=True, sanitizeFrags=False)
    largest = max(frags, default=mol, key=lambda m: m.GetNumAtoms())
    return mol_to_smiles(largest)


def molecule_smiles(molecules: Any, progress: bool | None = None) -> list[str | None]:
    """:func:`largest_fragment_smiles` of every molecule (None when invalid): the
    pipeline that makes the training SMILES for novelty."""
    from refimpl.progress import tqdm

    z, pos, mask = as_padded(molecules)
    orders = atom_stability(z, pos, mask, return_orders=True)["orders"].cpu().numpy()
    counts, zs = mask.sum(1).tolist(), z.cpu()
    out = []
    for b in tqdm(range(z.size(0)), desc="RDKit SMILES", progress=progress):
        n = counts[b]
        out.append(largest_fragment_smiles(to_rdkit_mol(zs[b, :n],
                                                        bonds=orders[b, :n, :n])))
    return out


def evaluate_molecules(molecules: Any, train_smiles: Iterable[str] | None = None,
                       progress: bool | None = None) -> dict[str, float | int | None]:
    r"""EDM's evaluation of 3-D molecules (plus heavy-atom variants).

    Args:
        molecules: a list of ``(z, pos)`` pairs, a
            :class:`~refimpl.molecules.DenseMolecules` or a PyG batch.
        train_smiles: training SMILES made by :func:`molecule_smiles` from training
            geometries (for novelty); None skips novelty.
        progress (bool): tqdm bar over the RDKit part.

    Returns:
        dict with ``n_molecules``, ``n_atoms``, ``atom_stability``,
        ``molecule_stability`` (meaningful with explicit hydrogens),
        ``valence_feasible_atoms``, ``valence_feasible_molecules`` (for heavy-atom
        molecules: valence at most the allowed one), ``validity``, ``uniqueness``,
        ``valid_x_unique``, ``novelty`` (None without ``train_smiles``),
        ``connected`` (one fragment) and ``valid_and_connected``; all rates in
        :math:`[0, 1]`.
    """
    from rdkit import Chem

    from refimpl.progress import tqdm

    z, pos, mask = as_padded(molecules)
    if z.size(0) == 0:
        raise ValueError("evaluate_molecules needs at least one molecule")
    st = atom_stability(z, pos, mask, return_orders=True)
    n_mol, n_atoms = z.size(0), int(mask.sum())
    orders, counts = st["orders"].cpu().numpy(), mask.sum(1).tolist()
    zs = z.cpu()
    smiles, connected = [], []
    for b in tqdm(range(n_mol), desc="RDKit validity", progress=progress):
        n = counts[b]  # real atoms first (padded layout)
        mol = to_rdkit_mol(zs[b, :n], bonds=orders[b, :n, :n])
        connected.append(len(Chem.rdmolops.GetMolFrags(mol)) == 1)
        smiles.append(largest_fragment_smiles(mol))
    valid = [s for s in smiles if s is not None]
    unique = set(valid)
    novelty = None
    if train_smiles is not None:
        ref = set(s for s in train_smiles if s is not None)
        novelty = (len(unique - ref) / len(unique)) if unique else 0.0
    n_valid = len(valid)
    valid_conn = sum(1 for s, c in zip(smiles, connected) if s is not None and c)
    return {
        "n_molecules": n_mol,
        "n_atoms": n_atoms,
        "atom_stability": int(st["stable"].sum()) / max(n_atoms, 1),
        "molecule_stability": float(st["molecule_stable"].float().mean()),
        "valence_feasible_atoms": int(st["feasible"].sum()) / max(n_atoms, 1),
        "valence_feasible_molecules": float(st["molecule_feasible"].float().mean()),
        "validity": n_valid / n_mol,
        "uniqueness": len(unique) / n_valid if n_valid else 0.0,
        "valid_x_unique": len(unique) / n_mol,
        "novelty": novelty,
        "connected": sum(connected) / n_mol,
        "valid_and_connected": valid_conn / n_mol,
    }
