r"""2-D incompressible Navier–Stokes in vorticity form on the periodic unit torus
(the FNO benchmark family), solved pseudo-spectrally in batches with torch.

.. math::
    \partial_t w + u\cdot\nabla w = \nu\,\Delta w + f,\qquad
    u = \nabla^\perp\psi = (\partial_y\psi, -\partial_x\psi),\qquad
    -\Delta\psi = w,

on :math:`[0,1)^2` with grid :math:`x_k = k/s`, :math:`x` along the first array
axis, forcing :math:`f = 0.1\big(\sin 2\pi(x+y) + \cos 2\pi(x+y)\big)` and initial
vorticity from the periodic GRF :math:`\alpha = 2.5`, :math:`\tau = 7`,
:math:`\sigma = 7^{1.5}` (Li et al., ICLR 2021).

**Scheme.** With :math:`\kappa_k = 4\pi^2|k|^2` the Fourier coefficients obey
:math:`\partial_t\hat w = -\nu\kappa\hat w + \hat N(\hat w) + \hat f`, where the
advection :math:`\hat N = -D\odot\mathcal F(u\,\partial_x w + v\,\partial_y w)` is
evaluated on the grid and de-aliased with the 2/3 rule
(:math:`D`: :math:`|k_x|, |k_y|\le\frac23\lfloor s/2\rfloor`). Viscosity is always
treated by Crank–Nicolson, advection plus forcing explicitly:

* ``scheme="rk3"`` (default): the low-storage Runge–Kutta/Crank–Nicolson scheme
  of Spalart, Moser & Rogers (J. Comput. Phys. 96, 1991), three sub-steps
  :math:`\hat w_{k+1} = \big[(1-\alpha_k\Delta t\nu\kappa)\hat w_k
  + \Delta t(\gamma_k\hat N_k + \zeta_k\hat N_{k-1})\big]
  /(1+\alpha_k\Delta t\nu\kappa)`. Its explicit part is
  third order and, unlike Euler or Heun, stable for the purely imaginary
  eigenvalues of advection, which matters at :math:`\nu = 10^{-5}` where
  viscosity barely damps the de-aliasing cut-off.
* ``scheme="heun"``: a Crank–Nicolson/Euler predictor and a corrector with
  :math:`\frac12(\hat N^n + \hat N^*)`; second order.
* ``scheme="euler"`` (the FNO generator): forward Euler for the explicit part,
  :math:`\hat w^{n+1} = \big[(1-\frac12\Delta t\nu\kappa)\hat w^n
  + \Delta t(\hat N^n+\hat f)\big]/(1+\frac12\Delta t\nu\kappa)`; first order.

The mean vorticity (:math:`k = 0`) is untouched by all three (advection and
forcing have zero mean), so it is conserved exactly.

**Time step.** The FNO data used Euler with :math:`\Delta t = 10^{-4}` at 256²
(200 000 steps for :math:`T = 20`), far beyond a CPU. Here the default is
:func:`default_dt`, :math:`\Delta t = 10^{-2}\cdot 64/s` with ``"rk3"`` (a CFL
scaling with the grid spacing). Checked at 64² in float64 against
:math:`\Delta t = 2.5\cdot10^{-3}` on two GRF samples: relative L2 differences of
the unit-time snapshots at most :math:`10^{-6}` (:math:`\nu=10^{-3}`, :math:`T=50`),
:math:`10^{-4}` (:math:`\nu=10^{-4}`, :math:`T=30`) and :math:`10^{-4}`
(:math:`\nu=10^{-5}`, :math:`T=20`; later the flow is chaotic and any two step
sizes drift apart); :math:`\Delta t = 0.02` was still stable over 50 time units
at :math:`\nu=10^{-5}` and :math:`\Delta t = 0.04` was not, so the default keeps a
factor 2 margin. ``"heun"`` and ``"euler"`` need much smaller steps at
:math:`\nu=10^{-5}` (Heun with :math:`\Delta t = 0.01` blew up near :math:`t = 22`);
their defaults (:math:`2\cdot10^{-3}` and :math:`10^{-3}` at 64²) were not checked
over long horizons. The data are generated directly at the
training resolution and are therefore **not distributionally identical** to the
FNO files (solved at 256², sub-sampled).

**CFL guard.** The explicit advection is stable only while the advective CFL number
:math:`C = \Delta t\,\max(|u|+|v|)\,s` stays below :data:`CFL_LIMITS`: the largest
de-aliased advective eigenvalue is :math:`2\pi(s/3)\max(|u|+|v|)`, and RK3 is stable
on the imaginary axis up to :math:`\sqrt3`, giving :math:`C\le 3\sqrt3/(2\pi)
\approx 0.83` (Heun and Euler have no stable imaginary interval; their limit
:math:`3/(2\pi)` is a necessary condition only, viscosity must do the rest).
:func:`solve` checks :math:`C` at the start of every recording interval and raises
a :class:`ValueError` naming ``dt``, the velocity bound, the limit and a step that
satisfies it, and raises if the solution turns non-finite within an interval, so
a too-large step never returns NaN silently (e.g. Taylor–Green vorticity
:math:`8\pi^2\sin 2\pi x\sin 2\pi y` on 16² with the default step). The FNO
flows stay far inside the limit (at 64², :math:`\nu=10^{-5}`, the default step
gives :math:`C\approx 0.4` after 20 time units).

**Measured accuracy (spatial resolution).** ``benchmarks/ns_accuracy.py`` solves the
same band-limited initial vorticity (four GRF draws) on the training grid and on
128², :math:`\nu = 10^{-4}`, default steps, and compares the unit-time snapshots
(maximum over the draws of the relative L2 difference). At **32²** (chapter 3's
``book`` data) the snapshots are 1–3 % from the 128² solution up to
:math:`t = 15` and about 11 % at :math:`t = 20`: the late frames of that data set
are under-resolved, not accurate "to a few per cent". At **64²** the difference is
below 0.4 % up to :math:`t = 15` and about 1.4 % at :math:`t = 20`. Halving the
time step changes either grid by less than :math:`10^{-4}`, so the error is the
grid's, not the step's.

**Protocol.** :func:`sample` records one snapshot per time unit by default, at
:math:`t = 1, 2, \dots, T` (the FNO layout, where ``u[..., k]`` is
:math:`w(t = k+1)`); :func:`sequence` returns the "10 input steps → next steps"
task of FNO-2D / Transolver as channels-first tensors.
"""

