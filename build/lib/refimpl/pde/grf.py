r"""Gaussian random fields (GRFs) with covariance
:math:`\sigma^2(-\Delta + \tau^2 I)^{-\alpha}`, as used by the FNO benchmark data.

**Periodic** (:func:`periodic`, the FNO ``GaussianRF`` convention for
Navier–Stokes and Burgers) on :math:`[0,1)^d` with grid :math:`x_k = k/s`:

.. math::
    w(x) = \mathrm{Re}\sum_{k\ne0}\sqrt2\,\sigma\,
    \big(4\pi^2|k|^2+\tau^2\big)^{-\alpha/2}\,(\xi_k + i\eta_k)\,e^{2\pi i k\cdot x},
    \qquad \xi_k,\eta_k\sim\mathcal N(0,1),

over the :math:`s^d` FFT wave vectors (:math:`|k_i|\le s/2`), evaluated with one
inverse FFT. The mean mode is zero. With this convention each Fourier
coefficient of :math:`w` has :math:`\mathbb E|\hat w_k|^2 = 2\sigma^2\lambda_k`,
:math:`\lambda_k = (4\pi^2|k|^2+\tau^2)^{-\alpha}` (twice the nominal covariance,
kept for comparability with the FNO data). The default amplitude is the FNO
one, :math:`\sigma = \tau^{(2\alpha-d)/2}`.

**Bounded** (:func:`cosine` for zero-Neumann, :func:`sine` for zero-Dirichlet
boundary conditions on the Laplacian, on :math:`[0,1]^d` with the walls on the
grid, :math:`x_k = k/(s-1)`): a Karhunen–Loève series in the orthonormal
eigenbasis :math:`\phi_k` of :math:`-\Delta`,

.. math::
    g(x) = \sum_{k}\sigma\,\big(\pi^2|k|^2+\tau^2\big)^{-\alpha/2}\,\xi_k\,
    \phi_{k_1}(x_1)\cdots\phi_{k_d}(x_d),\qquad\xi_k\sim\mathcal N(0,1),

with :math:`\phi_0 = 1,\ \phi_k = \sqrt2\cos(k\pi x)` (cosine, :math:`k\ge0`, the
constant mode dropped so the mean is zero) or :math:`\phi_k = \sqrt2\sin(k\pi x)`
(sine, :math:`k\ge1`), truncated at ``modes`` terms per direction. The
coefficients do not depend on the grid, so the same draw is the same continuous
function at every resolution (:func:`bounded_coefficients`, :func:`evaluate`):
this is how :mod:`refimpl.pde.darcy` solves one coefficient at two resolutions.
The Darcy law of the FNO paper, :math:`\mathcal N(0,(-\Delta+9I)^{-2})` with
Neumann conditions, is ``cosine(alpha=2, tau=3)``.

Reference: Li et al., *Fourier Neural Operator for Parametric Partial
Differential Equations*, ICLR 2021.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import _checks

__all__ = ["periodic", "periodic_spectrum", "bounded_coefficients", "basis",
           "evaluate", "cosine", "sine"]

_KINDS = ("cosine", "sine")


def _check_law(dim: int, alpha: float, tau: float, sigma: float | None
               ) -> tuple[int, float, float, float | None]:
    dim = _checks.positive_int("dim", dim)
    if dim not in (1, 2):
        raise ValueError(f"dim must be 1 or 2, got {dim}")
    alpha = _checks.positive("alpha", alpha)
    tau = _checks.non_negative("tau", tau)
    sigma = None if sigma is None else _checks.positive("sigma", sigma)
    return dim, alpha, tau, sigma


def _fft_wavenumbers(resolution: int, dim: int) -> torch.Tensor:
    """Squared integer wave-vector norms :math:`|k|^2` in FFT order, ``(s,)*dim``."""
    k = torch.fft.fftfreq(resolution, d=1.0 / resolution, dtype=torch.float64)
    if dim == 1:
        return k**2
    return k[:, None] ** 2 + k[None, :] ** 2


def periodic_spectrum(resolution: int, *, dim: int = 2, alpha: float = 2.5,
                      tau: float = 7.0, sigma: float | None = None) -> torch.Tensor:
    r"""The expected power :math:`\mathbb E|\hat w_k|^2 = 2\sigma^2\lambda_k` of the
    Fourier coefficients (``torch.fft`` ``norm="forward"``) of :func:`periodic`
    fields, in FFT order, float64 (zero at :math:`k=0`)."""
    resolution = _checks.positive_int("resolution", resolution, minimum=2)
    dim, alpha, tau, sigma = _check_law(dim, alpha, tau, sigma)
    sigma = tau ** ((2 * alpha - dim) / 2) if sigma is None else sigma
    k2 = _fft_wavenumbers(resolution, dim)
    power = 2.0 * sigma**2 * (4 * math.pi**2 * k2 + tau**2) ** (-alpha)
    power.view(-1)[0] = 0.0
    return power


def periodic(n: int, resolution: int, *, dim: int = 2, alpha: float = 2.5,
             tau: float = 7.0, sigma: float | None = None, seed: int = 0,
             device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""Periodic GRF samples on the grid :math:`x_k = k/s` (FNO convention).

    Args:
        n (int): number of fields.
        resolution (int): grid points per side, :math:`s`.
        dim (int): 1 or 2.
        alpha, tau, sigma: the law :math:`\sigma^2(-\Delta+\tau^2)^{-\alpha}`
            (default: the Navier–Stokes initial vorticity, :math:`\alpha=2.5`,
            :math:`\tau=7`, :math:`\sigma=\tau^{(2\alpha-d)/2}`).
        seed (int): the normal draws come from ``numpy.random.default_rng(seed)``,
            so a seed gives the same field on every device.
        device, dtype: where to synthesise and the result's dtype.

    Returns:
        ``(n, s)`` or ``(n, s, s)``.
    """
    n = _checks.positive_int("n", n)
    resolution = _checks.positive_int("resolution", resolution, minimum=2)
    seed = _checks.positive_int("seed", seed, minimum=0)
    dtype = _checks.float_dtype(dtype)
    device = _checks.resolve_device(device)
    power = periodic_spectrum(resolution, dim=dim, alpha=alpha, tau=tau, sigma=sigma)
    # sqrt(2 sigma^2 lambda) * s^d cancels the inverse FFT's 1/s^d; the complex
    # normal xi + i eta has E|.|^2 = 2, halved again by taking the real part.
    sqrt_eig = (power / 2.0).sqrt() * math.sqrt(2.0) * resolution**dim
    shape = (n,) + (resolution,) * dim
    z = np.random.default_rng(seed).standard_normal((2,) + shape)
    ctype = torch.complex128 if dtype == torch.float64 else torch.complex64
    coeff = torch.complex(torch.from_numpy(z[0]), torch.from_numpy(z[1]))
    coeff = (coeff * sqrt_eig).to(device=device, dtype=ctype)
    dims = tuple(range(-dim, 0))
    return torch.fft.ifftn(coeff, dim=dims).real.to(dtype)


