r"""Dirichlet sine series on the unit square: the common machinery of the exact
wave and heat generators.

A field with zero Dirichlet values on :math:`\partial[0,1]^2` is expanded in the
first :math:`K\times K` eigenfunctions of :math:`-\Delta`,

.. math::
    u(x, y) = \sum_{i,j=1}^{K} b_{ij}\,\sin(i\pi x)\,\sin(j\pi y).

On the grid :math:`x_k = k/(n-1)`, :math:`k = 0,\dots,n-1` (endpoints included,
:math:`h = 1/(n-1)`) the sine matrix :math:`S_{k,i} = \sin(i\pi x_k)` turns a
batch of coefficient matrices :math:`B` into grid values with two matrix
products, :math:`U = S\,B\,S^\top`, so no Python loop runs over grid points. For
:math:`K \le n-2` the columns of :math:`S` are exactly orthogonal,
:math:`S^\top S = \tfrac{n-1}{2} I_K`, hence :math:`B = (2h)^2\,S^\top U S` recovers
the coefficients of any grid field in the span (the discrete sine transform).

A linear operator that is diagonal in this basis, :math:`b_{ij} \mapsto
m_{ij} b_{ij}` (for the wave :math:`m_{ij} = \cos(c\pi t\omega_{ij})`, for heat
:math:`m_{ij} = e^{-\kappa\pi^2\omega_{ij}^2 t}`), has the integral kernel

.. math::
    G(x, \xi) = 4\sum_{i,j=1}^{K} m_{ij}\,\sin(i\pi x_1)\sin(j\pi x_2)\,
    \sin(i\pi\xi_1)\sin(j\pi\xi_2),
    \qquad u_{\text{out}}(x) = \int_{[0,1]^2} G(x, \xi)\,u_{\text{in}}(\xi)\,d\xi,

and on the grid the same map is the quadrature
:math:`u_{\text{out}}(x_0) = h^2\sum_{\xi} G(x_0, \xi)\,u_{\text{in}}(\xi)`, exact for
inputs in the span when :math:`K\le n-2` (see :class:`SineOracle`).

The input distribution follows the CNO wave benchmark (Raonić et al., NeurIPS
2023, ``WaveEquationDataset``):
:math:`b_{ij} = \frac{\pi}{K^2}\,a_{ij}\,\omega_{ij}^{-2r}` with
:math:`a_{ij}\sim\mathcal U(-1, 1)` i.i.d. and :math:`\omega_{ij}=\sqrt{i^2+j^2}`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from . import _checks

__all__ = [
    "grid", "sine_basis", "mode_norms", "coefficients", "synthesize", "kernel",
    "field_std", "SineOracle",
]


def grid(resolution: int, *, device=None, dtype: torch.dtype = torch.float64
         ) -> torch.Tensor:
    r"""The nodes :math:`x_k = k/(n-1)`, :math:`k=0,\dots,n-1` (walls included)."""
    resolution = _checks.positive_int("resolution", resolution, minimum=2)
    return torch.linspace(0.0, 1.0, resolution, device=_checks.resolve_device(device),
                          dtype=dtype)


def sine_basis(resolution: int, K: int, *, device=None,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
    r"""The sine matrix :math:`S_{k,i} = \sin(i\pi x_k)`, shape ``(resolution, K)``.

    Computed in float64 and then cast, so that float32 bases are correctly
    rounded and the wall rows are zero to round-off.
    """
    K = _checks.positive_int("K", K)
    x = grid(resolution, dtype=torch.float64)
    i = torch.arange(1, K + 1, dtype=torch.float64)
    S = torch.sin(math.pi * x[:, None] * i[None, :])
    return S.to(device=_checks.resolve_device(device), dtype=dtype)


def mode_norms(K: int, *, device=None, dtype: torch.dtype = torch.float64
               ) -> torch.Tensor:
    r"""The mode norms :math:`\Omega_{ij} = \sqrt{i^2+j^2}`, shape ``(K, K)``."""
    K = _checks.positive_int("K", K)
    i = torch.arange(1, K + 1, dtype=torch.float64)
    omega = torch.sqrt(i[:, None] ** 2 + i[None, :] ** 2)
    return omega.to(device=_checks.resolve_device(device), dtype=dtype)


def coefficients(n: int, K: int = 24, r: float = 1.0, seed: int = 0) -> torch.Tensor:
    r"""Random sine coefficients :math:`B_0 = \frac{\pi}{K^2} A\odot\Omega^{-2r}`.

    :math:`A` is drawn i.i.d. :math:`\mathcal U(-1,1)` from
    ``numpy.random.default_rng(seed)`` with shape ``(n, K, K)``; ``A[s, i-1, j-1]``
    is :math:`a_{ij}`, :math:`i` indexing the first spatial axis. The draw does not
    depend on the grid, so one seed gives the same continuous field at every
    resolution and the same input for every horizon.

    Returns:
        A float64 CPU tensor of shape ``(n, K, K)``.
    """
    n = _checks.positive_int("n", n)
    K = _checks.positive_int("K", K)
    r = _checks.real("r", r)
    seed = _checks.positive_int("seed", seed, minimum=0)
    A = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, K, K))
    return (math.pi / K**2) * torch.from_numpy(A) * mode_norms(K) ** (-2.0 * r)


def synthesize(B: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    r"""Grid values :math:`S\,B\,S^\top` of coefficients ``B`` of shape
    ``(..., K, K)`` on the basis ``S`` of shape ``(s, K)``."""
    if not (isinstance(B, torch.Tensor) and isinstance(S, torch.Tensor)):
        raise TypeError("B and S must be torch.Tensors, got "
                        f"{type(B).__name__} and {type(S).__name__}")
    if S.dim() != 2 or B.dim() < 2 or B.shape[-1] != B.shape[-2] \
            or B.shape[-1] != S.shape[-1]:
        raise ValueError(f"B must have shape (..., K, K) and S shape (s, K) with the "
                         f"same K, got {tuple(B.shape)} and {tuple(S.shape)}")
    return torch.matmul(torch.matmul(S, B), S.transpose(-1, -2))


def evaluate_series(B0: torch.Tensor, multiplier, resolution: int, *, device=None,
                    dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Input and solution of a diagonal sine-series operator (wave, heat).

    ``multiplier(K, device, dtype)`` returns the per-mode factor, ``(K, K)`` for one
    horizon or ``(T, K, K)`` for several; the solution keeps that leading axis.
    """
    if not isinstance(B0, torch.Tensor) or B0.dim() != 3 or B0.shape[1] != B0.shape[2]:
        raise ValueError("B0 must be a tensor of shape (n, K, K), got "
                         f"{getattr(B0, 'shape', B0)!r}")
    _checks.finite_tensor("B0", B0)
    dtype = _checks.float_dtype(dtype)
    device = _checks.resolve_device(device)
    resolution = _checks.positive_int("resolution", resolution, minimum=2)
    K = B0.shape[-1]
    m = multiplier(K, device, dtype)
    S = sine_basis(resolution, K, device=device, dtype=dtype)
    B0 = B0.to(device=device, dtype=dtype)
    Bt = B0 * m if m.dim() == 2 else B0[:, None] * m[None]
    return synthesize(B0, S), synthesize(Bt, S)


