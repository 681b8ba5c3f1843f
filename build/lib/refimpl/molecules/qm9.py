r"""QM9 offline: 130,831 small organic molecules with DFT geometries and properties.

QM9 (Ramakrishnan et al., 2014) holds every molecule of GDB-17 with up to nine heavy
atoms (C, N, O, F), relaxed at the B3LYP/6-31G(2df,p) level, with 3-D coordinates and
13 quantum-chemical properties. The dataset is licensed CC BY 4.0 (figshare,
doi:10.6084/m9.figshare.c.978904). The PyPI package ``qm9pack`` 1.0.3 (MIT, by
QM9's first author) ships all 130,831 characterised molecules as CSV files inside
its wheel; :func:`load_qm9` reads those files directly (``qm9pack``'s own loader
imports ``pkg_resources``, which recent setuptools no longer ship), parses them once
into a compact cached file and splits them as EDM (Hoogeboom et al., 2022) does.

Units of the targets (as in :class:`torch_geometric.datasets.QM9`; the columns in
Hartree, marked †, are multiplied by 1 Ha = 27.211386246 eV):

=========  ===========================  ===========  =============================
name       property                     unit         ``qm9pack`` column
=========  ===========================  ===========  =============================
``mu``     dipole moment                D            ``Dipole_debye``
``alpha``  isotropic polarisability     a₀³          ``Polarizability_bohr3``
``homo``   HOMO energy                  eV           ``HOMO_au`` †
``lumo``   LUMO energy                  eV           ``LUMO_au`` †
``gap``    HOMO–LUMO gap                eV           ``HOMO_LUMO_gap_au`` †
``r2``     electronic spatial extent    a₀²          ``R2_bohr2``
``zpve``   zero-point vibr. energy      eV           ``ZPVE_au`` †
``U0``     internal energy at 0 K       eV           ``InternalEnergy_0K_au`` †
``U``      internal energy at 298 K     eV           ``InternalEnergy_298K_au`` †
``H``      enthalpy at 298 K            eV           ``Enthalphy_298K_au`` †
``G``      free energy at 298 K         eV           ``GibbsFreeEnergy_298K_au`` †
``Cv``     heat capacity at 298 K       cal/(mol·K)  ``Heatcapacity_Cv_cal_mol_K``
``A``      rotational constant A        GHz          ``RotA_GHz``
``B``      rotational constant B        GHz          ``RotB_GHz``
``C``      rotational constant C        GHz          ``RotC_GHz``
=========  ===========================  ===========  =============================

The first twelve are PyG's target indices 0–11 in the same order and units; PyG's
atomisation energies (indices 12–15) are not stored (fit a per-element baseline with
:meth:`QM9Dataset.atom_reference` instead).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

import refimpl

__all__ = [
    "ELEMENTS", "ATOMIC_NUMBERS", "TARGETS", "TARGET_UNITS", "HARTREE_TO_EV",
    "EDM_SPLIT_SIZES", "ParsedQM9", "parse_qm9_csv", "edm_split", "QM9Dataset",
    "load_qm9", "qm9pack_files",
]

logger = logging.getLogger("refimpl.molecules")

HARTREE_TO_EV = 27.211386246

#: The elements of QM9, in EDM's one-hot order.
ELEMENTS: tuple[str, ...] = ("H", "C", "N", "O", "F")
ATOMIC_NUMBERS: dict[str, int] = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}

# name, qm9pack column, factor to the stored unit, unit
_TARGET_TABLE: tuple[tuple[str, str, float, str], ...] = (
    ("mu", "Dipole_debye", 1.0, "D"),
    ("alpha", "Polarizability_bohr3", 1.0, "a0^3"),
    ("homo", "HOMO_au", HARTREE_TO_EV, "eV"),
    ("lumo", "LUMO_au", HARTREE_TO_EV, "eV"),
    ("gap", "HOMO_LUMO_gap_au", HARTREE_TO_EV, "eV"),
    ("r2", "R2_bohr2", 1.0, "a0^2"),
    ("zpve", "ZPVE_au", HARTREE_TO_EV, "eV"),
    ("U0", "InternalEnergy_0K_au", HARTREE_TO_EV, "eV"),
    ("U", "InternalEnergy_298K_au", HARTREE_TO_EV, "eV"),
    ("H", "Enthalphy_298K_au", HARTREE_TO_EV, "eV"),  # sic: qm9pack's spelling
    ("G", "GibbsFreeEnergy_298K_au", HARTREE_TO_EV, "eV"),
    ("Cv", "Heatcapacity_Cv_cal_mol_K", 1.0, "cal/(mol K)"),
    ("A", "RotA_GHz", 1.0, "GHz"),
    ("B", "RotB_GHz", 1.0, "GHz"),
    ("C", "RotC_GHz", 1.0, "GHz"),
)
#: Target names, the columns of ``y``.
TARGETS: tuple[str, ...] = tuple(t[0] for t in _TARGET_TABLE)
TARGET_UNITS: dict[str, str] = {t[0]: t[3] for t in _TARGET_TABLE}
# Targets that may legitimately be missing: linear molecules have no rotational
# constant A in QM9's files (stored as 0 or empty); they are kept, with NaN.
_OPTIONAL_TARGETS = {"A", "B", "C"}

#: EDM's split sizes on the 130,831 molecules (train, valid, test).
EDM_SPLIT_SIZES: tuple[int, int, int] = (100_000, 17_748, 13_083)
_EDM_NUM_MOLECULES = 130_831
SPLITS: tuple[str, ...] = ("train", "val", "test")

_COLUMNS = ("XYZ_file", "Index", "SMILES", "N_atoms", "Elements", "XYZ_Ang")
_CACHE_FORMAT = 2  # 2: a checked file (fingerprint of the tensors)


# --------------------------------------------------------------------------- parsing
@dataclass
class ParsedQM9:
    """Flat, validated QM9 rows (the content of the cache file).

    Attributes:
        z: atomic numbers of all atoms, concatenated, ``uint8 [A]``.
        pos: positions in Å, ``float32 [A, 3]``.
        num_atoms: atoms per molecule, ``int64 [M]``.
        y: targets in the units of :data:`TARGET_UNITS`, ``float64 [M, len(TARGETS)]``.
        gdb_idx: QM9's 1-based GDB index (column ``Index``), ``int64 [M]``.
        row: position of the molecule among all rows read (skipped ones included),
            ``int64 [M]``; the split permutation runs over rows.
        num_rows: number of rows read.
        smiles: QM9's SMILES string per molecule.
        skipped: one ``(name, reason, detail)`` per rejected row.
    """

    z: np.ndarray
    pos: np.ndarray
    num_atoms: np.ndarray
    y: np.ndarray
    gdb_idx: np.ndarray
    row: np.ndarray
    num_rows: int
    smiles: list[str]
    skipped: list[tuple[str, str, str]] = field(default_factory=list)


def _strip(series, chars: str):
    return series.str.replace(f"[{re.escape(chars)}]", "", regex=True)


def _count_items(stripped) -> np.ndarray:
    """Number of comma-separated items of each stripped list string ("" -> 0)."""
    counts = stripped.str.count(",").to_numpy(dtype=np.int64) + 1
    counts[(stripped == "").to_numpy()] = 0
    return counts


def parse_qm9_csv(
    sources: str | os.PathLike | io.IOBase | Sequence[str | os.PathLike | io.IOBase],
    strict: bool = False,
    progress: bool | None = None,
) -> ParsedQM9:
    r"""Parse ``qm9pack``-style CSV files into validated flat arrays.

    The text lists ``Elements`` (``"['C','H',...]"``) and ``XYZ_Ang``
    (``"[[x,y,z],...]"``, Å) of all rows are joined and converted in one NumPy call;
    every row is first checked for

    * an atom count that disagrees with its element list or coordinate triples,
    * fewer than two atoms,
    * an element outside :data:`ELEMENTS`,
    * coordinates that do not parse or are NaN/infinite,
    * a non-finite required target (``mu`` ... ``Cv``).

    Args:
        sources: one or more paths or file-like objects (read in order; rows keep
            that order).
        strict (bool): raise on the first bad row instead of skipping it.
        progress (bool): show a tqdm bar over the sources.

    Returns:
        :class:`ParsedQM9`; rejected rows are listed in ``skipped``.

    Raises:
        ValueError: a required column is missing, or (``strict``) a bad row, with
            the molecule's name and the problem.
    """
    import pandas as pd
    from refimpl.progress import tqdm

    if isinstance(sources, (str, os.PathLike, io.IOBase)):
        sources = [sources]
    usecols = list(_COLUMNS) + [t[1] for t in _TARGET_TABLE]
    frames = []
    bar = tqdm(total=len(sources) + 3, desc="Parsing QM9 CSV", progress=progress)
    for src in sources:
        header = pd.read_csv(src, nrows=0)
        missing = [c for c in usecols if c not in header.columns]
        if missing:
            raise ValueError(f"QM9 CSV {getattr(src, 'name', src)!s} lacks the columns "
                             f"{missing}; expected qm9pack's columns {usecols}")
        if isinstance(src, io.IOBase):
            src.seek(0)
        frames.append(pd.read_csv(
            src, usecols=usecols, keep_default_na=False, na_values=[""],
            dtype={"XYZ_file": str, "SMILES": str, "Elements": str, "XYZ_Ang": str}))
        bar.update()
    df = pd.concat(frames, ignore_index=True)
    num_rows = len(df)

    names = df["XYZ_file"].fillna("<unnamed>").astype(str).str.removesuffix(".xyz")
    names = names.to_numpy(dtype=object)
    gdb = pd.to_numeric(df["Index"], errors="coerce").to_numpy(dtype=np.float64)
    n_decl = pd.to_numeric(df["N_atoms"], errors="coerce").to_numpy(dtype=np.float64)
    elements = _strip(df["Elements"].fillna(""), "[]'\" ")
    xyz = _strip(df["XYZ_Ang"].fillna(""), " ")
    n_el = _count_items(elements)
    xyz_flat = _strip(xyz, "[]")
    n_num = _count_items(xyz_flat)
    n_triples = np.maximum(xyz.str.count(r"\[").to_numpy(dtype=np.int64) - 1, 0)

    reason = np.full(num_rows, "", dtype=object)
    detail = np.full(num_rows, "", dtype=object)

    def flag(mask: np.ndarray, why: str, what) -> None:
        """Record the first problem of each row in ``mask``; ``what(i)`` -> detail."""
        for i in np.flatnonzero(mask & (reason == "")):
            reason[i], detail[i] = why, what(i)

    flag(~np.isfinite(n_decl) | ~np.isfinite(gdb), "unparseable row",
         lambda i: f"N_atoms={df['N_atoms'].iloc[i]!r}, Index={df['Index'].iloc[i]!r}")
    n_decl = np.nan_to_num(n_decl, nan=-1).astype(np.int64)
    flag((n_el != n_decl) | (n_num != 3 * n_decl) | (n_triples != n_decl),
         "atom count mismatch",
         lambda i: f"N_atoms={n_decl[i]} but {n_el[i]} element symbols and "
                   f"{n_triples[i]} coordinate triples ({n_num[i]} numbers)")
    flag(n_decl < 2, "fewer than 2 atoms", lambda i: f"{n_decl[i]} atom(s)")

    bar.update()  # row checks
    # Element symbols of the rows whose counts are consistent (one split for all).
    rows_a = np.flatnonzero(reason == "")
    sym = (np.array(",".join(elements.iloc[rows_a]).split(","), dtype=str)
           if len(rows_a) else np.zeros(0, dtype=str))
    atom_row_a = np.repeat(rows_a, n_decl[rows_a])
    uniq, inv = np.unique(sym, return_inverse=True)
    lut = np.array([ATOMIC_NUMBERS.get(s, 0) for s in uniq], dtype=np.uint8)
    z_a = lut[inv] if len(sym) else np.zeros(0, dtype=np.uint8)
    unknown = z_a == 0
    if unknown.any():
        first_bad = {}
        for r_, s_ in zip(atom_row_a[unknown], sym[unknown]):
            first_bad.setdefault(int(r_), s_)
        mask = np.zeros(num_rows, dtype=bool)
        mask[list(first_bad)] = True
        flag(mask, "unknown element",
             lambda i: f"element {first_bad[i]!r} (QM9 has {', '.join(ELEMENTS)})")

    bar.update()  # elements
    # Coordinates of the rows still fine: one vectorised conversion, per row on error.
    def convert(rows: np.ndarray) -> np.ndarray:
        if not len(rows):
            return np.zeros((0, 3))
        return np.array(",".join(xyz_flat.iloc[rows]).split(","),
                        dtype=np.float64).reshape(-1, 3)

    rows_b = np.flatnonzero(reason == "")
    try:
        coords = convert(rows_b)
    except ValueError:
        for i in rows_b:
            try:
                convert(np.array([i]))
            except ValueError as err:
                reason[i], detail[i] = "unparseable coordinates", str(err)
        rows_b = np.flatnonzero(reason == "")
        coords = convert(rows_b)
    atom_row_b = np.repeat(rows_b, n_decl[rows_b])
    mask = np.zeros(num_rows, dtype=bool)
    mask[atom_row_b[~np.isfinite(coords).all(axis=1)]] = True
    flag(mask, "non-finite coordinates", lambda i: "NaN or infinite coordinates")

    y = np.stack([pd.to_numeric(df[col], errors="coerce").to_numpy(np.float64) * fac
                  for _, col, fac, _ in _TARGET_TABLE], axis=1)
    required = [k for k, t in enumerate(TARGETS) if t not in _OPTIONAL_TARGETS]
    flag(~np.isfinite(y[:, required]).all(axis=1), "non-finite target",
         lambda i: "missing or non-numeric " + ", ".join(
             TARGETS[k] for k in required if not np.isfinite(y[i, k])))

    bar.update()  # coordinates and targets
    bar.close()
    bad_rows = np.flatnonzero(reason != "")
    skipped = [(f"{names[i]} (Index {df['Index'].iloc[i]})", reason[i], detail[i])
               for i in bad_rows]
    if strict and skipped:
        name, why, text = skipped[0]
        raise ValueError(f"bad QM9 row: molecule {name}: {why}: {text}"
                         + (f" (and {len(skipped) - 1} more bad rows)"
                            if len(skipped) > 1 else ""))
    keep = reason == ""
    return ParsedQM9(
        z=z_a[keep[atom_row_a]],
        pos=coords[keep[atom_row_b]].astype(np.float32),
        num_atoms=n_decl[keep],
        y=y[keep],
        gdb_idx=gdb[keep].astype(np.int64),
        row=np.flatnonzero(keep).astype(np.int64),
        num_rows=num_rows,
        smiles=df["SMILES"].fillna("").astype(str).to_numpy(dtype=object)[keep]
        .tolist(),
        skipped=skipped,
    )


# ------------------------------------------------------------------------------ split
def edm_split(num_rows: int,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""EDM's train/validation/test split of ``num_rows`` rows ordered by GDB index.

    EDM (``qm9/data/prepare/qm9.py``) draws ``perm = np.random.permutation(N)`` after
    ``np.random.seed(0)`` and takes the first 100,000 entries for training, the next
    ``N - 100,000 - int(0.1 N)`` (17,748) for validation and the last ``int(0.1 N)``
    (13,083) for testing. For another ``N`` the training share is scaled,
    :math:`\operatorname{round}(N\cdot 100000/130831)`. The legacy
    :class:`numpy.random.RandomState` reproduces ``np.random.seed`` exactly without
    touching the global generator.

    Returns:
        Three index arrays (train, val, test) into the rows, in permutation order.
    """
    if num_rows < 0:
        raise ValueError(f"num_rows must be non-negative, got {num_rows}")
    perm = np.random.RandomState(seed).permutation(num_rows)
    n_train = round(num_rows * EDM_SPLIT_SIZES[0] / _EDM_NUM_MOLECULES)
    n_test = int(0.1 * num_rows)
    n_val = num_rows - n_train - n_test
    return perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]


