r"""The 2-D heat equation on the unit square with Dirichlet walls: exact data and
the analytic heat kernel (chapter 2's second physics).

.. math::
    u_t = \kappa\,\Delta u \ \text{on } [0,1]^2,\qquad u = 0 \text{ on the walls}.

Every Dirichlet sine mode decays at its own rate, so with the same random input
as :mod:`refimpl.pde.wave` (same ``seed`` → same :math:`u_0`)

.. math::
    u(x, y, t) = \frac{\pi}{K^2}\sum_{i,j=1}^{K} a_{ij}\,\omega_{ij}^{-2r}\,
    \sin(i\pi x)\sin(j\pi y)\,e^{-\kappa\pi^2\omega_{ij}^2 t}.

The kernel of :math:`u_0\mapsto u(\cdot,t)` is the Dirichlet heat kernel. As a
truncated sine series (``kernel="series"``, the exact kernel of the generated
data) it is

.. math::
    G_t(x,\xi) = 4\sum_{i,j=1}^{K} e^{-\kappa\pi^2(i^2+j^2)t}
    \sin(i\pi x_1)\sin(j\pi x_2)\sin(i\pi\xi_1)\sin(j\pi\xi_2),

and without truncation (``kernel="images"``) it is, by the method of images, a
product of 1-D sums of Gaussians of width :math:`\sqrt{2\kappa t}` reflected with a
sign flip at each wall,

.. math::
    G_t(x,\xi) = \prod_{d=1}^{2}\sum_{m\in\mathbb Z}\big[\phi_t(x_d-\xi_d+2m)
    - \phi_t(x_d+\xi_d+2m)\big],\qquad
    \phi_t(z) = \frac{e^{-z^2/(4\kappa t)}}{\sqrt{4\pi\kappa t}}.

Away from the walls and for small :math:`t` this is the free-space Gaussian
:math:`(4\pi\kappa t)^{-1}e^{-|x-\xi|^2/(4\kappa t)}`. The quadrature convention
is that of :mod:`refimpl.pde.wave`: the discrete Jacobian is ``h**2`` times the
returned kernel.

The default diffusivity :math:`\kappa = 10^{-3}` gives a kernel width
:math:`\sqrt{2\kappa t}` from 0.045 at :math:`t=1` to 0.11 at :math:`t=6`,
comparable with the wave ring radius :math:`ct` at :math:`c = 0.1`.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from . import _checks
from .sine import (SineOracle, coefficients, evaluate_series, field_std, grid,
                   kernel, mode_norms)

__all__ = ["sample", "evaluate", "propagator", "dependency_map", "image_kernel",
           "input_std", "target_std", "oracle"]


def propagator(t: float | Sequence[float], K: int = 24, kappa: float = 1e-3, *,
               device=None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    r"""The mode multipliers :math:`e^{-\kappa\pi^2\Omega^2 t}`, ``(K, K)`` or
    ``(len(t), K, K)``."""
    ts, scalar = _checks.horizons(t)
    K = _checks.positive_int("K", K)
    kappa = _checks.positive("kappa", kappa)
    omega2 = mode_norms(K) ** 2
    m = torch.exp(-kappa * math.pi**2
                  * torch.tensor(ts, dtype=torch.float64)[:, None, None] * omega2)
    m = m.to(device=_checks.resolve_device(device), dtype=dtype)
    return m[0] if scalar else m


def evaluate(B0: torch.Tensor, t: float | Sequence[float], resolution: int = 64,
             kappa: float = 1e-3, *, device=None, dtype: torch.dtype = torch.float32
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact input and solution for given sine coefficients ``B0`` ``(n, K, K)``;
    see :func:`refimpl.pde.wave.evaluate` for the shapes."""
    return evaluate_series(
        B0, lambda K, dev, dt: propagator(t, K, kappa, device=dev, dtype=dt),
        resolution, device=device, dtype=dtype)