def kernel(multiplier: torch.Tensor, probe: tuple[int, int], resolution: int
           ) -> torch.Tensor:
    r"""The kernel :math:`G(x_0, \cdot)` of a sine multiplier on the grid.

    :math:`G = S\,\big(4\,m\odot S_{p,:}^\top S_{q,:}\big)\,S^\top` for the probe
    :math:`x_0 = (x_p, x_q)`; ``multiplier`` may carry leading batch dimensions
    (e.g. one per horizon), shape ``(..., K, K)``. Computed in the dtype and on the
    device of ``multiplier``.
    """
    K = multiplier.shape[-1]
    S = sine_basis(resolution, K, device=multiplier.device, dtype=multiplier.dtype)
    p, q = probe
    M = 4.0 * multiplier * torch.outer(S[p], S[q])
    return synthesize(M, S)


def field_std(multiplier: torch.Tensor | None, K: int = 24, r: float = 1.0,
              resolution: int = 64) -> torch.Tensor:
    r"""Exact point-wise standard deviation of :math:`S(B_0\odot m)S^\top`.

    With :math:`\mathrm{Var}\,\mathcal U(-1,1) = 1/3` and independent modes,

    .. math::
        \sigma(x)^2 = \Big(\frac{\pi}{K^2}\Big)^2\frac13\sum_{i,j}
        m_{ij}^2\,\omega_{ij}^{-4r}\sin^2(i\pi x_1)\sin^2(j\pi x_2).

    ``multiplier=None`` means :math:`m\equiv 1` (the input field). Returns a float64
    tensor of shape ``(..., resolution, resolution)``.
    """
    K = _checks.positive_int("K", K)
    r = _checks.real("r", r)
    S2 = sine_basis(resolution, K) ** 2
    weight = mode_norms(K) ** (-4.0 * r)
    if multiplier is not None:
        weight = weight * multiplier.to(torch.float64).cpu() ** 2
    var = (math.pi / K**2) ** 2 / 3.0 * synthesize(weight, S2)
    return var.clamp_min(0.0).sqrt()


