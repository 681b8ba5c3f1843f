r"""1-D viscous Burgers equation on the periodic unit interval (the FNO benchmark
family), solved pseudo-spectrally in batches with torch.

.. math::
    \partial_t u + \partial_x\big(\tfrac12 u^2\big) = \nu\,\partial_{xx}u
    \quad\text{on } [0, 1),\qquad \nu = 0.1,

with grid :math:`x_k = k/s` and the initial condition of the FNO data, the
periodic GRF :math:`\mathcal N\big(0, 625(-\Delta+25I)^{-2}\big)` (:math:`\alpha = 2`,
:math:`\tau = 5`, :math:`\sigma = 25`, mean mode set to zero; Li et al., ICLR 2021).

**Scheme.** In Fourier space
:math:`\partial_t\hat u = -\nu(2\pi k)^2\hat u + \hat N(\hat u)` with
:math:`\hat N = -i\pi k\,D\odot\mathcal F(u^2)` (2/3 de-aliasing mask :math:`D`).
The stiff diffusion is integrated exactly by an integrating factor
:math:`E = e^{-\nu(2\pi k)^2\Delta t}` and the rest by classical RK4
("Lawson"/IF-RK4, e.g. Kassam & Trefethen, SIAM J. Sci. Comput. 26, 2005):

.. math::
    \hat u^{n+1} = E\hat u^n + \tfrac{\Delta t}{6}\big(E a + 2E_{1/2}(b + c) + d\big),

with the four stage evaluations :math:`a, b, c, d` of :math:`\hat N`. The mean
:math:`\hat u_0` is conserved exactly (the flux has no mean derivative).

**Time step.** Viscous Burgers obeys a maximum principle, so
:math:`\max|u(\cdot,t)|\le\max|u_0|` and the advective CFL number can be fixed up
front: by default :math:`\Delta t = \min\big(2\cdot10^{-3}, 0.5/(s\max|u_0|)\big)` over
the batch (about a third of RK4's imaginary-axis limit with the 2/3 rule), then
decreased so that each recording interval is a whole number of steps.
"""

from __future__ import annotations

import math

import torch
from refimpl.progress import tqdm

from . import _checks, grf

__all__ = ["initial_condition", "solve", "sample"]

#: The GRF of the FNO initial condition.
U0_LAW = dict(alpha=2.0, tau=5.0, sigma=25.0)


