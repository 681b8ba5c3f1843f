r"""Views of molecules: a static matplotlib 3-D view, an interactive py3Dmol view
(with the static one as fallback) and an RDKit 2-D drawing with highlights.

The 3-D view shows atoms coloured by element (Jmol/CPK colours), bonds from EDM's
distance rule (:func:`~refimpl.molecules.bond_order_matrix`) and, for explanations,
an arbitrary edge set with per-edge colours or a highlighted subset, and per-atom
translucent spheres with given radii (e.g. RISE's radii of influence).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["ELEMENT_COLORS", "COVALENT_RADII", "draw_molecule", "view3d", "draw_2d"]

#: Jmol (CPK) colours of the QM9 elements.
ELEMENT_COLORS: dict[int, str] = {1: "#FFFFFF", 6: "#909090", 7: "#3050F8",
                                  8: "#FF0D0D", 9: "#90E050"}
#: Covalent radii in Å (Cordero et al., 2008), used for marker sizes.
COVALENT_RADII: dict[int, float] = {1: 0.31, 6: 0.76, 7: 0.71, 8: 0.66, 9: 0.57}
_SYMBOL = {1: "H", 6: "C", 7: "N", 8: "O", 9: "F"}


def _as_arrays(z, pos) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(z.detach().cpu() if isinstance(z, Tensor) else z).reshape(-1)
    pos = np.asarray(pos.detach().cpu() if isinstance(pos, Tensor) else pos,
                     dtype=float)
    if pos.shape != (z.size, 3):
        raise ValueError(f"pos must have shape [{z.size}, 3], got {pos.shape}")
    if not np.isfinite(pos).all():
        raise ValueError("pos contains NaN or infinite coordinates")
    if z.size == 0:
        raise ValueError("the molecule has no atoms")
    return z.astype(int), pos


def _edge_array(edges, n: int) -> np.ndarray:
    e = np.asarray(edges.detach().cpu() if isinstance(edges, Tensor) else edges)
    if e.ndim != 2 or e.shape[0] != 2:
        raise ValueError(f"edges must have shape [2, E], got {e.shape}")
    if e.size and (e.min() < 0 or e.max() >= n):
        raise ValueError(f"edges refer to atoms outside 0..{n - 1}")
    return e.astype(int)


def draw_molecule(
    z: Tensor | Sequence[int],
    pos: Tensor | np.ndarray,
    *,
    ax=None,
    bonds: bool | Tensor | np.ndarray = True,
    edges: Tensor | np.ndarray | None = None,
    edge_colors: Sequence[Any] | None = None,
    highlight_edges: Tensor | np.ndarray | Sequence[bool] | None = None,
    highlight_color: str = "tab:orange",
    faint_alpha: float = 0.12,
    radii: Tensor | np.ndarray | Sequence[float] | None = None,
    sphere_alpha: float = 0.12,
    sphere_colors: Sequence[Any] | None = None,
    atom_scale: float = 300.0,
    labels: bool = False,
    title: str | None = None,
):
    """Static 3-D view of one molecule with matplotlib (``mpl_toolkits.mplot3d``).

    Args:
        z: atomic numbers ``[N]``.
        pos: positions ``[N, 3]`` (Å).
        ax: a 3-D axes (``projection="3d"``); a new figure when None.
        bonds: True draws EDM's distance-based bonds (line width ∝ order), False
            none, or an ``[N, N]`` bond-order matrix.
        edges: an optional directed edge set ``[2, E]`` (e.g. a radius graph) drawn
            as thin lines on top of the bonds.
        edge_colors: one matplotlib colour per edge of ``edges``.
        highlight_edges: bool ``[E]`` (or indices): these edges are drawn solid in
            ``highlight_color`` (unless ``edge_colors`` is given), the others faint.
        radii: per-atom sphere radii ``[N]`` (Å) drawn as translucent spheres
            (atoms with radius ≤ 0 get none).
        sphere_colors: colour per sphere (default: the atom's element colour).
        atom_scale: marker area for a covalent radius of 1 Å.
        labels: write element symbols and atom indices.
        title: axes title.

    Returns:
        the matplotlib 3-D axes.
    """
    import matplotlib.pyplot as plt

    z, pos = _as_arrays(z, pos)
    n = z.size
    if ax is None:
        fig = plt.figure(figsize=(5, 5))
        ax = fig.add_subplot(projection="3d")
    if bonds is True:
        from .chemistry import bond_order_matrix

        order = bond_order_matrix(torch.as_tensor(z), torch.as_tensor(pos)).numpy()
    elif bonds is False or bonds is None:
        order = np.zeros((n, n), dtype=int)
    else:
        order = np.asarray(bonds.detach().cpu() if isinstance(bonds, Tensor) else bonds)
        if order.shape != (n, n):
            raise ValueError(f"bonds must be True/False or an [{n}, {n}] matrix")
    for i, j in zip(*np.triu_indices(n, 1)):
        if order[i, j] > 0:
            seg = pos[[i, j]]
            ax.plot(seg[:, 0], seg[:, 1], seg[:, 2], color="0.35",
                    linewidth=1.5 * float(order[i, j]), zorder=1)

    if edges is not None:
        e = _edge_array(edges, n)
        num_e = e.shape[1]
        if edge_colors is not None and len(edge_colors) != num_e:
            raise ValueError(
                f"edge_colors has {len(edge_colors)} entries for {num_e} edges")
        hl = np.ones(num_e, dtype=bool)
        if highlight_edges is not None:
            h = np.asarray(highlight_edges.detach().cpu()
                           if isinstance(highlight_edges, Tensor) else highlight_edges)
            if h.dtype == bool:
                if h.shape != (num_e,):
                    raise ValueError(f"highlight_edges must be bool [{num_e}]")
                hl = h
            else:
                hl = np.zeros(num_e, dtype=bool)
                hl[h.astype(int)] = True
        for k in range(num_e):
            seg = pos[e[:, k]]
            if edge_colors is not None:
                color = edge_colors[k]
            else:
                color = highlight_color if highlight_edges is not None else "tab:blue"
            ax.plot(seg[:, 0], seg[:, 1], seg[:, 2], color=color,
                    alpha=1.0 if hl[k] else faint_alpha,
                    linewidth=2.0 if (hl[k] and highlight_edges is not None) else 0.8,
                    zorder=2)

    colors = [ELEMENT_COLORS.get(int(a), "#FF1493") for a in z]
    sizes = [atom_scale * COVALENT_RADII.get(int(a), 0.7) for a in z]
    ax.scatter(pos[:, 0], pos[:, 1], pos[:, 2], c=colors, s=sizes, edgecolors="k",
               linewidths=0.6, depthshade=False, zorder=3)
    if labels:
        for k, (a, p) in enumerate(zip(z, pos)):
            ax.text(*p, f"{_SYMBOL.get(int(a), a)}{k}", fontsize=7)

    extent = [pos.min(0), pos.max(0)]
    if radii is not None:
        r = np.asarray(radii.detach().cpu() if isinstance(radii, Tensor) else radii,
                       dtype=float).reshape(-1)
        if r.shape != (n,):
            raise ValueError(f"radii must have one entry per atom ({n}), got {r.shape}")
        if sphere_colors is not None and len(sphere_colors) != n:
            raise ValueError(f"sphere_colors needs {n} entries")
        u, v = np.meshgrid(np.linspace(0, 2 * np.pi, 18), np.linspace(0, np.pi, 10))
        unit = np.stack([np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v)], -1)
        for k in range(n):
            if r[k] <= 0:
                continue
            s = pos[k] + r[k] * unit
            ax.plot_surface(s[..., 0], s[..., 1], s[..., 2], linewidth=0,
                            color=(sphere_colors[k] if sphere_colors is not None
                                   else colors[k] if colors[k] != "#FFFFFF" else "0.8"),
                            alpha=sphere_alpha, shade=False)
        extent = [np.minimum(extent[0], (pos - r[:, None]).min(0)),
                  np.maximum(extent[1], (pos + r[:, None]).max(0))]
    centre = (extent[0] + extent[1]) / 2
    half = max(float((extent[1] - extent[0]).max()) / 2, 1.0)
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_zlim(centre[2] - half, centre[2] + half)
    ax.set_box_aspect((1, 1, 1))
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def view3d(z, pos, *, radii=None, width: int = 400, height: int = 320,
           style: str = "stick", sphere_opacity: float = 0.25, **static_kwargs):
    """Interactive 3-D view with py3Dmol when it is importable, else the static
    :func:`draw_molecule` view (same arguments; ``static_kwargs`` go to it).

    Returns:
        a ``py3Dmol.view`` (call ``.show()`` in a notebook) or a matplotlib axes.
    """
    z_np, pos_np = _as_arrays(z, pos)
    try:
        import py3Dmol
    except ImportError:
        return draw_molecule(z_np, pos_np, radii=radii, **static_kwargs)
    from rdkit import Chem

    mol = _mol_for_drawing(z_np, pos_np)
    view = py3Dmol.view(width=width, height=height)
    view.addModel(Chem.MolToMolBlock(mol), "mol")
    view.setStyle({style: {}} if style != "ballstick" else
                  {"stick": {"radius": 0.15}, "sphere": {"scale": 0.25}})
    if radii is not None:
        r = np.asarray(radii.detach().cpu() if isinstance(radii, Tensor) else radii,
                       dtype=float).reshape(-1)
        if r.shape != (z_np.size,):
            raise ValueError(f"radii must have one entry per atom ({z_np.size})")
        for k in range(z_np.size):
            if r[k] > 0:
                x, y, w = pos_np[k].tolist()
                view.addSphere({"center": {"x": x, "y": y, "z": w},
                                "radius": float(r[k]),
                                "color": ELEMENT_COLORS.get(int(z_np[k]), "#FF1493"),
                                "opacity": sphere_opacity})
    view.zoomTo()
    return view


def _mol_for_drawing(z: np.ndarray, pos: np.ndarray):
    from rdkit import Chem, rdBase

    from .chemistry import to_rdkit_mol

    mol = to_rdkit_mol(torch.as_tensor(z), torch.as_tensor(pos))
    with rdBase.BlockLogs():
        try:
            Chem.SanitizeMol(mol)
        except Exception:  # still drawable: keep the unsanitised graph
            mol.UpdatePropertyCache(strict=False)
    return mol


def draw_2d(
    mol_or_z,
    pos=None,
    *,
    highlight_atoms: Sequence[int] | None = None,
    highlight_bonds: Sequence[int] | Sequence[tuple[int, int]] | None = None,
    atom_colors: dict[int, tuple[float, float, float]] | None = None,
    bond_colors: dict[int, tuple[float, float, float]] | None = None,
    size: tuple[int, int] = (320, 260),
    fmt: str = "svg",
    atom_indices: bool = False,
):
    """RDKit 2-D drawing with highlighted atoms and bonds.

    Args:
        mol_or_z: an RDKit molecule, or atomic numbers ``[N]`` (then ``pos`` is
            required and the bonds come from EDM's distance rule).
        pos: positions ``[N, 3]`` when ``mol_or_z`` holds atomic numbers.
        highlight_atoms: atom indices to highlight.
        highlight_bonds: bond indices, or atom pairs ``(i, j)`` (pairs that are not
            bonded raise).
        atom_colors / bond_colors: optional RGB colour per highlighted atom / bond
            index.
        size: image size in pixels.
        fmt: ``"svg"`` (returns the SVG text) or ``"png"`` (returns PNG bytes).
        atom_indices: annotate atom indices.
    """
    from rdkit import Chem
    from rdkit.Chem import rdDepictor
    from rdkit.Chem.Draw import rdMolDraw2D

    if fmt not in ("svg", "png"):
        raise ValueError(f"fmt must be 'svg' or 'png', got {fmt!r}")
    if isinstance(mol_or_z, Chem.Mol):
        mol = Chem.Mol(mol_or_z)
    else:
        if pos is None:
            raise ValueError("draw_2d needs pos when given atomic numbers")
        z, p = _as_arrays(mol_or_z, pos)
        mol = _mol_for_drawing(z, p)
    mol.RemoveAllConformers()
    rdDepictor.Compute2DCoords(mol)
    n = mol.GetNumAtoms()
    atoms = [int(a) for a in (highlight_atoms or [])]
    if any(a < 0 or a >= n for a in atoms):
        raise ValueError(f"highlight_atoms must be in 0..{n - 1}")
    bonds = []
    for b in (highlight_bonds or []):
        if isinstance(b, (tuple, list)) or (isinstance(b, np.ndarray) and b.size == 2):
            bond = mol.GetBondBetweenAtoms(int(b[0]), int(b[1]))
            if bond is None:
                raise ValueError(f"atoms {int(b[0])} and {int(b[1])} are not bonded")
            bonds.append(bond.GetIdx())
        else:
            if not 0 <= int(b) < mol.GetNumBonds():
                raise ValueError(f"bond index {int(b)} out of range")
            bonds.append(int(b))
    drawer = (rdMolDraw2D.MolDraw2DSVG(*size) if fmt == "svg"
              else rdMolDraw2D.MolDraw2DCairo(*size))
    drawer.drawOptions().addAtomIndices = atom_indices
    drawer.drawOptions().prepareMolsBeforeDrawing = False
    drawer.DrawMolecule(mol, highlightAtoms=atoms, highlightBonds=bonds,
                        highlightAtomColors=atom_colors or {},
                        highlightBondColors=bond_colors or {})
    drawer.FinishDrawing()
    return drawer.GetDrawingText()
