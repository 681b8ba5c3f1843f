r"""Darcy flow on the unit square (the FNO benchmark family), solved with a sparse
5-point finite-difference scheme.

.. math::
    -\nabla\cdot\big(a(x)\nabla u(x)\big) = f(x) \ \text{in } (0,1)^2,\qquad
    u = 0 \text{ on the boundary},\qquad f\equiv 1,

with the two-phase coefficient :math:`a = 12` where :math:`g\ge 0` and
:math:`a = 3` where :math:`g<0`, :math:`g` a zero-Neumann Gaussian random field
:math:`\mathcal N(0, (-\Delta+9I)^{-2})` (Li et al., ICLR 2021).

**Discretisation.** The grid has :math:`s\times s` nodes :math:`x_k = k/(s-1)`,
walls included (:math:`h = 1/(s-1)`); the unknowns are the :math:`(s-2)^2`
interior nodes. With face coefficients the *harmonic* mean of the two adjacent
nodal values, :math:`a_{i+\frac12,j} = 2a_{ij}a_{i+1,j}/(a_{ij}+a_{i+1,j})` (the
right average for a flux across a jump in :math:`a`), row :math:`(i,j)` reads

.. math::
    \frac{1}{h^2}\Big[\big(a_{i+\frac12,j}+a_{i-\frac12,j}+a_{i,j+\frac12}
    +a_{i,j-\frac12}\big)u_{ij} - a_{i+\frac12,j}u_{i+1,j} - a_{i-\frac12,j}u_{i-1,j}
    - a_{i,j+\frac12}u_{i,j+1} - a_{i,j-\frac12}u_{i,j-1}\Big] = f_{ij}.

The matrix is symmetric positive definite; it is assembled without loops as a
``scipy.sparse`` CSR matrix and solved with ``scipy.sparse.linalg.spsolve``
(second-order accurate for smooth :math:`a`).

**Two resolutions, one coefficient.** The GRF is a band-limited cosine series
whose random coefficients do not depend on the grid
(:func:`refimpl.pde.grf.bounded_coefficients`), so for a given ``seed`` the
coefficient is the same continuous field at every resolution. With
``oversample=m`` the solve runs on the :math:`((s-1)m+1)^2` grid and is
sub-sampled with stride :math:`m` (as the FNO data, solved at 421² and
sub-sampled); two resolutions that share a fine grid then agree exactly on their
common nodes, e.g. ``sample(n, 33, oversample=4)`` and ``sample(n, 65,
oversample=2)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from refimpl.progress import tqdm

from . import _checks, grf

__all__ = ["coefficient", "assemble", "solve", "sample"]


def coefficient(n: int, resolution: int = 64, *, seed: int = 0, modes: int = 32,
                alpha: float = 2.0, tau: float = 3.0, a_plus: float = 12.0,
                a_minus: float = 3.0, device=None,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""Two-phase coefficients :math:`a = a_+\,[g\ge0] + a_-\,[g<0]`, ``(n, s, s)``.

    ``g`` is :func:`refimpl.pde.grf.cosine` with ``modes`` cosine modes per
    direction (the draw depends on ``seed``, ``modes``, ``alpha`` and ``tau``, not
    on ``resolution``).
    """
    resolution = _checks.positive_int("resolution", resolution, minimum=3)
    a_plus = _checks.positive("a_plus", a_plus)
    a_minus = _checks.positive("a_minus", a_minus)
    c = grf.bounded_coefficients(n, modes, kind="cosine", dim=2, alpha=alpha, tau=tau,
                                 sigma=1.0, seed=seed)
    g = grf.evaluate(c, resolution, kind="cosine", dtype=torch.float64)
    a = torch.where(g >= 0, a_plus, a_minus)
    return a.to(device=_checks.resolve_device(device), dtype=_checks.float_dtype(dtype))


def _check_field(a: Any) -> None:
    _checks.finite_tensor("a", a)
    if a.dim() not in (2, 3) or a.shape[-1] != a.shape[-2]:
        raise ValueError("a must be a square field of shape (s, s) or (n, s, s), got "
                         f"{tuple(a.shape)}")
    if a.shape[-1] < 3:
        raise ValueError(f"a needs at least 3x3 nodes (one interior node), got "
                         f"{tuple(a.shape[-2:])}")
    if a.numel() and float(a.min()) <= 0:
        raise ValueError("a must be positive everywhere (an elliptic coefficient), "
                         f"got min(a) = {float(a.min()):g}")


def _harmonic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 2.0 * x * y / (x + y)


