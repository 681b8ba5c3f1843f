"""Figures of chapter 4: schedules, Gaussianity curves, training curves and sample
galleries (matplotlib; every function returns its ``Figure``)."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import torch

from refimpl.plotting import PAGE_WIDTH_IN

from .edm import SampleResult
from .gaussianity import GaussianityCurves, PerMoleculeTest
from .reference import reference_variance
from .schedules import NoiseSchedule

__all__ = [
    "plot_schedule",
    "plot_curves",
    "plot_training",
    "plot_samples",
    "plot_pass_rates",
]


def plot_schedule(
    schedules: Mapping[str, NoiseSchedule],
    *,
    t_star_frac: Optional[float] = None,
    v_hat: Optional[Mapping[str, float]] = None,
):
    """:math:`\\alpha_t`, :math:`\\log\\mathrm{SNR}_t` and :math:`\\tilde v_t` against
    :math:`t/T` for several schedules (and data variances)."""
    fig, axes = plt.subplots(1, 3, figsize=(PAGE_WIDTH_IN, 2.8))
    for label, sch in schedules.items():
        t = torch.arange(sch.T + 1)
        tau = (t / sch.T).numpy()
        axes[0].plot(tau, sch.alpha(t).numpy(), label=label)
        axes[1].plot(tau[:-1], -sch.gamma(t).numpy()[:-1], label=label)
        for name, v in (v_hat or {}).items():
            axes[2].plot(
                tau, reference_variance(sch, t, v).numpy(), label=f"{label}, {name}"
            )
    axes[0].set(xlabel="t / T", ylabel=r"$\alpha_t$", title="signal scale")
    axes[1].set(
        xlabel="t / T", ylabel=r"$\log \mathrm{SNR}_t$", title="log signal-to-noise"
    )
    axes[2].set(xlabel="t / T", ylabel=r"$\tilde v_t$", title="reference variance")
    for ax in axes:
        if t_star_frac is not None:
            ax.axvline(t_star_frac, color="k", ls=":", lw=1)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_curves(
    curves: Mapping[str, GaussianityCurves],
    stats: Sequence[str],
    *,
    titles: Optional[Sequence[str]] = None,
    eps_factor: float = 1.0,
):
    """Excess of each statistic over its reference floor against :math:`t/T`, one
    panel per statistic and one line per dataset; the shaded band is
    ``±eps_factor × band`` of each dataset and the markers show :math:`T^*` at that
    tolerance."""
    fig, axes = plt.subplots(
        1, len(stats), figsize=(min(PAGE_WIDTH_IN, 3.4 * len(stats)), 2.9),
        squeeze=False,
    )
    for ax, stat, title in zip(axes[0], stats, titles or stats):
        for i, (label, c) in enumerate(curves.items()):
            if stat not in c.value:
                continue
            tau = c.tau.numpy()
            e = c.excess(stat).numpy()
            b = eps_factor * c.band(stat)
            color = f"C{i}"
            ax.plot(tau, e, color=color, label=label, marker=".", ms=3)
            ax.fill_between(tau, -b, b, color=color, alpha=0.12)
            ts = c.t_star(stat, b)
            if ts is not None:
                ax.axvline(ts / c.T, color=color, ls=":", lw=1)
        ax.axhline(0, color="k", lw=0.5)
        ax.set(xlabel="t / T", title=title, ylabel="excess over reference")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_training(histories: Mapping[str, Sequence[Mapping[str, float]]]):
    """Training loss per epoch of several runs."""
    fig, ax = plt.subplots(figsize=(4.2, 2.8))
    for label, hist in histories.items():
        ep = [h["epoch"] for h in hist]
        ax.plot(ep, [h["train_loss"] for h in hist], marker="o", ms=3, label=label)
    ax.set(xlabel="epoch", ylabel="training loss", title="ε-prediction loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_samples(
    samples: Mapping[str, SampleResult],
    atomic_numbers: Sequence[int],
    *,
    n: int = 4,
    size: float = 2.0,
    max_width: float = 7.5,
):
    """3-D views of the first ``n`` molecules of each arm (rows), drawn with
    :func:`refimpl.molecules.view.draw_molecule` (bonds from EDM's distance rule).
    Each view is ``size`` inches square, smaller if the ``n`` columns would be
    wider than ``max_width`` inches (the book's page width, so that labels are not
    shrunk below legibility)."""
    from refimpl.molecules.view import draw_molecule

    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    size = min(float(size), float(max_width) / n)
    rows = len(samples)
    fig = plt.figure(figsize=(size * n, size * rows))
    table = torch.as_tensor(list(atomic_numbers))
    for r, (label, res) in enumerate(samples.items()):
        for c in range(min(n, res.x.shape[0])):
            ax = fig.add_subplot(rows, n, r * n + c + 1, projection="3d")
            m = res.node_mask[c, :, 0].cpu() > 0
            z = table[res.types[c].cpu()[m]]
            draw_molecule(
                z,
                res.x[c].detach().cpu()[m].double(),
                ax=ax,
                title=label if c == 0 else None,
            )
            ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_pass_rates(tests: Mapping[str, PerMoleculeTest], T: int):
    """Pass rates of the per-molecule test's parts (KS, MI, both) against
    :math:`t/T`, for data and for pure reference noise."""
    fig, axes = plt.subplots(1, 3, figsize=(PAGE_WIDTH_IN, 2.8), sharey=True)
    for i, (label, res) in enumerate(tests.items()):
        tau = [t / T for t in res.ts]
        for ax, which, title in zip(
            axes, ("pass_ks", "pass_mi", "passed"), ("KS part", "MI part", "both")
        ):
            ax.plot(
                tau,
                res.pass_rate(which).numpy(),
                marker=".",
                color=f"C{i}",
                label=label,
            )
            ax.set(xlabel="t / T", title=title, ylim=(0, 1.05))
    axes[0].set_ylabel("fraction of molecules passing")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
