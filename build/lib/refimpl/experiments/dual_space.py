r"""Chapter 3 benchmark: the dual-space multi-scale model against FNO, U-Net and the
dual-space FNO block on Navier–Stokes and Darcy, at matched parameter counts.

Run it from the command line (a GPU is used when present)::

    python -m refimpl.experiments.dual_space --scale paper --out results/dual_space

or from Python with :func:`run_benchmark` and :func:`run_ablation`, as the chapter
does. Every size lives in :data:`PRESETS`.

**Tasks.**

* *Navier–Stokes* (vorticity, periodic torus, FNO forcing and initial law,
  :mod:`refimpl.pde.navier_stokes`): the unit-time snapshots :math:`w(1..10)` are the
  input channels and :math:`w(11..10+T_\text{out})` the output channels, predicted
  **directly** (one forward pass for all output steps), not autoregressively as
  FNO-2D does. ``paper``: :math:`\nu = 10^{-5}`, 10 → 10 steps (the FNO / Transolver
  task), solved on 256² with the solver's time step and sub-sampled to 64² by
  striding, as the FNO data (which used :math:`\Delta t = 10^{-4}`). ``book``:
  :math:`\nu = 10^{-4}` (the FNO's second viscosity; the first 10 of its 20 output
  steps), solved directly on the 32² training grid with :math:`\Delta t = 10^{-2}`.
  At :math:`\nu = 10^{-5}` a 32² simulation is under-resolved (checked against a
  128² solution: up to about 20 % apart after 20 time units); at
  :math:`10^{-4}` it stays within a few per cent, and halving :math:`\Delta t`
  changes it by less than :math:`10^{-3}`. The data are not distributionally
  identical to the FNO files.
* *Darcy* (two-phase coefficient :math:`a\in\{3, 12\}` → pressure :math:`u`,
  :mod:`refimpl.pde.darcy`), solved on a grid ``oversample`` times as fine
  (2 at ``book``, 4 at ``paper``) and sub-sampled.

**Protocol.** All models see the same data, the same loss (relative :math:`L^2`
on physical units, inputs and outputs standardised with one mean and standard
deviation per channel from the training set), the same optimiser (Adam,
learning rate :math:`10^{-3}`, weight decay :math:`10^{-4}`, the FNO paper's),
the same batch size and number of epochs, the same learning-rate schedule
(``paper``: the FNO code's, halving the rate every 100 of 500 epochs; ``book``
and ``smoke``, with a few epochs: cosine decay) and float32 (no mixed
precision). The FNO keeps its published configuration (:math:`m = 12` modes, 4
layers, width 20 on Navier–Stokes and 32 on Darcy, coordinate channels, padding
on Darcy); the other models get the width whose parameter count is closest to
the FNO's (:func:`build_matched_models`, within :math:`\pm10\,\%`). The U-Net
baseline and the multi-scale core have BatchNorm in every residual block, as
CRNO's core and the U-Net baselines of CNO and CROP do; without it the U-Net is
a much weaker baseline (``"UNetPlain"`` measures by how much). The last-epoch
model is scored once on the test set; :math:`\ge 3` training seeds give
mean ± std.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

import refimpl
from refimpl.operators.losses import relative_l2
from refimpl.operators.models.base import count_parameters
from refimpl.operators.models.dual_space import DualSpaceFNO, DualSpaceMultiScale
from refimpl.operators.models.fno import FNO
from refimpl.operators.models.unet import UNet

__all__ = [
    "PRESETS", "PROBLEMS", "MODELS", "EXTRA_MODELS", "ABLATIONS", "Problem",
    "Standardised",
    "load_problem", "model_builders", "match_width", "build_matched_models",
    "error_spectrum", "band_errors", "train_and_evaluate", "BenchmarkResult",
    "run_benchmark", "run_ablation", "summarise", "markdown_table", "write_csv",
    "verdict", "ablation_effects", "plot_error_spectra", "plot_samples", "main",
]

#: Problem names, in table order.
PROBLEMS: tuple[str, ...] = ("navier_stokes", "darcy")
#: Model names, in table order (the first is the parameter-count reference).
MODELS: tuple[str, ...] = ("FNO", "UNet", "DualSpaceFNO", "DualSpaceMultiScale")
#: Further models :func:`run_benchmark` accepts: the U-Net without normalisation
#: layers, to show how much a baseline's details move the comparison.
EXTRA_MODELS: tuple[str, ...] = ("UNetPlain",)
#: Ablation variants of :class:`DualSpaceMultiScale`.
ABLATIONS: tuple[str, ...] = ("full", "no_spectral", "no_multiscale")

_LABELS = {
    "FNO": "FNO", "UNet": "U-Net", "UNetPlain": "U-Net, no normalisation",
    "DualSpaceFNO": "Dual-space FNO (spectral + 3x3)",
    "DualSpaceMultiScale": "Dual-space multi-scale",
    "full": "Dual-space multi-scale (full)",
    "no_spectral": "- spectral lift/projection (point-wise instead)",
    "no_multiscale": "- multi-scale core (single-resolution blocks)",
    "navier_stokes": "Navier-Stokes", "darcy": "Darcy",
}

#: Every size of the experiment, per scale. ``fno`` is the reference configuration
#: (its parameter count is the target of the others); ``dual_modes`` the modes of
#: the dual-space multi-scale model's lift/projection (they cover the 2/3-de-aliased
#: band of the Navier-Stokes data: ``|k| <= 10`` on 32², ``<= 21`` on 64²).
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": dict(
        navier_stokes=dict(n_train=8, n_test=4, resolution=16, viscosity=1e-4,
                           T_in=4, T_out=2, dt=2e-2, fno=dict(modes=4, width=16)),
        darcy=dict(n_train=8, n_test=4, resolution=16, oversample=1,
                   fno=dict(modes=4, width=16, padding=0.125)),
        n_layers=2, unet_depth=2, dual_depth=2, dual_modes=5, n_res=1, n_res_neck=1,
        epochs=2, batch_size=4, seeds=(0, 1), band_split=4, tolerance=0.25,
        ablation_problems=PROBLEMS, norm="batch", optim=dict(scheduler="cosine"),
    ),
    "book": dict(
        navier_stokes=dict(n_train=200, n_test=50, resolution=32, viscosity=1e-4,
                           T_in=10, T_out=10, dt=1e-2, fno=dict(modes=8, width=12)),
        darcy=dict(n_train=200, n_test=50, resolution=32, oversample=2,
                   fno=dict(modes=8, width=12, padding=9 / 85)),
        n_layers=4, unet_depth=3, dual_depth=2, dual_modes=11, n_res=1,
        n_res_neck=2, epochs=15, batch_size=20, seeds=(0, 1, 2), band_split=8,
        tolerance=0.10, ablation_problems=PROBLEMS, norm="batch",
        optim=dict(scheduler="cosine"),
    ),
    "paper": dict(
        navier_stokes=dict(n_train=1000, n_test=200, resolution=64, viscosity=1e-5,
                           T_in=10, T_out=10, dt=None, solve_resolution=256,
                           fno=dict(modes=12, width=20)),
        darcy=dict(n_train=1000, n_test=200, resolution=64, oversample=4,
                   fno=dict(modes=12, width=32, padding=9 / 85)),
        n_layers=4, unet_depth=3, dual_depth=3, dual_modes=22, n_res=1,
        n_res_neck=2, epochs=500, batch_size=20, seeds=(0, 1, 2), band_split=12,
        tolerance=0.10, ablation_problems=PROBLEMS, norm="batch",
        # the FNO paper's schedule: halve the rate every 100 of 500 epochs
        optim=dict(scheduler="step", lr_step_epochs=100, lr_gamma=0.5),
    ),
}
PRESETS["full"] = PRESETS["book"]  # placeholder until the chapter sizes `full`
#: The optimiser shared by every model; a preset's ``optim`` overrides entries.
_OPTIM = dict(lr=1e-3, weight_decay=1e-4, optimizer="adam", scheduler="cosine")


# ------------------------------------------------------------------------ data
@dataclass
class Problem:
    """A train/test split of one operator-learning task.

    Attributes:
        name: ``"navier_stokes"`` or ``"darcy"``.
        x_train, y_train, x_test, y_test: ``(N, C, s, s)`` float32 tensors (CPU).
        info: the generating parameters.
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def out_channels(self) -> int:
        return int(self.y_train.shape[1])

    @property
    def resolution(self) -> int:
        return int(self.x_train.shape[-1])