from __future__ import annotations

import math

import torch
from refimpl.progress import tqdm

from . import _checks, grf

__all__ = ["forcing", "initial_vorticity", "default_dt", "solve", "sample",
           "sequence", "velocity", "CFL_LIMITS"]

#: The GRF of the FNO initial vorticity.
W0_LAW = dict(alpha=2.5, tau=7.0, sigma=7.0**1.5)
_SCHEMES = ("rk3", "heun", "euler")
_DT64 = {"rk3": 1e-2, "heun": 2e-3, "euler": 1e-3}
#: Advective CFL limits C_max on dt * max(abs(u) + abs(v)) * s (see the module notes):
#: the imaginary-axis stability reach of the explicit scheme (sqrt 3 for RK3; 1 for
#: Heun and Euler, a necessary condition only) times 3 / (2 pi), since the largest
#: de-aliased advective eigenvalue is 2 pi (s / 3) max(abs(u) + abs(v)).
CFL_LIMITS = {"rk3": 3 * math.sqrt(3) / (2 * math.pi), "heun": 3 / (2 * math.pi),
              "euler": 3 / (2 * math.pi)}


def forcing(resolution: int, *, device=None, dtype: torch.dtype = torch.float32
            ) -> torch.Tensor:
    r"""The FNO forcing :math:`0.1(\sin 2\pi(x+y) + \cos 2\pi(x+y))` on the grid
    :math:`x_k = k/s`, shape ``(s, s)``."""
    resolution = _checks.positive_int("resolution", resolution, minimum=4)
    x = torch.arange(resolution, dtype=torch.float64) / resolution
    xy = 2 * math.pi * (x[:, None] + x[None, :])
    f = 0.1 * (torch.sin(xy) + torch.cos(xy))
    return f.to(device=_checks.resolve_device(device), dtype=_checks.float_dtype(dtype))