# ---------------------------------------------------------------------------- dataset
class QM9Dataset(torch.utils.data.Dataset):
    r"""An indexable set of QM9 molecules (a view on shared flat storage).

    ``ds[i]`` is a :class:`torch_geometric.data.Data` with ``z`` (long ``[n]``),
    ``pos`` (Å, float32 ``[n, 3]``), ``y`` (float32 ``[1, len(TARGETS)]`` in the units
    of :data:`TARGET_UNITS`), ``idx`` (QM9's GDB index, long ``[1]``) and ``smiles``;
    :func:`torch_geometric.data.Batch.from_data_list` (or
    :func:`refimpl.molecules.collate_sparse`) batches them, and
    :func:`refimpl.molecules.collate_dense` pads them for EDM-style models.

    Attributes:
        skipped (dict[str, int]): number of molecules left out, per reason.
        skipped_molecules (list[tuple[str, str, str]]): ``(molecule, reason, detail)``.
    """

    target_names: tuple[str, ...] = TARGETS
    target_units: dict[str, str] = TARGET_UNITS

    def __init__(self, storage: dict, indices: Tensor, splits: dict[str, Tensor],
                 skipped_molecules: list[tuple[str, str, str]], description: str,
                 view: str = "all") -> None:
        self._s = storage
        self._indices = indices
        self._splits = splits
        self.skipped_molecules = list(skipped_molecules)
        self.skipped = dict(Counter(r for _, r, _ in self.skipped_molecules))
        self.description = description
        self.view = view

    # -- basic access
    def __len__(self) -> int:
        return int(self._indices.numel())

    def _atoms(self, m: int) -> slice:
        ptr = self._s["ptr"]
        return slice(int(ptr[m]), int(ptr[m + 1]))

    def get_molecule(self, i: int) -> tuple[Tensor, Tensor]:
        """``(z, pos)`` of the ``i``-th molecule of this view."""
        m = int(self._indices[i])
        sl = self._atoms(m)
        return self._s["z"][sl].long(), self._s["pos"][sl]

    def __getitem__(self, i: int):
        from torch_geometric.data import Data

        if isinstance(i, Tensor):
            i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} molecules")
        m = int(self._indices[i])
        sl = self._atoms(m)
        return Data(z=self._s["z"][sl].long(), pos=self._s["pos"][sl],
                    y=self._s["y"][m:m + 1].float(), idx=self._s["gdb_idx"][m:m + 1],
                    smiles=self._s["smiles"][m])

    def molecules(self) -> list[tuple[Tensor, Tensor]]:
        """All molecules of this view as ``(z, pos)`` pairs."""
        return [self.get_molecule(i) for i in range(len(self))]

    # -- per-molecule arrays of this view
    @property
    def num_atoms(self) -> Tensor:
        """Atoms per molecule, long ``[len(self)]``."""
        ptr = self._s["ptr"]
        return (ptr[self._indices + 1] - ptr[self._indices])

    @property
    def idx(self) -> Tensor:
        """QM9's 1-based GDB index of every molecule, long ``[len(self)]``."""
        return self._s["gdb_idx"][self._indices]

    @property
    def smiles(self) -> list[str]:
        return [self._s["smiles"][int(m)] for m in self._indices]

    @property
    def y(self) -> Tensor:
        """All targets, float64 ``[len(self), len(TARGETS)]``."""
        return self._s["y"][self._indices]

    def targets(self, name: str) -> Tensor:
        """One target (float64 ``[len(self)]``) in the unit ``target_units[name]``."""
        if name not in TARGETS:
            raise ValueError(f"unknown QM9 target {name!r}; available: {TARGETS}")
        return self._s["y"][self._indices, TARGETS.index(name)]

    def flat(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(z [A], pos [A, 3], batch [A])`` of every atom of this view, vectorised."""
        ptr = self._s["ptr"]
        starts, counts = ptr[self._indices], self.num_atoms
        first = torch.cumsum(counts, 0) - counts
        batch = torch.repeat_interleave(torch.arange(len(self)), counts)
        atom = starts[batch] + torch.arange(int(counts.sum())) - first[batch]
        return self._s["z"][atom].long(), self._s["pos"][atom], batch

    def dense(self, max_num_nodes: int | None = None):
        """All molecules of this view as one padded
        :class:`~refimpl.molecules.DenseMolecules` (vectorised; ``y`` float32).

        Its ``edge_mask`` takes :math:`4 M N^2` bytes for :math:`M` molecules (0.3 GB
        for 100,000 QM9 molecules): for training, batch with
        :func:`~refimpl.molecules.collate_dense` instead."""
        from torch_geometric.data import Batch

        z, pos, batch = self.flat()
        data = Batch(z=z, pos=pos, batch=batch, y=self.y.float(), idx=self.idx)
        data._num_graphs = len(self)
        from .dense import to_dense

        return to_dense(data, max_num_nodes=max_num_nodes)

    # -- splits
    @property
    def split_sizes(self) -> dict[str, int]:
        return {k: int(v.numel()) for k, v in self._splits.items()}

    def split(self, name: str) -> "QM9Dataset":
        """The ``"train"``, ``"val"`` or ``"test"`` part (EDM's split, see
        :func:`edm_split`); only defined on the full view returned by
        :func:`load_qm9`."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        if self.view != "all":
            raise ValueError(f"split() is defined on the full dataset, not on the "
                             f"{self.view!r} split")
        return QM9Dataset(self._s, self._indices[self._splits[name]], {},
                          self.skipped_molecules, self.description, view=name)

    def subset(self, positions: Sequence[int] | Tensor) -> "QM9Dataset":
        """A view on the given positions of this view."""
        pos_ = torch.as_tensor(positions, dtype=torch.long)
        return QM9Dataset(self._s, self._indices[pos_], {}, self.skipped_molecules,
                          self.description, view=f"{self.view}[subset]")

    def atom_reference(self, name: str) -> Tensor:
        r"""Least-squares per-element energies :math:`w_Z` with
        :math:`y \approx \sum_{i} w_{Z_i}` over this view (e.g. the training split),
        as a ``[10]`` float64 tensor indexed by atomic number (zero for absent
        elements); pass it as SchNet's ``atomref`` or subtract it from extensive
        targets such as ``U0``."""
        z, _, batch = self.flat()
        counts = torch.zeros(len(self), 10, dtype=torch.float64)
        counts.index_put_((batch, z), torch.ones_like(batch, dtype=torch.float64),
                          accumulate=True)
        used = counts.sum(0) > 0
        sol = torch.linalg.lstsq(counts[:, used], self.targets(name)[:, None]).solution
        ref = torch.zeros(10, dtype=torch.float64)
        ref[used] = sol[:, 0]
        return ref

    def reference_smiles(self, progress: bool | None = None) -> list[str | None]:
        """EDM-pipeline SMILES of every molecule of this view (largest fragment of
        the molecule built from the distance-based bonds; None when RDKit rejects
        it), as needed for novelty: ``evaluate_molecules(samples,
        train_smiles=ds.split("train").reference_smiles())``.

        Cached in ``refimpl.cache_dir("molecules")`` keyed by the dataset, the
        molecules of the view and the RDKit version (the full training split takes
        a minute or two the first time)."""
        import hashlib

        from rdkit import rdBase

        from .chemistry import molecule_smiles

        key = hashlib.sha1()
        key.update(f"{self.description}|{rdBase.rdkitVersion}|".encode())
        key.update(self.idx.numpy().tobytes())
        key.update(self.num_atoms.numpy().tobytes())
        from refimpl._io import load_checked, save_checked

        path = refimpl.cache_dir("molecules") / f"smiles-{key.hexdigest()[:16]}-v2.pt"
        cached = load_checked(path, what="SMILES cache file",
                              meta={"molecules": len(self)})
        if cached is not None:
            return [s or None for s in cached["smiles"].split("\n")]
        from refimpl.progress import tqdm

        out: list[str | None] = []
        with tqdm(total=len(self), desc="RDKit SMILES", progress=progress) as bar:
            for start in range(0, len(self), 4096):
                view = self.subset(range(start, min(start + 4096, len(self))))
                out += molecule_smiles(view.dense(), progress=False)
                bar.update(len(view))
        save_checked({"smiles": "\n".join(s or "" for s in out)}, path,
                     molecules=len(self))
        return out

    def summary(self) -> str:
        text = (f"{self.description}: {len(self)} molecules ({self.view})"
                + (f", splits {self.split_sizes}" if self._splits else ""))
        if self.skipped:
            text += "; skipped " + ", ".join(
                f"{n} ({r})" for r, n in self.skipped.items())
        return text

    def __repr__(self) -> str:
        return f"QM9Dataset({len(self)}, view={self.view!r}, {self.description})"


# ---------------------------------------------------------------------------- loading
def qm9pack_files() -> tuple[list[Path], str]:
    """The CSV files shipped in the installed ``qm9pack`` wheel and its version.

    The package is located with :func:`importlib.util.find_spec` without importing it
    (its ``__init__`` imports ``pkg_resources``).

    Raises:
        ModuleNotFoundError: ``qm9pack`` is not installed.
    """
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "QM9 offline needs the PyPI package 'qm9pack' (pip install qm9pack==1.0.3)")
    root = Path(next(iter(spec.submodule_search_locations))) / "data"
    files = [root / f"qm9_part{i}.csv" for i in (1, 2, 3)]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"qm9pack is installed but lacks {missing}")
    return files, importlib.metadata.version("qm9pack")