def _cached(key: str, make: Callable[[], dict[str, Tensor]]) -> dict[str, Tensor]:
    """``make()``, stored under ``key`` as a checked cache entry (a corrupt or
    foreign file is regenerated with a warning; concurrent writers are safe)."""
    from refimpl._io import load_checked, save_checked

    path = refimpl.cache_dir("experiments", "dual_space") / f"{key}-v2.pt"
    data = load_checked(path, what="dual_space cache file", meta={"key": key})
    if data is not None:
        return data
    data = {k: v.detach().cpu().contiguous() for k, v in make().items()}
    save_checked(data, path, key=key)
    return data


def load_problem(name: str, cfg: Mapping[str, Any], *, seed: int = 0,
                 device: torch.device | str | None = None) -> Problem:
    """Generate (or read from the cache) one problem of the benchmark.

    Args:
        name: ``"navier_stokes"`` or ``"darcy"``.
        cfg: the problem's preset, e.g. ``PRESETS["book"]["darcy"]``.
        seed: data seed (the test set is the last ``n_test`` samples of one draw).
        device: where the Navier–Stokes solver runs (default
            :func:`refimpl.device`); the returned tensors are on the CPU.
    """
    if name not in PROBLEMS:
        raise ValueError(f"unknown problem {name!r}; valid: {PROBLEMS}")
    n_train, n_test = int(cfg["n_train"]), int(cfg["n_test"])
    if n_train < 1 or n_test < 1:
        raise ValueError(
            f"n_train and n_test must be positive, got {n_train}, {n_test}")
    n, s = n_train + n_test, int(cfg["resolution"])
    if name == "navier_stokes":
        from refimpl.pde import navier_stokes

        nu, t_in, t_out, dt = cfg["viscosity"], cfg["T_in"], cfg["T_out"], cfg["dt"]
        fine = int(cfg.get("solve_resolution") or s)
        if fine % s:
            raise ValueError(f"solve_resolution={fine} must be a multiple of "
                             f"resolution={s}")
        key = (f"ns_nu{nu:g}_s{s}_solve{fine}_in{t_in}_out{t_out}_dt{dt}_n{n}"
               f"_seed{seed}")

        def make() -> dict[str, Tensor]:
            dev = refimpl.device() if device is None else torch.device(device)
            x, y = navier_stokes.sequence(n, t_in, t_out, resolution=fine,
                                          viscosity=nu, dt=dt, seed=seed,
                                          device=dev, batch_size=200)
            # Solved on a finer grid and sub-sampled by striding, as the FNO data
            # (solved at 256², kept every 4th point).
            r = fine // s
            return {"x": x[..., ::r, ::r], "y": y[..., ::r, ::r]}
        info = dict(viscosity=nu, T_in=t_in, T_out=t_out, dt=dt,
                    solve_resolution=fine)
    else:
        from refimpl.pde import darcy

        over = int(cfg.get("oversample", 1))
        key = f"darcy_s{s}_over{over}_n{n}_seed{seed}"

        def make() -> dict[str, Tensor]:
            a, u = darcy.sample(n, s, seed=seed, oversample=over)
            return {"x": a[:, None], "y": u[:, None]}
        info = dict(oversample=over)
    data = _cached(key, make)
    x, y = data["x"].float(), data["y"].float()
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError(f"{name} data contain NaN/inf (cache {key}); delete the cache "
                         "file or reduce the time step")
    info.update(n_train=n_train, n_test=n_test, resolution=s, seed=seed)
    return Problem(name, x[:n_train], y[:n_train], x[n_train:], y[n_train:], info)