def initial_condition(n: int, resolution: int = 1024, *, seed: int = 0, device=None,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""FNO Burgers initial conditions, periodic GRF :math:`(\alpha,\tau,\sigma) =
    (2, 5, 25)` on :math:`x_k = k/s`, mean zero, shape ``(n, s)``."""
    return grf.periodic(n, resolution, dim=1, seed=seed, device=device, dtype=dtype,
                        **U0_LAW)


def _default_dt(u0: torch.Tensor) -> float:
    umax = float(u0.abs().max())
    s = u0.shape[-1]
    return 2e-3 if umax == 0 else min(2e-3, 0.5 / (s * umax))


def solve(u0: torch.Tensor, viscosity: float = 0.1, T: float = 1.0, *,
          record_steps: int = 1, dt: float | None = None,
          progress: bool | None = None) -> torch.Tensor:
    r"""Integrate ``u0`` to time ``T`` and record snapshots.

    Args:
        u0 (Tensor): initial condition ``(s,)`` or ``(B, s)`` on :math:`x_k = k/s`
            (even :math:`s\ge4`); the solve runs on its device and in its dtype.
        viscosity (float): :math:`\nu > 0` (default 0.1).
        T (float): final time > 0 (default 1).
        record_steps (int): snapshots at :math:`t_k = kT/\text{record\_steps}`,
            :math:`k = 1..` ``record_steps`` (default 1: only :math:`u(\cdot, T)`).
        dt (float, optional): time step (default: the CFL rule of the module notes).
        progress (bool): show a progress bar over time steps.

    Returns:
        ``(B, record_steps, s)`` (``(record_steps, s)`` for an unbatched ``u0``).
    """
    _checks.finite_tensor("u0", u0)
    if u0.dim() not in (1, 2):
        raise ValueError(f"u0 must have shape (s,) or (B, s), got {tuple(u0.shape)}")
    s = u0.shape[-1]
    if s < 4 or s % 2:
        raise ValueError(f"the resolution must be an even integer >= 4, got {s}")
    nu = _checks.positive("viscosity", viscosity)
    T = _checks.positive("T", T)
    record_steps = _checks.positive_int("record_steps", record_steps)
    dt = _default_dt(u0) if dt is None else _checks.positive("dt", dt)
    interval = T / record_steps
    per_record = max(1, int(math.ceil(interval / dt - 1e-9)))
    dt = interval / per_record

    batched = u0.dim() == 2
    u = u0 if batched else u0[None]
    k = torch.fft.rfftfreq(s, d=1.0 / s, dtype=torch.float64)
    E = torch.exp(-nu * (2 * math.pi * k) ** 2 * dt).to(u.device, u.dtype)
    E2 = torch.exp(-nu * (2 * math.pi * k) ** 2 * dt / 2).to(u.device, u.dtype)
    # d/dx (u^2 / 2) -> i pi k F(u^2); the Nyquist derivative is dropped
    deriv = torch.where(k == s / 2, 0.0, math.pi * k)
    mask = (k <= 2.0 / 3.0 * (s // 2)).to(torch.float64)
    ctype = torch.complex128 if u.dtype == torch.float64 else torch.complex64
    g = (-1j * deriv * mask).to(u.device, ctype)

    def nonlinear(v_h: torch.Tensor) -> torch.Tensor:
        v = torch.fft.irfft(v_h, n=s)
        return g * torch.fft.rfft(v * v)

    u_h = torch.fft.rfft(u)
    out = torch.empty((u.shape[0], record_steps, s), device=u.device, dtype=u.dtype)
    bar = tqdm(total=record_steps * per_record, desc=f"Burgers nu={nu:g}",
               progress=progress, leave=False)
    for r in range(record_steps):
        for _ in range(per_record):
            a = nonlinear(u_h)
            b = nonlinear(E2 * (u_h + 0.5 * dt * a))
            c = nonlinear(E2 * u_h + 0.5 * dt * b)
            d = nonlinear(E * u_h + dt * E2 * c)
            u_h = E * u_h + dt / 6.0 * (E * a + 2.0 * E2 * (b + c) + d)
        out[:, r] = torch.fft.irfft(u_h, n=s)
        bar.update(per_record)
    bar.close()
    return out if batched else out[0]


def sample(n: int, resolution: int = 256, viscosity: float = 0.1, T: float = 1.0,
           record_steps: int = 1, *, oversample: int = 1, dt: float | None = None,
           seed: int = 0, progress: bool | None = None, device=None,
           dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Draw ``n`` FNO-style Burgers pairs.

    The GRF is drawn and the equation solved on ``resolution * oversample`` points
    in ``dtype``, then both are sub-sampled with stride ``oversample``. The FNO data
    were solved on 8192 points and sub-sampled; with :math:`\nu = 0.1` and this
    initial spectrum (mode amplitudes :math:`\propto (4\pi^2k^2+25)^{-1}`, below
    :math:`10^{-4}` of the first mode beyond :math:`k = 128`) solving directly on
    256 points (the default, ``oversample=1``) resolves the solution.

    Args:
        n (int): number of samples.
        resolution (int): returned grid points (even).
        viscosity (float): :math:`\nu` (default 0.1).
        T (float): final time (default 1).
        record_steps (int): snapshots at :math:`kT/\text{record\_steps}` (default 1).
        oversample (int): solve-grid refinement (default 1).
        dt (float, optional): time step on the solve grid (default: CFL rule).
        seed (int): seed of the initial-condition GRF.
        progress (bool): show a progress bar.
        device, dtype: where to solve, and the dtype of the results.

    Returns:
        ``(u0, u)``: ``(n, resolution)`` and ``(n, record_steps, resolution)``.
    """
    resolution = _checks.positive_int("resolution", resolution, minimum=4)
    if resolution % 2:
        raise ValueError(f"resolution must be even, got {resolution}")
    oversample = _checks.positive_int("oversample", oversample)
    _checks.positive("viscosity", viscosity)
    _checks.positive("T", T)
    _checks.positive_int("record_steps", record_steps)
    dtype = _checks.float_dtype(dtype)
    u0 = initial_condition(n, resolution * oversample, seed=seed, device=device,
                           dtype=dtype)
    u = solve(u0, viscosity, T, record_steps=record_steps, dt=dt, progress=progress)
    return u0[:, ::oversample].contiguous(), u[..., ::oversample].contiguous()