def _parsed_to_storage(p: ParsedQM9) -> dict:
    return {
        "format": _CACHE_FORMAT, "num_rows": int(p.num_rows),
        "z": torch.from_numpy(p.z.copy()), "pos": torch.from_numpy(p.pos.copy()),
        "num_atoms": torch.from_numpy(p.num_atoms.astype(np.int64)),
        "y": torch.from_numpy(p.y.copy()),
        "gdb_idx": torch.from_numpy(p.gdb_idx), "row": torch.from_numpy(p.row),
        "smiles": "\n".join(p.smiles), "targets": list(TARGETS),
        "skipped": [list(s) for s in p.skipped],
    }


def _load_qm9pack_storage(progress: bool) -> tuple[dict, str]:
    files, version = qm9pack_files()
    from refimpl._io import load_checked, save_checked

    path = refimpl.cache_dir("molecules") / f"qm9pack-{version}-v{_CACHE_FORMAT}.pt"
    key = {"format": _CACHE_FORMAT, "targets": list(TARGETS), "qm9pack": version}
    raw = load_checked(path, what="QM9 parse cache file", meta=key)
    if raw is not None:
        return raw, f"QM9 (qm9pack {version})"
    parsed = parse_qm9_csv(files, strict=False, progress=progress)
    raw = _parsed_to_storage(parsed)
    # Checked (shapes, dtypes, checksum) and written atomically: concurrent readers
    # never see half a file, and a damaged one is parsed again with a warning.
    save_checked(raw, path, **key)
    return raw, f"QM9 (qm9pack {version})"