class Standardised(nn.Module):
    r"""Wrap an operator so that it maps physical inputs to physical outputs,
    :math:`x \mapsto \sigma_y\,\mathcal G_\theta\big((x-\mu_x)/\sigma_x\big) + \mu_y`,
    with one mean and standard deviation per channel (fitted on the training set).

    Scalar statistics, unlike the FNO code's point-wise normaliser, do not depend on
    the grid, so the wrapped model still accepts any resolution.
    """

    def __init__(self, model: nn.Module, x: Tensor, y: Tensor) -> None:
        super().__init__()
        self.model = model
        dims = (0, 2, 3)
        self.register_buffer("x_mean", x.mean(dims, keepdim=True)[0])
        self.register_buffer("x_std", x.std(dims, keepdim=True)[0] + 1e-6)
        self.register_buffer("y_mean", y.mean(dims, keepdim=True)[0])
        self.register_buffer("y_std", y.std(dims, keepdim=True)[0] + 1e-6)

    def forward(self, x: Tensor) -> Tensor:
        return self.model((x - self.x_mean) / self.x_std) * self.y_std + self.y_mean


# ---------------------------------------------------------------------- models
Builder = Callable[[int], nn.Module]


def model_builders(problem: str, in_channels: int, out_channels: int,
                   P: Mapping[str, Any], *, resolution: int | None = None
                   ) -> dict[str, Builder]:
    """``width -> model`` constructors of the compared models for one problem.

    Every model gets coordinate channels (the Navier–Stokes forcing and the Darcy
    walls depend on position) and the FNO's mode count; the dual-space models run
    on a latent grid equal to the training grid. The FNO builder ignores nothing: it
    is called with the reference width to set the parameter budget. The U-Net and
    the multi-scale core of the dual-space model use the normalisation
    ``P["norm"]`` (BatchNorm, as in CRNO's core and the U-Net baselines of CNO and
    CROP); ``"UNetPlain"`` is the U-Net without it.
    """
    cfg = P[problem]
    s = int(cfg["resolution"] if resolution is None else resolution)
    fno_cfg = cfg["fno"]
    modes, pad = int(fno_cfg["modes"]), float(fno_cfg.get("padding", 0.0))
    n_layers = int(P["n_layers"])
    norm = P.get("norm")
    return {
        "FNO": lambda w: FNO(in_channels, out_channels, modes=modes, width=w,
                             n_layers=n_layers, padding=pad, grid=True),
        "UNet": lambda w: UNet(in_channels, out_channels, width=w,
                               depth=int(P["unet_depth"]), grid=True, norm=norm),
        "UNetPlain": lambda w: UNet(in_channels, out_channels, width=w,
                                    depth=int(P["unet_depth"]), grid=True),
        "DualSpaceFNO": lambda w: DualSpaceFNO(
            in_channels, out_channels, modes=modes, width=w, n_layers=n_layers,
            latent_resolution=s, padding=math.ceil(pad * s), coordinates=True),
        "DualSpaceMultiScale": lambda w: DualSpaceMultiScale(
            in_channels, out_channels, width=w, modes=int(P["dual_modes"]),
            latent_resolution=s, depth=int(P["dual_depth"]), n_res=int(P["n_res"]),
            n_res_neck=int(P["n_res_neck"]), coordinates=True, norm=norm),
    }


def _ablation_builders(in_channels: int, out_channels: int, P: Mapping[str, Any],
                       resolution: int) -> dict[str, Builder]:
    def make(spectral: bool, multiscale: bool) -> Builder:
        return lambda w: DualSpaceMultiScale(
            in_channels, out_channels, width=w, modes=int(P["dual_modes"]),
            latent_resolution=resolution, depth=int(P["dual_depth"]),
            n_res=int(P["n_res"]), n_res_neck=int(P["n_res_neck"]),
            spectral=spectral, multiscale=multiscale, coordinates=True,
            norm=P.get("norm"))
    return {"full": make(True, True), "no_spectral": make(False, True),
            "no_multiscale": make(True, False)}