def bounded_coefficients(n: int, modes: int = 32, *, kind: str = "cosine",
                         dim: int = 2, alpha: float = 2.0, tau: float = 3.0,
                         sigma: float = 1.0, seed: int = 0) -> torch.Tensor:
    r"""Karhunen–Loève coefficients
    :math:`\sigma(\pi^2|k|^2+\tau^2)^{-\alpha/2}\xi_k`.

    Index ``k_d`` runs over ``0..modes-1`` for cosine fields (the all-zero index is
    set to 0) and over ``1..modes`` for sine fields. Float64 CPU tensor of shape
    ``(n, modes)`` or ``(n, modes, modes)``; the draw depends only on the
    arguments, never on a grid.
    """
    n = _checks.positive_int("n", n)
    modes = _checks.positive_int("modes", modes)
    seed = _checks.positive_int("seed", seed, minimum=0)
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    dim, alpha, tau, sigma = _check_law(dim, alpha, tau, sigma)
    k = torch.arange(modes, dtype=torch.float64) + (1.0 if kind == "sine" else 0.0)
    k2 = k**2 if dim == 1 else k[:, None] ** 2 + k[None, :] ** 2
    std = sigma * (math.pi**2 * k2 + tau**2) ** (-alpha / 2.0)
    if kind == "cosine":
        std.view(-1)[0] = 0.0
    xi = np.random.default_rng(seed).standard_normal((n,) + tuple(std.shape))
    return torch.from_numpy(xi) * std