def _load_pyg_storage(root: str | os.PathLike | None,
                      progress: bool) -> tuple[dict, str]:
    root = Path(root) if root is not None else refimpl.cache_dir("molecules", "pyg_qm9")
    try:
        from torch_geometric.datasets import QM9 as PyGQM9

        ds = PyGQM9(str(root))
    except Exception as err:  # download or processing failure: explain what to do
        raise RuntimeError(
            f"source='pyg' could not build torch_geometric.datasets.QM9 in {root} "
            f"({type(err).__name__}: {err}); it downloads the data on first use and "
            f"needs internet access. Offline, use source='qm9pack'.") from err
    data = ds._data
    ptr = ds.slices["z"]
    num_atoms = (ptr[1:] - ptr[:-1]).numpy()
    pyg_cols = list(range(12)) + [16, 17, 18]
    gdb = np.array([int(str(n).split("_")[-1]) for n in data.name], dtype=np.int64)
    order = np.argsort(gdb, kind="stable")
    keep_atoms = np.concatenate(
        [np.arange(int(ptr[m]), int(ptr[m + 1])) for m in order]) if len(order) else []
    parsed = ParsedQM9(
        z=data.z.numpy()[keep_atoms].astype(np.uint8),
        pos=data.pos.numpy()[keep_atoms].astype(np.float32),
        num_atoms=num_atoms[order].astype(np.int64),
        y=data.y.numpy()[order][:, pyg_cols].astype(np.float64),
        gdb_idx=gdb[order], row=np.arange(len(order)), num_rows=len(order),
        smiles=[data.smiles[m] for m in order])
    return _parsed_to_storage(parsed), "QM9 (torch_geometric)"