def _count_on_meta(builder: Builder, width: int) -> int:
    with torch.device("meta"):
        return count_parameters(builder(width))


def match_width(builder: Builder, target: int, *, max_width: int = 4096
                ) -> tuple[int, int]:
    """The width whose parameter count is closest to ``target``.

    Parameter counts grow with the width, so a bisection over integers finds the
    two widths around the target; models are built on the ``meta`` device (no
    memory, no initialisation cost).

    Returns:
        ``(width, n_params)``.
    """
    if not isinstance(target, int) or target < 1:
        raise ValueError(
            f"target must be a positive number of parameters, got {target!r}")
    lo, hi = 1, 1
    while _count_on_meta(builder, hi) < target:
        lo, hi = hi, hi * 2
        if hi > max_width:
            raise ValueError(f"no width <= {max_width} reaches {target} parameters")
    while hi - lo > 1:  # invariant: count(lo) < target <= count(hi), or lo == hi == 1
        mid = (lo + hi) // 2
        if _count_on_meta(builder, mid) < target:
            lo = mid
        else:
            hi = mid
    best = min({lo, hi}, key=lambda w: abs(_count_on_meta(builder, w) - target))
    return best, _count_on_meta(builder, best)


def build_matched_models(builders: Mapping[str, Builder], *, reference: str = "FNO",
                         reference_width: int | None = None,
                         target_params: int | None = None, tolerance: float = 0.10,
                         names: Iterable[str] | None = None, seed: int | None = None
                         ) -> dict[str, tuple[nn.Module, int]]:
    """Build every model at (about) the same parameter count.

    The target is ``target_params`` if given, else the parameter count of
    ``builders[reference](reference_width)`` (the reference keeps that width).
    Every other model gets the width of :func:`match_width`.

    Args:
        builders: ``name -> (width -> model)``, e.g. :func:`model_builders`.
        reference: the model that sets the budget.
        reference_width: its width (needed unless ``target_params`` is given).
        target_params: an explicit budget.
        tolerance: the largest admissible relative deviation from the target.
        names: the models to build (default: all of ``builders``).
        seed: if given, :func:`refimpl.seed_everything` is called with it before each
            model is built, so a model's initial weights do not depend on which
            other models are built with it.

    Returns:
        ``name -> (model, width)``, models freshly initialised on the CPU.

    Raises:
        ValueError: if a model cannot be brought within ``tolerance`` of the target.
    """
    names = list(builders if names is None else names)
    unknown = [n for n in names if n not in builders]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {sorted(builders)}")
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance must lie in (0, 1), got {tolerance}")
    if target_params is None:
        if reference not in builders or reference_width is None:
            raise ValueError("give target_params, or a reference model and its width")
        target_params = _count_on_meta(builders[reference], int(reference_width))
    out: dict[str, tuple[nn.Module, int]] = {}
    for name in names:
        if name == reference and reference_width is not None:
            width = int(reference_width)
            n = _count_on_meta(builders[name], width)
        else:
            width, n = match_width(builders[name], int(target_params))
        if abs(n - target_params) > tolerance * target_params:
            raise ValueError(
                f"{name}: the closest width {width} gives {n} parameters, more than "
                f"{tolerance:.0%} away from the target {target_params}")
        if seed is not None:
            refimpl.seed_everything(int(seed))
        out[name] = (builders[name](width), width)
    return out


# -------------------------------------------------------------------- metrics
def _check_pair(pred: Tensor, truth: Tensor) -> None:
    if not isinstance(pred, Tensor) or not isinstance(truth, Tensor):
        raise TypeError("pred and truth must be tensors")
    if pred.shape != truth.shape or pred.dim() != 4:
        raise ValueError("pred and truth must have the same (B, C, H, W) shape, got "
                         f"{tuple(pred.shape)} and {tuple(truth.shape)}")


def _radial_index(h: int, w: int, device: torch.device) -> Tensor:
    k1 = torch.fft.fftfreq(h, 1.0 / h, device=device)
    k2 = torch.fft.fftfreq(w, 1.0 / w, device=device)
    return torch.sqrt(k1[:, None] ** 2 + k2[None, :] ** 2).round().long()


def error_spectrum(pred: Tensor, truth: Tensor) -> tuple[Tensor, Tensor]:
    r"""Radially binned energy spectrum of the error :math:`e = \hat y - y`,

    .. math::
        E(k) = \frac{1}{BC}\sum_{b,c}\ \sum_{\mathbf k:\ \mathrm{round}|\mathbf k| = k}
        \big|\hat e_{b,c}(\mathbf k)\big|^2,
        \qquad \hat e = \mathrm{FFT2}(e)\ (\texttt{norm="forward"}),

    so that :math:`\sum_k E(k)` is the mean squared error over grid points (Parseval).

    Args:
        pred, truth: ``(B, C, H, W)``.

    Returns:
        ``(k, E)``: integer wavenumbers ``0..k_max`` and the energy per bin (float64).
    """
    _check_pair(pred, truth)
    e = (pred - truth).double()
    power = torch.fft.fft2(e, norm="forward").abs().square().mean((0, 1))
    idx = _radial_index(*e.shape[-2:], e.device).flatten()
    energy = torch.zeros(int(idx.max()) + 1, dtype=power.dtype, device=e.device)
    energy.scatter_add_(0, idx, power.flatten())
    return torch.arange(energy.numel(), device=e.device), energy