def basis(x: torch.Tensor, modes: int, kind: str = "cosine") -> torch.Tensor:
    r"""The orthonormal 1-D eigenfunctions :math:`\phi_k(x)` at points ``x``.

    Returns ``(len(x), modes)``: :math:`\sqrt2\cos(k\pi x)` (with
    :math:`\phi_0 = 1`), :math:`k = 0..` ``modes-1``, or :math:`\sqrt2\sin(k\pi x)`,
    :math:`k = 1..` ``modes``. Evaluated in float64 on ``x``'s device.
    """
    modes = _checks.positive_int("modes", modes)
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    x = x.to(torch.float64)
    if kind == "cosine":
        k = torch.arange(modes, dtype=torch.float64, device=x.device)
        phi = math.sqrt(2.0) * torch.cos(math.pi * x[:, None] * k[None])
        phi[:, 0] = 1.0
    else:
        k = torch.arange(1, modes + 1, dtype=torch.float64, device=x.device)
        phi = math.sqrt(2.0) * torch.sin(math.pi * x[:, None] * k[None])
    return phi


def evaluate(coefficients: torch.Tensor, resolution: int, *, kind: str = "cosine",
             device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""Evaluate bounded-GRF coefficients on the grid :math:`x_k = k/(s-1)`.

    ``coefficients`` of shape ``(n, M)`` (1-D) or ``(n, M, M)`` (2-D) give fields of
    shape ``(n, s)`` or ``(n, s, s)`` as :math:`\Phi c` or :math:`\Phi C\Phi^\top`
    (computed in float64, then cast). Nested grids, :math:`(s_2-1) = m(s_1-1)`,
    share their nodes exactly.
    """
    if not isinstance(coefficients, torch.Tensor) or coefficients.dim() not in (2, 3):
        raise ValueError("coefficients must have shape (n, M) or (n, M, M), got "
                         f"{getattr(coefficients, 'shape', coefficients)!r}")
    resolution = _checks.positive_int("resolution", resolution, minimum=2)
    dtype = _checks.float_dtype(dtype)
    device = _checks.resolve_device(device)
    x = torch.linspace(0.0, 1.0, resolution, dtype=torch.float64, device=device)
    phi = basis(x, coefficients.shape[-1], kind)
    C = coefficients.to(device=device, dtype=torch.float64)
    if C.dim() == 2:
        field = C @ phi.T
    else:
        field = phi @ C @ phi.T
    return field.to(dtype)


def cosine(n: int, resolution: int, *, modes: int = 32, dim: int = 2,
           alpha: float = 2.0, tau: float = 3.0, sigma: float = 1.0, seed: int = 0,
           device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""Zero-Neumann GRF samples on :math:`x_k = k/(s-1)` (default: the FNO Darcy law
    :math:`(-\Delta+9)^{-2}`). Shapes ``(n, s)`` or ``(n, s, s)``."""
    c = bounded_coefficients(n, modes, kind="cosine", dim=dim, alpha=alpha, tau=tau,
                             sigma=sigma, seed=seed)
    return evaluate(c, resolution, kind="cosine", device=device, dtype=dtype)


def sine(n: int, resolution: int, *, modes: int = 32, dim: int = 2,
         alpha: float = 2.0, tau: float = 3.0, sigma: float = 1.0, seed: int = 0,
         device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""Zero-Dirichlet GRF samples on :math:`x_k = k/(s-1)` (zero on the walls).
    Shapes ``(n, s)`` or ``(n, s, s)``."""
    c = bounded_coefficients(n, modes, kind="sine", dim=dim, alpha=alpha, tau=tau,
                             sigma=sigma, seed=seed)
    return evaluate(c, resolution, kind="sine", device=device, dtype=dtype)