def load_qm9(
    remove_h: bool = False,
    limit: int | None = None,
    seed: int = 0,
    source: str = "qm9pack",
    strict: bool = False,
    root: str | os.PathLike | None = None,
    progress: bool | None = None,
) -> QM9Dataset:
    r"""Load QM9 (offline by default) with EDM's train/val/test split.

    The first call parses the CSV files shipped in the ``qm9pack`` wheel and caches
    the result in ``refimpl.cache_dir("molecules")`` (keyed by the ``qm9pack``
    version and the cache format); later calls load that file.

    Split: the rows (ordered by GDB index) are permuted with
    ``np.random.RandomState(seed).permutation`` and cut into 100,000 / 17,748 /
    13,083 (train / val / test), which with ``seed=0`` is EDM's split
    (:func:`edm_split`). With ``limit``, each split keeps its first
    ``round(limit · share)`` molecules in permutation order (test and val rounded,
    train the rest), so a limited set is a uniform random subset whose training part
    lies inside the full training split.

    Args:
        remove_h (bool): drop hydrogen atoms (EDM's heavy-atom QM9). Molecules left
            with fewer than 2 atoms (CH₄, NH₃, H₂O) are excluded and reported in
            ``skipped``. (default: :obj:`False`)
        limit (int, optional): number of molecules (at most the dataset size).
        seed (int): seed of the split permutation and of the ``limit`` subset.
        source (str): ``"qm9pack"`` (offline) or ``"pyg"``
            (:class:`torch_geometric.datasets.QM9`, downloads into ``root``).
        strict (bool): raise a :class:`ValueError` if any row of the files is bad
            instead of skipping and reporting it.
        root (path, optional): data folder for ``source="pyg"``.
        progress (bool): show a progress bar while parsing.

    Returns:
        :class:`QM9Dataset` with ``split("train" | "val" | "test")``, ``skipped``
        (counts per reason) and ``skipped_molecules``.
    """
    if source not in ("qm9pack", "pyg"):
        raise ValueError(f"source must be 'qm9pack' or 'pyg', got {source!r}")
    if limit is not None and (not isinstance(limit, (int, np.integer))
                              or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if source == "qm9pack":
        raw, description = _load_qm9pack_storage(progress)
    else:
        raw, description = _load_pyg_storage(root, progress)
    skipped = [tuple(s) for s in raw["skipped"]]
    if strict and skipped:
        name, why, text = skipped[0]
        raise ValueError(f"bad QM9 row: molecule {name}: {why}: {text} "
                         f"({len(skipped)} bad rows in total)")
    return _build(raw, description, remove_h, limit, int(seed), skipped)


def _build(raw: dict, description: str, remove_h: bool, limit: int | None, seed: int,
           skipped: list) -> QM9Dataset:
    z, pos, num_atoms = raw["z"], raw["pos"], raw["num_atoms"]
    smiles = raw["smiles"].split("\n") if raw["smiles"] else []
    num_mols = num_atoms.numel()
    mol_of_atom = torch.repeat_interleave(torch.arange(num_mols), num_atoms)
    if remove_h:
        heavy = z > 1
        z, pos, mol_of_atom = z[heavy], pos[heavy], mol_of_atom[heavy]
        num_atoms = torch.bincount(mol_of_atom, minlength=num_mols)
        few = (num_atoms < 2).nonzero().flatten()
        skipped = skipped + [
            (f"dsgdb9nsd_{int(raw['gdb_idx'][m]):06d} (Index {int(raw['gdb_idx'][m])})",
             "fewer than 2 atoms after removing hydrogens",
             f"{int(num_atoms[m])} heavy atom(s), SMILES {smiles[m]}") for m in few]
    keep_mol = num_atoms >= 2
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), num_atoms.cumsum(0)])
    storage = {"z": z, "pos": pos, "ptr": ptr, "y": raw["y"],
               "gdb_idx": raw["gdb_idx"], "smiles": smiles}

    # Split over all rows read (so that skipped rows do not shift anyone's split).
    row_to_mol = torch.full((raw["num_rows"],), -1, dtype=torch.long)
    row_to_mol[raw["row"]] = torch.arange(num_mols)
    kept_total = int(keep_mol.sum())
    if limit is not None and limit > kept_total:
        raise ValueError(f"limit={limit} exceeds the {kept_total} available molecules")
    parts = {}
    for name, rows in zip(SPLITS, edm_split(raw["num_rows"], seed)):
        mols = row_to_mol[torch.from_numpy(rows)]
        mols = mols[mols >= 0]
        parts[name] = mols[keep_mol[mols]]
    if limit is not None:
        n_test = round(limit * EDM_SPLIT_SIZES[2] / _EDM_NUM_MOLECULES)
        n_val = round(limit * EDM_SPLIT_SIZES[1] / _EDM_NUM_MOLECULES)
        want = {"train": limit - n_val - n_test, "val": n_val, "test": n_test}
        parts = {k: v[:want[k]] for k, v in parts.items()}
    chosen = torch.cat(list(parts.values())).sort().values
    pos_in_view = torch.full((num_mols,), -1, dtype=torch.long)
    pos_in_view[chosen] = torch.arange(chosen.numel())
    splits = {k: pos_in_view[v].sort().values for k, v in parts.items()}
    ds = QM9Dataset(storage, chosen, splits, skipped,
                    description + (" heavy atoms only" if remove_h else ""))
    if skipped:
        defects = {r: n for r, n in ds.skipped.items() if "removing hydrogens" not in r}
        (logger.warning if defects else logger.info)(ds.summary())
    return ds