def band_errors(pred: Tensor, truth: Tensor, k_split: float) -> dict[str, float]:
    r"""Relative error split into low (:math:`|\mathbf k| \le k_s`) and high
    wavenumbers, per sample and averaged,

    .. math::
        \varepsilon_\text{low} = \frac{\Vert P_{\le k_s} e\Vert}{\Vert y\Vert},\quad
        \varepsilon_\text{high} = \frac{\Vert P_{> k_s} e\Vert}{\Vert y\Vert},\quad
        \varepsilon_\text{low}^2 + \varepsilon_\text{high}^2
        = \Vert e\Vert^2/\Vert y\Vert^2\ \text{(per sample)}.

    Returns:
        ``{"low": ..., "high": ..., "total": ...}`` (means over samples).
    """
    _check_pair(pred, truth)
    if not k_split > 0:
        raise ValueError(f"k_split must be positive, got {k_split}")
    e_hat = torch.fft.fft2((pred - truth).double(), norm="forward")
    power = e_hat.abs().square()
    k_abs = torch.sqrt(torch.fft.fftfreq(pred.shape[-2], 1.0 / pred.shape[-2],
                                         device=pred.device)[:, None] ** 2
                       + torch.fft.fftfreq(pred.shape[-1], 1.0 / pred.shape[-1],
                                           device=pred.device)[None, :] ** 2)
    low = (power * (k_abs <= k_split)).sum((1, 2, 3))
    high = (power * (k_abs > k_split)).sum((1, 2, 3))
    ref = torch.fft.fft2(truth.double(), norm="forward").abs().square().sum((1, 2, 3))
    return {"low": float((low / ref).sqrt().mean()),
            "high": float((high / ref).sqrt().mean()),
            "total": float(((low + high) / ref).sqrt().mean())}


# ------------------------------------------------------------------ training
@torch.no_grad()
def _predict(model: nn.Module, x: Tensor, device: torch.device, batch: int = 50
             ) -> Tensor:
    model.eval()
    return torch.cat([model(x[i:i + batch].to(device)).float().cpu()
                      for i in range(0, x.shape[0], batch)])


