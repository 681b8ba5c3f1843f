r"""Run-time estimates: FLOPs and measured time of one training step.

A chapter's training cost is (steps) × (cost of one step). :func:`measure_step`
counts the floating-point operations of one optimiser step (forward and
backward) with :class:`torch.utils.flop_counter.FlopCounterMode` and times the
step on the current device (median of a few repeats after a warm-up).
:func:`t4_seconds` turns FLOPs into an estimate for one NVIDIA T4 (Colab's free
GPU):

.. math::
    t_\text{T4} \approx n_\text{steps}\,\Bigl(\frac{F_\text{step}}{\eta\,F_\text{peak}}
    + t_\text{launch}\Bigr),

with the T4's FP32 peak :math:`F_\text{peak} = 8.1` TFLOP/s, an assumed
efficiency :math:`\eta = 0.25` for small scientific models (no tensor cores) and a
per-step floor :math:`t_\text{launch}` = 3 ms for kernel launches and the data
loader. It is an estimate, stated as one; ``scripts/estimate_runtime.py`` prints
it beside the measured CPU time for every chapter and scale, and its output is
committed (``benchmarks/runtime_estimates.txt``). The notebooks print the
committed estimate before a ``paper``-scale run (:func:`announce`).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["StepCost", "measure_step", "t4_seconds", "T4_PEAK_FLOPS", "T4_EFFICIENCY",
           "T4_STEP_FLOOR_S", "human_time", "announce"]

#: NVIDIA T4 FP32 peak (FLOP/s).
T4_PEAK_FLOPS = 8.1e12
#: Assumed fraction of the peak that small models reach.
T4_EFFICIENCY = 0.25
#: Assumed fixed cost of one step on a T4 (launches, loader), seconds.
T4_STEP_FLOOR_S = 3e-3


@dataclass(frozen=True)
class StepCost:
    """FLOPs of one training step (forward + backward) and its measured time."""

    flops: float
    seconds: float
    device: str

    def __str__(self) -> str:
        return f"{self.flops / 1e9:.3g} GFLOP, {1e3 * self.seconds:.3g} ms on {self.device}"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_step(loss_fn: Callable[[], Tensor], model: torch.nn.Module, *,
                 repeats: int = 3, warmup: int = 1, backward: bool = True) -> StepCost:
    """FLOPs and median wall time of ``loss_fn().backward()`` (one training step
    without the optimiser's element-wise update), or of ``loss_fn()`` alone under
    :func:`torch.no_grad` with ``backward=False`` (a sampling or evaluation step).

    Args:
        loss_fn: builds the loss of one training batch (it runs the model).
        model: the module whose gradients are cleared between repeats.
        repeats: timed repeats (median reported).
        warmup: untimed calls first.
        backward: include the backward pass (default).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    params = [p for p in model.parameters() if p.requires_grad]
    device = params[0].device if params else torch.device("cpu")

    def step() -> None:
        model.zero_grad(set_to_none=True)
        if backward:
            loss_fn().backward()
        else:
            with torch.no_grad():
                loss_fn()

    with FlopCounterMode(display=False) as counter:
        step()
    flops = float(counter.get_total_flops())
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
    return StepCost(flops, statistics.median(times), str(device))


def t4_seconds(flops_per_step: float, steps: int) -> float:
    """The estimated time of ``steps`` steps of ``flops_per_step`` on one T4."""
    return steps * (flops_per_step / (T4_EFFICIENCY * T4_PEAK_FLOPS) + T4_STEP_FLOOR_S)


def human_time(seconds: float) -> str:
    """``seconds`` as ``"42 s"``, ``"12 min"`` or ``"3.4 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def announce(topic: str, command: str, scale: str | None = None) -> str | None:
    """At the ``paper`` scale, print (and return) the chapter's committed run-time
    estimate for this device and the CLI command that runs the same study; at other
    scales do nothing and return :obj:`None`.

    Args:
        topic: the chapter's topic (a row key of ``runtime_estimates.csv``).
        command: the equivalent command line.
        scale: default :func:`refimpl.scale`.
    """
    import refimpl
    from refimpl.results import data_path
    from refimpl.stats import read_csv

    if refimpl.scale(scale) != "paper":
        return None
    rows = []
    path = data_path("runtime_estimates.csv")
    if path.is_file():
        rows = [r for r in read_csv(path) if r["topic"] == topic and r["scale"] == "paper"]
    gpu = refimpl.device().type == "cuda"
    if rows:
        cpu_s = sum(r["cpu_seconds"] for r in rows)
        t4_s = sum(r["t4_seconds"] for r in rows)
        est = (f"about {human_time(t4_s)} on one T4 GPU"
               + ("" if gpu else f", about {human_time(cpu_s)} on a 2-core CPU"))
    else:
        est = "no committed estimate for this chapter"
    text = (f"The paper scale is the published setting: {est} "
            f"(scripts/estimate_runtime.py). The same run from a terminal, "
            f"resumable:\n    {command}")
    print(text, flush=True)
    return text