class SineOracle(nn.Module):
    r"""The exact linear operator that is diagonal in the Dirichlet sine basis.

    .. math::
        \mathcal G(u) = S\,\Big(m\odot (2h)^2\,S^\top u\,S\Big)\,S^\top,
        \qquad h = \frac{1}{n-1}:

    project the grid field on the :math:`K\times K` sine modes, multiply mode
    :math:`(i,j)` by :math:`m_{ij}`, synthesise. For inputs in the span of the
    modes (all generated data) this reproduces the generator's map exactly, and
    its Jacobian is :math:`\partial\mathcal G(u)(x_0)/\partial u(\xi) =
    h^2\,G(x_0,\xi)` with the kernel :math:`G` of :func:`kernel`: the reference
    model for receptive-field tests (spec section 5.7).

    Args:
        multiplier (Tensor): the mode multipliers :math:`m`, shape ``(K, K)``.
        resolution (int): the grid size :math:`n` (requires :math:`K\le n-2`, where
            the sampled sines are orthogonal).
        label (str, optional): a description shown by ``repr``.

    Shapes:
        input ``(..., n, n)`` (e.g. ``(B, 1, n, n)``), output the same shape.
    """

    family = "functional"

    def __init__(self, multiplier: torch.Tensor, resolution: int, label: str = ""):
        super().__init__()
        if not isinstance(multiplier, torch.Tensor) or multiplier.dim() != 2 or \
                multiplier.shape[0] != multiplier.shape[1]:
            raise ValueError("multiplier must be a square (K, K) tensor, got "
                             f"{getattr(multiplier, 'shape', multiplier)!r}")
        self.K = int(multiplier.shape[0])
        self.resolution = _checks.positive_int("resolution", resolution, minimum=3)
        if self.K > self.resolution - 2:
            raise ValueError(
                f"K={self.K} sine modes are not orthogonal on a "
                f"{self.resolution}-point grid; the oracle needs "
                f"K <= resolution - 2 = {self.resolution - 2}")
        self.label = str(label)
        dtype = multiplier.dtype if multiplier.is_floating_point() else torch.float64
        self.register_buffer("multiplier", multiplier.to(dtype))
        self.register_buffer("S", sine_basis(self.resolution, self.K, dtype=dtype,
                                             device=multiplier.device))

    def reset_parameters(self) -> None:
        """The oracle is fixed: there is nothing to reset."""

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if u.shape[-2:] != (self.resolution, self.resolution):
            raise ValueError(f"expected a field of shape (..., {self.resolution}, "
                             f"{self.resolution}), got {tuple(u.shape)}")
        S = self.S.to(u.dtype)
        h2 = 4.0 / (self.resolution - 1) ** 2
        B = h2 * torch.matmul(torch.matmul(S.transpose(-1, -2), u), S)
        return synthesize(B * self.multiplier.to(u.dtype), S)

    def extra_repr(self) -> str:
        label = f"{self.label}, " if self.label else ""
        return f"{label}K={self.K}, resolution={self.resolution}"