def train_and_evaluate(model: nn.Module, problem: Problem, *, epochs: int,
                       batch_size: int, seed: int = 0, band_split: float = 8,
                       device: torch.device | str | None = None,
                       progress: bool | None = None,
                       optim: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Train one (unwrapped) model on ``problem`` with the shared protocol and score
    it on the test set. ``optim`` overrides entries of the shared optimiser settings
    (Adam, learning rate 1e-3, weight decay 1e-4, cosine decay), e.g. a preset's
    ``{"scheduler": "step", "lr_step_epochs": 100, "lr_gamma": 0.5}``.

    Returns:
        A dict with ``rel_l2`` (test relative L2, mean over samples), ``params``,
        ``sec_per_epoch``, the error spectrum ``k``/``spectrum``, the band errors
        ``low``/``high`` and the trained ``model`` (wrapped in :class:`Standardised`).
    """
    from refimpl.training import fit

    device = refimpl.device() if device is None else torch.device(device)
    wrapped = Standardised(model, problem.x_train, problem.y_train)
    train = TensorDataset(problem.x_train, problem.y_train)
    result = fit(wrapped, train, epochs=int(epochs), batch_size=int(batch_size),
                 loss_fn=relative_l2, seed=seed, device=device, amp=False,
                 progress=progress, **{**_OPTIM, **(optim or {})})
    pred = _predict(result.model, problem.x_test, device)
    k, spec = error_spectrum(pred, problem.y_test)
    bands = band_errors(pred, problem.y_test, band_split)
    seconds = [h["seconds"] for h in result.history]
    return dict(rel_l2=float(relative_l2(pred, problem.y_test)),
                params=count_parameters(model),
                sec_per_epoch=float(statistics.fmean(seconds)),
                k=k.cpu(), spectrum=spec.cpu(), low=bands["low"], high=bands["high"],
                model=result.model)


@dataclass
class BenchmarkResult:
    """Per-run rows, the mean ± std summary and the error spectra of a benchmark.

    Attributes:
        runs: one dict per (problem, model, seed): ``problem``, ``model``, ``seed``,
            ``width``, ``params``, ``rel_l2``, ``low``, ``high``, ``sec_per_epoch``,
            ``wall_seconds``.
        summary: one dict per (problem, model), from :func:`summarise`.
        spectra: ``(problem, model) -> (k, E(k))`` averaged over seeds.
        models: ``(problem, model) -> trained model`` of the first seed.
        problems: the :class:`Problem` objects used.
        run_spectra: the error spectrum ``E(k)`` of each run, aligned with ``runs``.
    """

    runs: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    spectra: dict[tuple[str, str], tuple[Tensor, Tensor]]
    models: dict[tuple[str, str], nn.Module]
    problems: dict[str, Problem]
    run_spectra: list[Tensor] = field(default_factory=list)


_Reuse = Mapping[tuple[str, str, int], tuple[dict, Tensor, nn.Module]]


def _run(problems: Sequence[str], P: Mapping[str, Any], *, names: Sequence[str],
         seeds: Sequence[int], device, progress: bool, ablation: bool,
         data: Mapping[str, Problem] | None, reuse: _Reuse | None = None
         ) -> BenchmarkResult:
    device = refimpl.device() if device is None else torch.device(device)
    reuse = reuse or {}
    runs, run_spectra, models, used = [], [], {}, {}
    for pname in problems:
        problem = (data or {}).get(pname) or load_problem(pname, P[pname],
                                                           device=device)
        used[pname] = problem
        if ablation:
            builders = _ablation_builders(problem.in_channels, problem.out_channels,
                                          P, problem.resolution)
            ref = dict(target_params=_count_on_meta(
                model_builders(pname, problem.in_channels, problem.out_channels,
                               P)["FNO"], int(P[pname]["fno"]["width"])))
        else:
            builders = model_builders(pname, problem.in_channels,
                                      problem.out_channels, P)
            ref = dict(reference="FNO", reference_width=int(P[pname]["fno"]["width"]))
        for name in names:
            if name not in builders:
                raise ValueError(f"unknown model {name!r}; valid: {sorted(builders)}")
        for seed in seeds:
            seed = int(seed)
            todo = [n for n in names if (pname, n, seed) not in reuse]
            built = build_matched_models(builders, names=todo, seed=seed,
                                         tolerance=float(P["tolerance"]), **ref)
            for name in names:
                if name not in built:  # an identical run was done before: reuse it
                    row, spectrum, model = reuse[(pname, name, seed)]
                    runs.append(dict(row, model=name))
                    run_spectra.append(spectrum)
                    models.setdefault((pname, name), model)
                    continue
                model, width = built[name]
                t0 = time.perf_counter()
                out = train_and_evaluate(
                    model, problem, epochs=int(P["epochs"]),
                    batch_size=int(P["batch_size"]), seed=seed,
                    band_split=float(P["band_split"]), device=device,
                    progress=progress, optim=P.get("optim"))
                runs.append(dict(problem=pname, model=name, seed=seed,
                                 width=width, params=out["params"],
                                 rel_l2=out["rel_l2"], low=out["low"],
                                 high=out["high"],
                                 sec_per_epoch=out["sec_per_epoch"],
                                 wall_seconds=time.perf_counter() - t0))
                run_spectra.append(out["spectrum"])
                models.setdefault((pname, name), out["model"])
    groups: dict[tuple[str, str], list[Tensor]] = {}
    for row, spectrum in zip(runs, run_spectra, strict=True):
        groups.setdefault((row["problem"], row["model"]), []).append(spectrum)
    spectra = {key: (torch.arange(specs[0].numel()), torch.stack(specs).mean(0))
               for key, specs in groups.items()}
    return BenchmarkResult(runs, summarise(runs), spectra, models, used, run_spectra)


def run_benchmark(P: Mapping[str, Any] | None = None, *,
                  problems: Sequence[str] = PROBLEMS, models: Sequence[str] = MODELS,
                  seeds: Sequence[int] | None = None, device=None,
                  progress: bool | None = None,
                  data: Mapping[str, Problem] | None = None) -> BenchmarkResult:
    """Train and score every model on every problem for every seed.

    Args:
        P: a preset (default ``refimpl.preset(PRESETS)``, i.e. the current scale).
        problems, models: subsets of :data:`PROBLEMS` and :data:`MODELS`.
        seeds: training seeds (default ``P["seeds"]``).
        device: default :func:`refimpl.device`.
        progress: show tqdm bars.
        data: already loaded problems (``name -> Problem``) to reuse.
    """
    P = refimpl.preset(PRESETS) if P is None else P
    bad = [p for p in problems if p not in PROBLEMS]
    if bad:
        raise ValueError(f"unknown problem(s) {bad}; valid: {PROBLEMS}")
    return _run(list(problems), P, names=list(models),
                seeds=list(P["seeds"] if seeds is None else seeds), device=device,
                progress=progress, ablation=False, data=data)


def run_ablation(P: Mapping[str, Any] | None = None, *,
                 problems: Sequence[str] | None = None,
                 variants: Sequence[str] = ABLATIONS,
                 seeds: Sequence[int] | None = None, device=None,
                 progress: bool | None = None,
                 data: Mapping[str, Problem] | None = None,
                 baseline: BenchmarkResult | None = None) -> BenchmarkResult:
    """Train the dual-space multi-scale model with its spectral part removed
    (point-wise lift/projection) or its multi-scale part removed (all residual blocks
    on the latent grid), each at the FNO's parameter budget.

    Args:
        P: a preset (default: the current scale's).
        problems: default ``P["ablation_problems"]``.
        variants: a subset of :data:`ABLATIONS`.
        baseline: a :func:`run_benchmark` result on the same preset; its
            ``DualSpaceMultiScale`` runs are the ``"full"`` variant (same width,
            initial weights and training seed, so the run would be identical) and
            are reused instead of trained again.
    """
    P = refimpl.preset(PRESETS) if P is None else P
    problems = list(P["ablation_problems"] if problems is None else problems)
    bad = [p for p in problems if p not in PROBLEMS]
    if bad:
        raise ValueError(f"unknown problem(s) {bad}; valid: {PROBLEMS}")
    unknown = [v for v in variants if v not in ABLATIONS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; valid: {ABLATIONS}")
    reuse = {}
    if baseline is not None and "full" in variants:
        for row, spectrum in zip(baseline.runs, baseline.run_spectra, strict=True):
            key = (row["problem"], "DualSpaceMultiScale")
            if row["problem"] in problems and row["model"] == key[1]:
                reuse[(row["problem"], "full", int(row["seed"]))] = (
                    row, spectrum, baseline.models.get(key))
    return _run(problems, P, names=list(variants),
                seeds=list(P["seeds"] if seeds is None else seeds), device=device,
                progress=progress, ablation=True, data=data, reuse=reuse)


# -------------------------------------------------------------------- tables
def summarise(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std over seeds of each (problem, model): ``rel_l2_mean``,
    ``rel_l2_std`` (sample std; 0 for one seed), ``low``, ``high``, ``params``,
    ``sec_per_epoch``, ``n_seeds``, in first-seen order."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["problem"], r["model"]), []).append(r)
    out = []
    for (pname, name), rows in groups.items():
        errs = [r["rel_l2"] for r in rows]
        out.append(dict(
            problem=pname, model=name, params=rows[0]["params"],
            rel_l2_mean=statistics.fmean(errs),
            rel_l2_std=statistics.stdev(errs) if len(errs) > 1 else 0.0,
            low=statistics.fmean(r["low"] for r in rows),
            high=statistics.fmean(r["high"] for r in rows),
            sec_per_epoch=statistics.fmean(r["sec_per_epoch"] for r in rows),
            n_seeds=len(rows)))
    for pname in {s["problem"] for s in out}:
        rows = [s for s in out if s["problem"] == pname]
        best = min(rows, key=lambda s: s["rel_l2_mean"])
        for s in rows:
            s["best"] = s is best
    return out


def markdown_table(summary: Sequence[Mapping[str, Any]], *, digits: int = 4) -> str:
    """The summary as a Markdown table (best mean error per problem in bold)."""
    lines = ["| Problem | Model | Parameters | Test rel. L2 (mean ± std) "
             "| low-k error | high-k error | s / epoch | seeds |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for s in summary:
        err = f"{s['rel_l2_mean']:.{digits}f} ± {s['rel_l2_std']:.{digits}f}"
        if s.get("best"):
            err = f"**{err}**"
        lines.append(
            f"| {_LABELS.get(s['problem'], s['problem'])} "
            f"| {_LABELS.get(s['model'], s['model'])} | {s['params']:,} | {err} "
            f"| {s['low']:.{digits}f} | {s['high']:.{digits}f} "
            f"| {s['sec_per_epoch']:.2f} | {s['n_seeds']} |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write dict rows (the union of their keys as columns) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return path


def verdict(summary: Sequence[Mapping[str, Any]], model: str = "DualSpaceMultiScale"
            ) -> str:
    """One line per problem: the model with the lowest mean test error, and where
    ``model`` stands (rank, and its gap to the best other model in units of the
    larger of the two seed standard deviations)."""
    lines = []
    for pname in dict.fromkeys(s["problem"] for s in summary):
        rows = sorted((s for s in summary if s["problem"] == pname),
                      key=lambda s: s["rel_l2_mean"])
        best = rows[0]
        line = (f"{_LABELS.get(pname, pname)}: lowest error "
                f"{_LABELS.get(best['model'], best['model'])} "
                f"({best['rel_l2_mean']:.4f})")
        mine = [i for i, s in enumerate(rows) if s["model"] == model]
        if mine and len(rows) > 1:
            i = mine[0]
            ours = rows[i]
            other = rows[1] if i == 0 else rows[0]
            spread = max(ours["rel_l2_std"], other["rel_l2_std"])
            gap = other["rel_l2_mean"] - ours["rel_l2_mean"]
            sigmas = f"{gap / spread:+.1f} std" if spread > 0 else "n/a std"
            line += (f"; {_LABELS.get(model, model)} ranks {i + 1}/{len(rows)}, "
                     f"{gap:+.4f} ({sigmas}) vs "
                     f"{_LABELS.get(other['model'], other['model'])}")
        lines.append(line)
    return "\n".join(lines)


def ablation_effects(summary: Sequence[Mapping[str, Any]], full: str = "full"
                     ) -> str:
    """One line per ablated variant: how much its mean test error differs from the
    full model's, in absolute terms and in units of the larger seed standard
    deviation, and whether the removed part therefore helped at this budget."""
    parts = {"no_spectral": "the spectral lift/projection",
             "no_multiscale": "the multi-scale core"}
    lines = []
    for pname in dict.fromkeys(s["problem"] for s in summary):
        rows = {s["model"]: s for s in summary if s["problem"] == pname}
        if full not in rows:
            continue
        ref = rows[full]
        for name, s in rows.items():
            if name == full:
                continue
            delta = s["rel_l2_mean"] - ref["rel_l2_mean"]
            spread = max(s["rel_l2_std"], ref["rel_l2_std"])
            sigmas = f"{delta / spread:+.1f} std" if spread > 0 else "n/a std"
            if spread > 0 and abs(delta) <= 2 * spread:
                effect = "no clear effect (within 2 std)"
            else:
                effect = "it helped" if delta > 0 else "it hurt"
            lines.append(f"{_LABELS.get(pname, pname)}: removing "
                         f"{parts.get(name, name)} changes the error by "
                         f"{delta:+.4f} ({sigmas}): {effect} at this budget")
    return "\n".join(lines)


def plot_error_spectra(result: BenchmarkResult, *, k_split: float | None = None):
    """One panel per problem: the radially binned error spectrum :math:`E(k)` of
    every model (mean over seeds, log scale), the spectrum of the test targets
    themselves (dashed: the error of predicting zero) when the problem's data are
    in ``result.problems``, and an optional vertical line at the low/high split.
    Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    from refimpl.plotting import PAGE_WIDTH_IN

    problems = list(dict.fromkeys(p for p, _ in result.spectra))
    width = min(PAGE_WIDTH_IN, 5.2 * len(problems))
    fig, axes = plt.subplots(1, len(problems), figsize=(width, 3.8), squeeze=False)
    for ax, pname in zip(axes[0], problems, strict=True):
        for (p, name), (k, energy) in result.spectra.items():
            if p == pname:
                ax.semilogy(k[1:].numpy(), energy[1:].clamp_min(1e-30).numpy(),
                            label=_LABELS.get(name, name))
        prob = result.problems.get(pname)
        if prob is not None:
            k, energy = error_spectrum(torch.zeros_like(prob.y_test), prob.y_test)
            ax.semilogy(k[1:].numpy(), energy[1:].clamp_min(1e-30).numpy(),
                        color="black", ls="--", lw=1, label="target (predict 0)")
        if k_split is not None:
            ax.axvline(k_split, color="grey", ls=":", lw=1)
        ax.set_xlabel("wavenumber |k|")
        ax.set_ylabel("error energy E(k)")
        ax.set_title(_LABELS.get(pname, pname))
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_samples(problems: Mapping[str, Problem], index: int = 0):
    """Input and target of one test sample per problem (for Navier-Stokes the last
    input and the last target snapshot). Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(problems), 2, figsize=(6.4, 3.0 * len(problems)),
                             squeeze=False)
    for row, (pname, prob) in zip(axes, problems.items(), strict=True):
        x, y = prob.x_test[index, -1], prob.y_test[index, -1]
        names = (("w(t = 10)", "w(t = 10 + T_out)") if pname == "navier_stokes"
                 else ("coefficient a", "pressure u"))
        for ax, field_, title in zip(row, (x, y), names, strict=True):
            im = ax.imshow(field_.numpy(), origin="lower", cmap="RdBu_r"
                           if pname == "navier_stokes" else "viridis")
            ax.set_title(f"{_LABELS.get(pname, pname)}: {title}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def _spectra_rows(result: BenchmarkResult) -> list[dict[str, Any]]:
    return [dict(problem=p, model=m, k=int(k), energy=float(e))
            for (p, m), (ks, es) in result.spectra.items()
            for k, e in zip(ks, es, strict=True)]


# ------------------------------------------------------------------------ CLI
def main(argv: Sequence[str] | None = None) -> BenchmarkResult:
    """``python -m refimpl.experiments.dual_space --scale {smoke,book,paper} --out
    DIR``: writes ``runs.csv``, ``summary.csv``, ``summary.md``, ``spectra.csv`` and
    the same ``ablation_*`` files to ``DIR``; prints the Markdown tables."""
    parser = argparse.ArgumentParser(
        prog="python -m refimpl.experiments.dual_space", description=__doc__.split(
            "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=refimpl.SCALES, default=None,
                        help="preset (default: REFIMPL_SCALE, else paper on a GPU, "
                             "book on a CPU)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--problems", nargs="+", choices=PROBLEMS, default=PROBLEMS)
    parser.add_argument("--models", nargs="+", choices=MODELS + EXTRA_MODELS,
                        default=MODELS)
    parser.add_argument("--seeds", type=int, default=None,
                        help="number of seeds 0..n-1 (default: the preset's)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the preset's epochs")
    parser.add_argument("--no-ablation", action="store_true")
    parser.add_argument("--device", default=None, help="default: cuda if available")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)

    P = dict(PRESETS[args.scale or refimpl.scale()])
    if args.epochs is not None:
        if args.epochs < 1:
            parser.error("--epochs must be positive")
        P["epochs"] = args.epochs
    seeds = None
    if args.seeds is not None:
        if args.seeds < 1:
            parser.error("--seeds must be positive")
        seeds = list(range(args.seeds))
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    result = run_benchmark(P, problems=args.problems, models=args.models, seeds=seeds,
                           device=args.device, progress=args.progress)
    _write_outputs(result, out)
    if not args.no_ablation:
        abl = run_ablation(P, seeds=seeds, device=args.device, progress=args.progress,
                           data=result.problems, baseline=result)
        _write_outputs(abl, out, prefix="ablation_")
    return result


def _write_outputs(result: BenchmarkResult, out: Path, prefix: str = "") -> None:
    """``{prefix}runs.csv``, ``summary.csv``, ``spectra.csv`` and ``summary.md``
    in ``out``; the Markdown table is also printed."""
    write_csv(result.runs, out / f"{prefix}runs.csv")
    write_csv(result.summary, out / f"{prefix}summary.csv")
    write_csv(_spectra_rows(result), out / f"{prefix}spectra.csv")
    table = markdown_table(result.summary)
    (out / f"{prefix}summary.md").write_text(table)
    print(table)


if __name__ == "__main__":  # pragma: no cover
    main()
