r"""The 2-D wave equation on the unit square with Dirichlet walls: exact data and
the analytic Green's function.

.. math::
    u_{tt} = c^2\,\Delta u \ \text{on } [0,1]^2,\qquad u = 0 \text{ on the walls},
    \qquad u_t(\cdot, 0) = 0.

With :math:`\omega_{ij} = \sqrt{i^2+j^2}` and :math:`a_{ij}\sim\mathcal U(-1,1)`
the benchmark family of the CNO paper (Raonić et al., NeurIPS 2023) is

.. math::
    u(x, y, t) = \frac{\pi}{K^2}\sum_{i,j=1}^{K} a_{ij}\,\omega_{ij}^{-2r}\,
    \sin(i\pi x)\sin(j\pi y)\,\cos(c\pi t\,\omega_{ij}),

exact because every mode is a Dirichlet eigenfunction of :math:`-\Delta` with
eigenvalue :math:`\pi^2\omega_{ij}^2`. The operator :math:`\mathcal G_t: u_0\mapsto
u(\cdot, t)` is linear, with the mode-truncated Dirichlet propagator as kernel,

.. math::
    G_t(x, \xi) = 4\sum_{i,j=1}^{K}\cos\!\big(c\pi t\,\omega_{ij}\big)
    \sin(i\pi x_1)\sin(j\pi x_2)\sin(i\pi\xi_1)\sin(j\pi\xi_2),
    \qquad u(x, t) = \int_{[0,1]^2} G_t(x,\xi)\,u_0(\xi)\,d\xi.

Its magnitude :math:`|G_t(x_0, \cdot)|` is the analytic spatial dependency of the
output at :math:`x_0` (:func:`dependency_map`): a ring of radius :math:`ct` with a
wake inside (no sharp Huygens principle in 2-D), "+"-shaped ringing from the
truncation at :math:`K` modes, and sign-flipped reflections off the walls.

**Quadrature convention.** :func:`dependency_map` returns the continuous kernel
:math:`G_t`, a density per unit area. On the grid :math:`x_k = k/(n-1)` the
discrete Jacobian of the exact map is :math:`\partial u(x_0,t)/\partial u_0(\xi)
= h^2\,G_t(x_0, \xi)` with :math:`h = 1/(n-1)` (exact for inputs in the span of
the :math:`K\times K` modes when :math:`K\le n-2`): multiply by ``h**2`` before
comparing with an autograd Jacobian, or compare normalised maps.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from . import _checks
from .sine import (SineOracle, coefficients, evaluate_series, field_std, kernel,
                   mode_norms)

__all__ = ["sample", "evaluate", "propagator", "dependency_map", "input_std",
           "target_std", "oracle", "SineOracle", "PROBES", "MIRROR_PROBES"]

#: The authors' probes on the 64-grid, (row, column) = 64 k / 4 - 1 (spec §4.5).
PROBES: dict[str, tuple[int, int]] = {
    "mid": (31, 31), "lu": (15, 15), "ru": (15, 47), "ld": (47, 15), "rd": (47, 47)}
#: Mirror-exact probes on the 64-grid (index 15 mirrors to 48), for symmetry checks.
MIRROR_PROBES: dict[str, tuple[int, int]] = {
    "lu": (15, 15), "ru": (15, 48), "ld": (48, 15), "rd": (48, 48)}


def propagator(t: float | Sequence[float], K: int = 24, c: float = 0.1, *,
               device=None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    r"""The mode multipliers :math:`\cos(c\pi t\,\Omega)`, shape ``(K, K)`` for one
    horizon or ``(len(t), K, K)`` for a sequence."""
    ts, scalar = _checks.horizons(t)
    K = _checks.positive_int("K", K)
    c = _checks.positive("c", c)
    omega = mode_norms(K)
    m = torch.cos(c * math.pi * torch.tensor(ts, dtype=torch.float64)[:, None, None]
                  * omega)
    m = m.to(device=_checks.resolve_device(device), dtype=dtype)
    return m[0] if scalar else m


def evaluate(B0: torch.Tensor, t: float | Sequence[float], resolution: int = 64,
             c: float = 0.1, *, device=None, dtype: torch.dtype = torch.float32
             ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Exact input and solution for given sine coefficients.

    Args:
        B0 (Tensor): coefficients :math:`\frac{\pi}{K^2}a_{ij}\omega_{ij}^{-2r}`,
            shape ``(n, K, K)`` (see :func:`refimpl.pde.sine.coefficients`).
        t: one horizon or a sequence of horizons (each >= 0).
        resolution (int): grid points per side, walls included.
        c (float): wave speed.
        device, dtype: where and in which precision to compute and return.

    Returns:
        ``(u0, ut)`` with ``u0`` of shape ``(n, res, res)`` and ``ut`` of shape
        ``(n, res, res)`` for a scalar ``t`` or ``(n, len(t), res, res)``.
    """
    return evaluate_series(
        B0, lambda K, dev, dt: propagator(t, K, c, device=dev, dtype=dt),
        resolution, device=device, dtype=dtype)