def assemble(a: np.ndarray | torch.Tensor, f: float | np.ndarray | torch.Tensor = 1.0
             ) -> tuple[sp.csr_matrix, np.ndarray]:
    r"""The 5-point system :math:`A\,u_{\text{int}} = b` for one coefficient field.

    Args:
        a: nodal coefficient, shape ``(s, s)`` with walls, positive.
        f: right-hand side, a number or nodal values ``(s, s)``.

    Returns:
        ``(A, b)``: CSR matrix of shape ``((s-2)^2, (s-2)^2)`` and vector
        ``(s-2)^2``, interior nodes in row-major order, float64.
    """
    a_t = torch.as_tensor(a, dtype=torch.float64)
    _check_field(a_t)
    if a_t.dim() != 2:
        raise ValueError("assemble takes one field of shape (s, s), got "
                         f"{tuple(a_t.shape)}")
    a = a_t.cpu().numpy()
    s = a.shape[0]
    m = s - 2
    h2 = (1.0 / (s - 1)) ** 2
    c = a[1:-1, 1:-1]
    east = _harmonic(c, a[1:-1, 2:])    # face (i, j+1/2)
    west = _harmonic(c, a[1:-1, :-2])   # face (i, j-1/2)
    south = _harmonic(c, a[2:, 1:-1])   # face (i+1/2, j)
    north = _harmonic(c, a[:-2, 1:-1])  # face (i-1/2, j)
    idx = np.arange(m * m).reshape(m, m)
    rows = [idx.ravel()]
    cols = [idx.ravel()]
    vals = [(east + west + south + north).ravel()]
    # couplings to interior neighbours only: wall values are zero
    for coef, sl_self, sl_nb in (
            (east, np.s_[:, :-1], np.s_[:, 1:]), (west, np.s_[:, 1:], np.s_[:, :-1]),
            (south, np.s_[:-1, :], np.s_[1:, :]), (north, np.s_[1:, :], np.s_[:-1, :])):
        rows.append(idx[sl_self].ravel())
        cols.append(idx[sl_nb].ravel())
        vals.append(-coef[sl_self].ravel())
    A = sp.csr_matrix((np.concatenate(vals) / h2,
                       (np.concatenate(rows), np.concatenate(cols))),
                      shape=(m * m, m * m))
    if isinstance(f, (torch.Tensor, np.ndarray)):
        f_t = _checks.finite_tensor("f", torch.as_tensor(f, dtype=torch.float64))
        if tuple(f_t.shape) != (s, s):
            raise ValueError(f"f must be a number or a field of shape {(s, s)}, got "
                             f"{tuple(f_t.shape)}")
        b = f_t.cpu().numpy()[1:-1, 1:-1].ravel().copy()
    else:
        b = np.full(m * m, _checks.real("f", f))
    return A, b


def solve(a: torch.Tensor, f: float | torch.Tensor = 1.0, *,
          progress: bool | None = None) -> torch.Tensor:
    r"""Solve :math:`-\nabla\cdot(a\nabla u) = f`, :math:`u|_{\partial} = 0`.

    Args:
        a (Tensor): positive nodal coefficient, ``(s, s)`` or ``(n, s, s)``, walls
            included (any resolution :math:`s\ge3`).
        f: right-hand side, a number (default 1) or nodal values ``(s, s)`` shared
            by all samples.
        progress (bool): show a progress bar over samples.

    Returns:
        ``u`` of the shape, dtype and device of ``a``, zero on the walls. The
        solve runs in float64 on the CPU (SuperLU), one sample at a time.
    """
    _check_field(a)
    batch = a.reshape(-1, *a.shape[-2:])
    s = a.shape[-1]
    out = np.zeros((batch.shape[0], s, s))
    a_np = batch.detach().to(torch.float64).cpu().numpy()
    f_arg = f.detach().cpu() if isinstance(f, torch.Tensor) else f
    for k in tqdm(range(batch.shape[0]), desc="Darcy solves", progress=progress,
                  leave=False):
        A, b = assemble(a_np[k], f_arg)
        out[k, 1:-1, 1:-1] = spla.spsolve(A.tocsc(), b).reshape(s - 2, s - 2)
    return torch.from_numpy(out).to(device=a.device, dtype=a.dtype).reshape(a.shape)


def sample(n: int, resolution: int = 64, *, seed: int = 0, oversample: int = 1,
           modes: int = 32, alpha: float = 2.0, tau: float = 3.0,
           a_plus: float = 12.0, a_minus: float = 3.0, progress: bool | None = None,
           device=None, dtype: torch.dtype = torch.float32
           ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Draw ``n`` Darcy pairs ``(a, u)`` on an ``resolution`` × ``resolution`` grid.

    Args:
        n (int): number of samples.
        resolution (int): nodes per side, walls included (:math:`s\ge3`).
        seed (int): seed of the GRF (the same seed gives the same coefficient field
            at every resolution).
        oversample (int): solve on the grid with :math:`(s-1)\cdot` ``oversample``
            :math:`+1` nodes per side and sub-sample (default 1: solve on the grid).
        modes, alpha, tau: the cosine GRF (default: FNO's :math:`(-\Delta+9)^{-2}`,
            32 modes per direction).
        a_plus, a_minus: the two phases (default 12 and 3).
        progress (bool): show a progress bar.
        device, dtype: of the returned tensors.

    Returns:
        ``(a, u)``, each of shape ``(n, resolution, resolution)``.
    """
    resolution = _checks.positive_int("resolution", resolution, minimum=3)
    oversample = _checks.positive_int("oversample", oversample)
    fine = (resolution - 1) * oversample + 1
    a = coefficient(n, fine, seed=seed, modes=modes, alpha=alpha, tau=tau,
                    a_plus=a_plus, a_minus=a_minus, dtype=torch.float64)
    u = solve(a, progress=progress)
    step = slice(None, None, oversample)
    out = (a[:, step, step], u[:, step, step])
    device = _checks.resolve_device(device)
    dtype = _checks.float_dtype(dtype)
    return tuple(x.contiguous().to(device=device, dtype=dtype) for x in out)
