"""Accuracy of the Navier–Stokes data as generated for the book: a solve on the
training grid (32² or 64², the solver's default time step) against a 128² solve
of the same initial vorticity, and against the same grid with half the time step.

The initial vorticity is drawn on the 128² grid (the FNO law) and its Fourier
modes are truncated to the coarse grid, so both solves start from the same
band-limited field; the 128² solution is compared at the coarse grid's points
(every 128/s-th point, which is exact for the sampled field). Prints the relative
L2 difference per recorded time; the numbers quoted in
``refimpl.pde.navier_stokes`` come from this script::

    python benchmarks/ns_accuracy.py --viscosity 1e-4 --T 20 --n 4
"""

from __future__ import annotations

import argparse
import time

import torch

from refimpl.pde import navier_stokes as ns


def truncate(w: torch.Tensor, s: int) -> torch.Tensor:
    """Keep the Fourier modes of ``w`` (``(B, S, S)``) that an ``s``-grid holds
    (Nyquist dropped) and sample on the ``s``-grid."""
    S = w.shape[-1]
    w_h = torch.fft.rfft2(w)
    out = torch.zeros(w.shape[0], s, s // 2 + 1, dtype=w_h.dtype)
    k = s // 2
    out[:, :k, :k] = w_h[:, :k, :k]
    out[:, -k + 1:, :k] = w_h[:, -k + 1:, :k]
    return torch.fft.irfft2(out * (s / S) ** 2, s=(s, s))


def rel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).flatten(-2).norm(dim=-1) / b.flatten(-2).norm(dim=-1)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--viscosity", type=float, default=1e-4)
    ap.add_argument("--T", type=float, default=20.0)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--grids", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--fine", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.time()
    w_fine0 = ns.initial_vorticity(args.n, args.fine, seed=args.seed,
                                   dtype=torch.float64)
    s_min = min(args.grids)
    w_fine0 = truncate(w_fine0, s_min)  # band-limited to the coarsest grid
    w_fine0 = torch.fft.irfft2(
        _pad(torch.fft.rfft2(w_fine0), args.fine) * (args.fine / s_min) ** 2,
        s=(args.fine, args.fine))
    ref = ns.solve(w_fine0, args.viscosity, args.T)
    print(f"reference {args.fine}² (dt {ns.default_dt(args.fine):g}): "
          f"{time.time() - t0:.0f} s")
    times = torch.arange(1, ref.shape[1] + 1) * args.T / ref.shape[1]
    for s in args.grids:
        w0 = truncate(w_fine0, s)
        sol = ns.solve(w0, args.viscosity, args.T)
        half = ns.solve(w0, args.viscosity, args.T, dt=ns.default_dt(s) / 2)
        stride = args.fine // s
        e_grid = rel(sol, ref[..., ::stride, ::stride]).amax(0)
        e_dt = rel(sol, half).amax(0)
        print(f"\n{s}² (dt {ns.default_dt(s):g}), nu = {args.viscosity:g}: max over "
              f"{args.n} samples of the relative L2 difference")
        print("   t    vs 128² solve    vs dt/2")
        for t, a, b in zip(times, e_grid, e_dt):
            if float(t) in (1.0, 5.0) or float(t) % 5 == 0:
                print(f"{float(t):5.1f}    {float(a):12.2e}    {float(b):8.1e}")
    print(f"\nwall time {time.time() - t0:.0f} s")


def _pad(w_h: torch.Tensor, S: int) -> torch.Tensor:
    """Zero-pad rFFT coefficients of an ``s``-grid to an ``S``-grid."""
    s = w_h.shape[-2]
    out = torch.zeros(w_h.shape[0], S, S // 2 + 1, dtype=w_h.dtype)
    k = s // 2
    out[:, :k, :k] = w_h[:, :k, :k]
    out[:, -k + 1:, :k] = w_h[:, -k + 1:, :k]
    return out


if __name__ == "__main__":
    main()