def sample(n: int, t: float | Sequence[float], resolution: int = 64, K: int = 24,
           c: float = 0.1, r: float = 1.0, seed: int = 0, *, device=None,
           dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Draw ``n`` exact input/solution pairs of the wave benchmark.

    Vectorised as batched matrix products :math:`U_0 = S B_0 S^\top`,
    :math:`U_t = S\,(B_0\odot\cos(c\pi t\Omega))\,S^\top` (spec §3.4), with
    :math:`B_0 = \frac{\pi}{K^2}A\odot\Omega^{-2r}` and :math:`A` drawn from
    ``numpy.random.default_rng(seed)``. The draw depends only on ``(n, K, r,
    seed)``: the same inputs serve every horizon (a sequence ``t`` reuses them)
    and every resolution.

    Args:
        n (int): number of samples.
        t (float or sequence of floats): horizon(s) :math:`t\ge 0`.
        resolution (int): grid points per side, :math:`x_k = k/(n-1)` with the walls
            included (default 64, as the authors).
        K (int): sine modes per direction (default 24).
        c (float): wave speed (default 0.1).
        r (float): spectral decay exponent (default 1).
        seed (int): seed of the coefficient draw.
        device: where to compute and return (default CPU).
        dtype: ``torch.float32`` (default) or ``torch.float64``.

    Returns:
        ``(u0, ut)``: ``u0`` of shape ``(n, resolution, resolution)``; ``ut`` of the
        same shape for a scalar ``t`` and ``(n, len(t), resolution, resolution)``
        for a sequence of horizons.

    Example:
        >>> u0, ut = sample(8, t=[1, 5], resolution=32)
        >>> u0.shape, ut.shape
        (torch.Size([8, 32, 32]), torch.Size([8, 2, 32, 32]))
    """
    _checks.horizons(t)
    _checks.positive("c", c)
    _checks.positive_int("resolution", resolution, minimum=2)
    B0 = coefficients(n, K, r, seed)
    return evaluate(B0, t, resolution, c, device=device, dtype=dtype)


def dependency_map(t: float | Sequence[float], probe: tuple[int, int],
                   resolution: int = 64, K: int = 24, c: float = 0.1, *,
                   signed: bool = False, device=None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""Analytic spatial dependency :math:`|G_t(x_0, \cdot)|` of output point ``probe``.

    Computed as :math:`G = S\,M\,S^\top` with
    :math:`M = 4\cos(c\pi t\Omega)\odot(S_{p,:}^\top S_{q,:})` (spec §4.3): two small
    matrix products, no loop over grid points.

    The value is the continuous kernel (a density per unit area); the discrete
    Jacobian of the grid map is ``h**2`` times it, :math:`h = 1/(n-1)`. Since the
    sampled input has no component outside the :math:`K\times K` modes, only the
    projection of a model's gradient onto those modes is comparable exactly.

    Args:
        t: horizon :math:`t\ge 0`, or a sequence of horizons.
        probe: grid indices ``(i, j)`` of the output point, ``i`` along the first
            axis; ``0 <= i, j < resolution``.
        resolution, K, c: as in :func:`sample`.
        signed (bool): return :math:`G_t(x_0,\cdot)` itself instead of its
            magnitude (default :obj:`False`).
        device, dtype: of the result (computed in float64).

    Returns:
        A tensor of shape ``(resolution, resolution)``, or
        ``(len(t), resolution, resolution)`` for a sequence of horizons.
    """
    resolution = _checks.positive_int("resolution", resolution, minimum=2)
    p, q = _checks.probe_index(probe, resolution)
    dtype = _checks.float_dtype(dtype)
    G = kernel(propagator(t, K, c), (p, q), resolution)
    G = G if signed else G.abs()
    return G.to(device=_checks.resolve_device(device), dtype=dtype)


def input_std(K: int = 24, r: float = 1.0, resolution: int = 64) -> torch.Tensor:
    r"""Exact point-wise std :math:`\sigma_a(x)` of the sampled :math:`u_0`.

    .. math::
        \sigma_a(x)^2 = \Big(\frac{\pi}{K^2}\Big)^2\frac13\sum_{i,j}
        \omega_{ij}^{-4r}\sin^2(i\pi x_1)\sin^2(j\pi x_2).

    Zero on the walls. Float64, shape ``(resolution, resolution)``.
    """
    return field_std(None, K, r, resolution)


def target_std(t: float, K: int = 24, r: float = 1.0, resolution: int = 64,
               c: float = 0.1) -> torch.Tensor:
    r"""Exact point-wise std of :math:`u(\cdot, t)` (mode weights times
    :math:`\cos^2(c\pi t\omega_{ij})`). Float64, ``(resolution, resolution)``."""
    return field_std(propagator(t, K, c), K, r, resolution)


def oracle(t: float, resolution: int = 64, K: int = 24, c: float = 0.1, *,
           device=None, dtype: torch.dtype = torch.float32) -> SineOracle:
    r"""The exact linear model :math:`u_0\mapsto u(\cdot,t)` as an ``nn.Module``.

    Project on the :math:`K\times K` sine modes, multiply by
    :math:`\cos(c\pi t\omega_{ij})`, synthesise. It reproduces :func:`sample`'s
    targets from its inputs and its Jacobian at ``probe`` is
    ``h**2 * dependency_map(t, probe, signed=True)``. Inputs ``(..., n, n)``.
    """
    _, scalar = _checks.horizons(t)
    if not scalar:
        raise ValueError("oracle takes one horizon t, got a sequence")
    m = propagator(t, K, c, device=device, dtype=_checks.float_dtype(dtype))
    return SineOracle(m, resolution, label=f"wave t={float(t):g}, c={float(c):g}")
