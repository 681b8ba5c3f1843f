"""Plotting helpers shared by the chapters: one style, and grids of 2-D fields.

Topic-specific views live with their topic (e.g. :mod:`refimpl.molecules.view`).
"""

from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["use_book_style", "field_grid", "to_numpy", "PAGE_WIDTH_IN"]

#: The widest figure, in inches, that the book's text column (688 px on a
#: 1280 px wide screen) shows without scaling it down at the book style's 90 dpi
#: (675 px, plus what a tight bounding box adds); wider figures are shrunk and
#: their 8 pt labels drop below 9 px.
PAGE_WIDTH_IN: float = 7.5


def use_book_style() -> None:
    """A compact, readable matplotlib style used by every chapter (dpi 90 keeps
    the executed notebooks small)."""
    plt.rcParams.update({
        "figure.dpi": 90, "savefig.dpi": 90, "figure.autolayout": False,
        "axes.spines.top": False, "axes.spines.right": False,
        "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8,
        "ytick.labelsize": 8, "legend.fontsize": 8, "image.cmap": "RdBu_r",
    })


def to_numpy(x) -> np.ndarray:
    """A detached CPU NumPy copy of a tensor (or array-like)."""
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x)


def field_grid(fields: Sequence, titles: Optional[Sequence[str]] = None, *,
               ncols: Optional[int] = None, symmetric: bool = True,
               shared: bool = False, cmap: Optional[str] = None,
               size: float = 2.2, suptitle: Optional[str] = None):
    """Show 2-D fields side by side, each with its colour bar.

    Args:
        fields: a sequence of ``(H, W)`` tensors or arrays.
        titles: one title per field.
        ncols: columns of the grid (default: all in one row).
        symmetric: colour limits symmetric about zero (for signed fields).
        shared: one colour range for all fields.
        cmap: colour map (default: ``RdBu_r`` if symmetric else ``viridis``).
        size: inches per panel.

    Returns:
        The matplotlib ``Figure``.
    """
    arrays = [to_numpy(f) for f in fields]
    if not arrays:
        raise ValueError("field_grid needs at least one field")
    for i, a in enumerate(arrays):
        if a.ndim != 2:
            raise ValueError(f"field {i} has shape {a.shape}; expected a 2-D (H, W) field")
    if titles is not None and len(titles) != len(arrays):
        raise ValueError(f"{len(titles)} titles for {len(arrays)} fields")
    ncols = ncols or len(arrays)
    nrows = -(-len(arrays) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows),
                             squeeze=False, constrained_layout=True)
    cmap = cmap or ("RdBu_r" if symmetric else "viridis")
    vmax_all = max(float(np.nanmax(np.abs(a))) for a in arrays)
    for k, ax in enumerate(axes.flat):
        if k >= len(arrays):
            ax.axis("off")
            continue
        a = arrays[k]
        vmax = vmax_all if shared else float(np.nanmax(np.abs(a)))
        if symmetric:
            lim = dict(vmin=-vmax, vmax=vmax)
        elif shared:
            lim = dict(vmin=min(float(np.nanmin(b)) for b in arrays), vmax=vmax_all)
        else:
            lim = {}
        im = ax.imshow(a.T, origin="lower", cmap=cmap, **lim)
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[k])
        fig.colorbar(im, ax=ax, shrink=0.8)
    if suptitle:
        fig.suptitle(suptitle)
    return fig