def sample(n: int, t: float | Sequence[float], resolution: int = 64, K: int = 24,
           kappa: float = 1e-3, r: float = 1.0, seed: int = 0, *, device=None,
           dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Draw ``n`` exact input/solution pairs of the heat equation.

    Same inputs as :func:`refimpl.pde.wave.sample` for the same ``(n, K, r, seed)``;
    each mode is damped by :math:`e^{-\kappa\pi^2\omega_{ij}^2 t}` instead of
    oscillating.

    Returns:
        ``(u0, ut)``: ``(n, res, res)`` and ``(n, res, res)`` for a scalar ``t`` or
        ``(n, len(t), res, res)`` for a sequence of horizons.
    """
    _checks.horizons(t)
    _checks.positive("kappa", kappa)
    _checks.positive_int("resolution", resolution, minimum=2)
    B0 = coefficients(n, K, r, seed)
    return evaluate(B0, t, resolution, kappa, device=device, dtype=dtype)


def image_kernel(t: float, probe: tuple[int, int], resolution: int = 64,
                 kappa: float = 1e-3) -> torch.Tensor:
    r"""The untruncated Dirichlet heat kernel :math:`G_t(x_0,\cdot)` by images.

    Float64, shape ``(resolution, resolution)``; needs :math:`t > 0`. Image terms
    are summed while they can matter (Gaussians further than 12 widths from the
    unit interval are below float64 resolution).
    """
    t = _checks.positive("t", t)
    kappa = _checks.positive("kappa", kappa)
    resolution = _checks.positive_int("resolution", resolution, minimum=2)
    p, q = _checks.probe_index(probe, resolution)
    x = grid(resolution)
    var2 = 4.0 * kappa * t  # 2 * variance of the 1-D Gaussian
    n_img = int(math.ceil((1.0 + 12.0 * math.sqrt(var2 / 2.0)) / 2.0)) + 1
    m = torch.arange(-n_img, n_img + 1, dtype=torch.float64)

    def one_d(x0: torch.Tensor) -> torch.Tensor:
        d_plus = x0 - x[:, None] + 2.0 * m[None]
        d_minus = x0 + x[:, None] + 2.0 * m[None]
        g = torch.exp(-d_plus**2 / var2) - torch.exp(-d_minus**2 / var2)
        return g.sum(-1) / math.sqrt(math.pi * var2)

    return torch.outer(one_d(x[p]), one_d(x[q]))


def dependency_map(t: float | Sequence[float], probe: tuple[int, int],
                   resolution: int = 64, K: int = 24, kappa: float = 1e-3, *,
                   signed: bool = False, kernel_type: str = "series", device=None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""Analytic spatial dependency :math:`|G_t(x_0,\cdot)|` of output point ``probe``.

    Args:
        t: horizon :math:`t\ge0` (``t > 0`` for ``kernel_type="images"``), or a
            sequence of horizons.
        probe: grid indices ``(i, j)`` of the output point.
        resolution, K, kappa: as in :func:`sample` (``K`` is unused for images).
        signed (bool): return :math:`G_t` itself instead of its magnitude. The
            heat kernel is positive; the truncated series can dip slightly below 0.
        kernel_type (str): ``"series"`` (default), the :math:`K`-mode kernel of the
            generated data (what a perfect model learns from it), or ``"images"``,
            the untruncated kernel of the PDE.
        device, dtype: of the result (computed in float64).

    Returns:
        ``(resolution, resolution)``, or ``(len(t), resolution, resolution)``.
    """
    resolution = _checks.positive_int("resolution", resolution, minimum=2)
    p, q = _checks.probe_index(probe, resolution)
    dtype = _checks.float_dtype(dtype)
    if kernel_type == "series":
        G = kernel(propagator(t, K, kappa), (p, q), resolution)
    elif kernel_type == "images":
        ts, scalar = _checks.horizons(t)
        G = torch.stack([image_kernel(s, (p, q), resolution, kappa) for s in ts])
        G = G[0] if scalar else G
    else:
        raise ValueError("kernel_type must be 'series' or 'images', got "
                         f"{kernel_type!r}")
    G = G if signed else G.abs()
    return G.to(device=_checks.resolve_device(device), dtype=dtype)


def input_std(K: int = 24, r: float = 1.0, resolution: int = 64) -> torch.Tensor:
    """Exact point-wise std of the sampled :math:`u_0` (identical to the wave's)."""
    return field_std(None, K, r, resolution)


def target_std(t: float, K: int = 24, r: float = 1.0, resolution: int = 64,
               kappa: float = 1e-3) -> torch.Tensor:
    """Exact point-wise std of :math:`u(\\cdot, t)`. Float64 ``(res, res)``."""
    return field_std(propagator(t, K, kappa), K, r, resolution)


def oracle(t: float, resolution: int = 64, K: int = 24, kappa: float = 1e-3, *,
           device=None, dtype: torch.dtype = torch.float32) -> SineOracle:
    r"""The exact linear model :math:`u_0\mapsto u(\cdot,t)` (project, damp each mode
    by :math:`e^{-\kappa\pi^2\omega_{ij}^2t}`, synthesise) as an ``nn.Module``."""
    _, scalar = _checks.horizons(t)
    if not scalar:
        raise ValueError("oracle takes one horizon t, got a sequence")
    m = propagator(t, K, kappa, device=device, dtype=_checks.float_dtype(dtype))
    label = f"heat t={float(t):g}, kappa={float(kappa):g}"
    return SineOracle(m, resolution, label=label)