def initial_vorticity(n: int, resolution: int = 64, *, seed: int = 0, device=None,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""FNO initial vorticities: periodic GRF :math:`\alpha=2.5,\tau=7,\sigma=7^{1.5}`,
    shape ``(n, s, s)``, mean zero."""
    resolution = _checks.positive_int("resolution", resolution, minimum=4)
    return grf.periodic(n, resolution, dim=2, seed=seed, device=device, dtype=dtype,
                        **W0_LAW)


def default_dt(resolution: int, scheme: str = "rk3") -> float:
    r"""Default time step :math:`\Delta t = c\cdot 64/s` (a CFL scaling with the grid
    spacing), :math:`c = 10^{-2}` for ``"rk3"`` (checked, see the module notes),
    :math:`2\cdot10^{-3}` for ``"heun"`` and :math:`10^{-3}` for ``"euler"``."""
    resolution = _checks.positive_int("resolution", resolution, minimum=4)
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme must be one of {_SCHEMES}, got {scheme!r}")
    return _DT64[scheme] * 64.0 / resolution


# Spalart, Moser & Rogers (1991): low-storage RK3 for the explicit part with a
# Crank-Nicolson-type implicit part in each sub-step (alpha_k = beta_k).
_RK3_ALPHA = (4.0 / 15.0, 1.0 / 15.0, 1.0 / 6.0)
_RK3_GAMMA = (8.0 / 15.0, 5.0 / 12.0, 3.0 / 4.0)
_RK3_ZETA = (0.0, -17.0 / 60.0, -5.0 / 12.0)


class _Spectral:
    """Wave numbers, Laplacian and de-aliasing mask of an ``s x s`` rFFT grid."""

    def __init__(self, s: int, device: torch.device, dtype: torch.dtype):
        kx = torch.fft.fftfreq(s, d=1.0 / s, dtype=torch.float64)[:, None]
        ky = torch.fft.rfftfreq(s, d=1.0 / s, dtype=torch.float64)[None, :]
        k_max = s // 2
        self.kappa = (4 * math.pi**2 * (kx**2 + ky**2)).to(device, dtype)
        inv = 1.0 / (4 * math.pi**2 * (kx**2 + ky**2))
        inv[0, 0] = 0.0  # the mean of psi is arbitrary: choose 0
        self.inv_kappa = inv.to(device, dtype)
        self.dealias = ((kx.abs() <= 2.0 / 3.0 * k_max)
                        & (ky.abs() <= 2.0 / 3.0 * k_max)).to(device, dtype)
        # derivatives of the Nyquist modes are not real: drop them
        dx = torch.where(kx.abs() == s / 2, 0.0, 2 * math.pi * kx)
        dy = torch.where(ky.abs() == s / 2, 0.0, 2 * math.pi * ky)
        self.dx = dx.to(device, dtype)
        self.dy = dy.to(device, dtype)
        self.s = s

    def advection(self, w_h: torch.Tensor) -> torch.Tensor:
        r""":math:`-D\odot\mathcal F(u\cdot\nabla w)` for ``w_h`` ``(B, s, s//2+1)``."""
        psi_h = w_h * self.inv_kappa
        grads = torch.stack([self.dy * psi_h, -self.dx * psi_h,
                             self.dx * w_h, self.dy * w_h]) * 1j
        u, v, w_x, w_y = torch.fft.irfft2(grads, s=(self.s, self.s))
        adv = torch.fft.rfft2(u * w_x + v * w_y)
        adv[..., 0, 0] = 0.0  # exactly zero in the continuum (a divergence)
        return -self.dealias * adv

    def speed_bound(self, w_h: torch.Tensor) -> float:
        r""":math:`\max(|u| + |v|)` over the batch and the grid."""
        psi_h = w_h.detach() * self.inv_kappa
        uv = torch.fft.irfft2(torch.stack([self.dy * psi_h, -self.dx * psi_h]) * 1j,
                              s=(self.s, self.s))
        return float(uv.abs().sum(0).amax())


def velocity(w: torch.Tensor) -> torch.Tensor:
    r"""Velocity :math:`(u, v) = \nabla^\perp\psi` of vorticity ``w`` ``(..., s, s)``,
    returned as ``(..., 2, s, s)``."""
    _checks.finite_tensor("w", w)
    sp = _Spectral(w.shape[-1], w.device, w.dtype)
    psi_h = torch.fft.rfft2(w) * sp.inv_kappa
    uv = torch.stack([sp.dy * psi_h, -sp.dx * psi_h], dim=-3) * 1j
    return torch.fft.irfft2(uv, s=w.shape[-2:])


def _check_solver_args(viscosity, T, record_steps, dt, scheme, resolution):
    viscosity = _checks.positive("viscosity", viscosity)
    T = _checks.positive("T", T)
    if record_steps is None:
        record_steps = max(1, int(round(T)))
    record_steps = _checks.positive_int("record_steps", record_steps)
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme must be one of {_SCHEMES}, got {scheme!r}")
    dt = default_dt(resolution, scheme) if dt is None else _checks.positive("dt", dt)
    interval = T / record_steps
    # round the step so that every recording time is hit exactly
    steps_per_record = max(1, int(math.ceil(interval / dt - 1e-9)))
    return viscosity, T, record_steps, interval / steps_per_record, steps_per_record


def _check_cfl(dt: float, speed: float, s: int, limit: float, scheme: str,
               t: float) -> None:
    cfl = dt * speed * s
    if not math.isfinite(speed) or cfl > limit:
        safe = limit / (speed * s) if speed > 0 and math.isfinite(speed) else 0.0
        raise ValueError(
            f"dt = {dt:g} is too large for this flow at t = {t:g}: the velocity "
            f"bound max(|u| + |v|) = {speed:.4g} on the {s}x{s} grid gives the "
            f"advective CFL number dt * max(|u| + |v|) * s = {cfl:.3g}, above the "
            f"{scheme} limit {limit:.3g}; use dt <= {safe:.3g}")


def solve(w0: torch.Tensor, viscosity: float, T: float, *,
          record_steps: int | None = None, dt: float | None = None,
          f: torch.Tensor | str | None = "fno", scheme: str = "rk3",
          progress: bool | None = None) -> torch.Tensor:
    r"""Integrate vorticity ``w0`` to time ``T`` and record snapshots.

    Args:
        w0 (Tensor): initial vorticity ``(s, s)`` or ``(B, s, s)`` on :math:`x_k=k/s`
            (even :math:`s\ge4`); the solve runs on its device and in its dtype.
        viscosity (float): :math:`\nu > 0`.
        T (float): final time > 0.
        record_steps (int, optional): number of snapshots, at
            :math:`t_k = kT/\text{record\_steps}`, :math:`k = 1..` ``record_steps``
            (default: one per time unit, :math:`\mathrm{round}(T)`).
        dt (float, optional): time step (default :func:`default_dt`); decreased so
            that each recording interval is a whole number of steps.
        f: forcing: ``"fno"`` (default), ``None`` (unforced) or a tensor ``(s, s)``.
        scheme (str): ``"rk3"`` (default), ``"heun"`` or ``"euler"`` (the FNO
            generator's); see the module notes.
        progress (bool): show a progress bar over time steps.

    Returns:
        ``(B, record_steps, s, s)`` (or ``(record_steps, s, s)`` for an unbatched
        ``w0``).

    Raises:
        ValueError: bad arguments; a time step above the advective CFL limit
            (checked at the start of every recording interval, the message names
            ``dt``, the velocity bound, the limit and a step that satisfies it);
            a solution that became non-finite within an interval.
    """
    _checks.finite_tensor("w0", w0)
    if w0.dim() not in (2, 3) or w0.shape[-1] != w0.shape[-2]:
        raise ValueError("w0 must have shape (s, s) or (B, s, s), got "
                         f"{tuple(w0.shape)}")
    s = w0.shape[-1]
    if s < 4 or s % 2:
        raise ValueError(f"the resolution must be an even integer >= 4, got {s}")
    nu, T, record_steps, dt, per_record = _check_solver_args(
        viscosity, T, record_steps, dt, scheme, s)
    batched = w0.dim() == 3
    w = w0 if batched else w0[None]
    sp = _Spectral(s, w.device, w.dtype)
    if isinstance(f, str):
        if f != "fno":
            raise ValueError(f"f must be 'fno', None or a tensor, got {f!r}")
        f = forcing(s, device=w.device, dtype=w.dtype)
    if f is None:
        f_h = 0.0
    else:
        _checks.finite_tensor("f", f)
        if tuple(f.shape) != (s, s):
            raise ValueError(f"f must have shape {(s, s)}, got {tuple(f.shape)}")
        f_h = torch.fft.rfft2(f.to(w.device, w.dtype))
        f_h[..., 0, 0] = 0.0  # a mean forcing would change the conserved mean
    num = 1.0 - 0.5 * dt * nu * sp.kappa
    den = 1.0 + 0.5 * dt * nu * sp.kappa
    if scheme == "rk3":
        rk3 = [(1.0 - a * dt * nu * sp.kappa, 1.0 / (1.0 + a * dt * nu * sp.kappa),
                g, z) for a, g, z in zip(_RK3_ALPHA, _RK3_GAMMA, _RK3_ZETA)]
    w_h = torch.fft.rfft2(w)
    out = torch.empty((w.shape[0], record_steps, s, s), device=w.device, dtype=w.dtype)
    bar = tqdm(total=record_steps * per_record, desc=f"Navier-Stokes nu={nu:g}",
               progress=progress, leave=False)
    limit = CFL_LIMITS[scheme]
    for k in range(record_steps):
        speed = sp.speed_bound(w_h)
        _check_cfl(dt, speed, s, limit, scheme, k * dt * per_record)
        for _ in range(per_record):
            if scheme == "rk3":
                prev = 0.0
                for num_k, inv_den_k, gamma, zeta in rk3:
                    n_h = sp.advection(w_h) + f_h
                    w_h = (num_k * w_h + dt * (gamma * n_h + zeta * prev)) * inv_den_k
                    prev = n_h
                continue
            n_h = sp.advection(w_h)
            pred = (num * w_h + dt * (n_h + f_h)) / den
            if scheme == "heun":
                pred = (num * w_h + dt * (0.5 * (n_h + sp.advection(pred)) + f_h)) / den
            w_h = pred
        out[:, k] = torch.fft.irfft2(w_h, s=(s, s))
        if not bool(torch.isfinite(out[:, k].detach()).all()):
            t0 = k * dt * per_record
            raise ValueError(
                f"the Navier-Stokes solution became non-finite between t = {t0:g} "
                f"and t = {t0 + dt * per_record:g} with dt = {dt:g} ({scheme}): the "
                f"velocity bound max(|u| + |v|) was {speed:.3g} at t = {t0:g}, "
                f"CFL number {dt * speed * s:.3g} (limit {limit:.3g}); the flow "
                f"accelerated within the interval: use a smaller dt")
        bar.update(per_record)
    bar.close()
    return out if batched else out[0]


def sample(n: int, resolution: int = 64, viscosity: float = 1e-3, T: float = 20.0,
           record_steps: int | None = None, *, dt: float | None = None, seed: int = 0,
           scheme: str = "rk3", batch_size: int | None = None, progress: bool | None = None,
           device=None, dtype: torch.dtype = torch.float32
           ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Draw ``n`` FNO-style Navier–Stokes trajectories.

    Args:
        n (int): number of trajectories.
        resolution (int): grid points per side (even, :math:`\ge4`).
        viscosity (float): :math:`\nu` (the FNO family uses 1e-3, 1e-4, 1e-5).
        T (float): final time (FNO: 50, 30, 20 for the three viscosities).
        record_steps (int, optional): snapshots at :math:`t_k = kT/\text{record\_steps}`
            (default: one per time unit).
        dt (float, optional): time step (default :func:`default_dt`).
        seed (int): seed of the initial-vorticity GRF (device independent).
        scheme (str): ``"rk3"`` (default), ``"heun"`` or ``"euler"``.
        batch_size (int, optional): trajectories integrated at once (default all).
        progress (bool): show a progress bar.
        device: where to integrate (e.g. ``refimpl.device()``); results stay there.
        dtype: float32 (default) or float64; the integration runs in this dtype.

    Returns:
        ``(w0, w)``: ``w0`` of shape ``(n, s, s)`` and ``w`` of shape
        ``(n, record_steps, s, s)`` with ``w[:, k]`` the vorticity at
        :math:`t_{k+1}` (``n * record_steps * s**2`` values: about 1 GB in float32
        for the FNO :math:`\nu = 10^{-3}` set, 1200 × 50 × 64²).
    """
    resolution = _checks.positive_int("resolution", resolution, minimum=4)
    if resolution % 2:
        raise ValueError(f"resolution must be even, got {resolution}")
    _check_solver_args(viscosity, T, record_steps, dt, scheme, resolution)
    n = _checks.positive_int("n", n)
    batch_size = n if batch_size is None else _checks.positive_int("batch_size",
                                                                     batch_size)
    w0 = initial_vorticity(n, resolution, seed=seed, device=device, dtype=dtype)
    parts = [solve(w0[i:i + batch_size], viscosity, T, record_steps=record_steps,
                   dt=dt, scheme=scheme, progress=progress)
             for i in range(0, n, batch_size)]
    return w0, torch.cat(parts)


def sequence(n: int, T_in: int = 10, T_out: int = 10, resolution: int = 64,
             viscosity: float = 1e-5, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The FNO-2D time-stepping task: unit-time snapshots
    :math:`w(1..T_\text{in})` → :math:`w(T_\text{in}+1..T_\text{in}+T_\text{out})`.

    Integrates to :math:`T = T_\text{in} + T_\text{out}` with one snapshot per
    time unit (keyword arguments go to :func:`sample`).

    Returns:
        ``(x, y)`` channels-first: ``x`` of shape ``(n, T_in, s, s)`` and ``y`` of
        shape ``(n, T_out, s, s)``.
    """
    T_in = _checks.positive_int("T_in", T_in)
    T_out = _checks.positive_int("T_out", T_out)
    if "T" in kwargs or "record_steps" in kwargs:
        raise TypeError("sequence sets T and record_steps itself (T = T_in + T_out)")
    _, w = sample(n, resolution, viscosity, float(T_in + T_out), T_in + T_out, **kwargs)
    return w[:, :T_in].contiguous(), w[:, T_in:].contiguous()
