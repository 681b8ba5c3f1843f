r"""Estimated run time of every chapter at every scale.

For each chapter and scale this builds the chapter's models exactly as its
preset says, and for each kind of step the chapter repeats (a training step of
each model, a sampling or explanation step where those dominate) it measures

* the FLOPs of one step (:func:`refimpl.runtime.measure_step`, forward and
  backward for training steps),
* the median wall time of one step on this machine's CPU,

multiplies by the number of such steps the chapter's study takes (epochs ×
batches × models × seeds × tasks, from the preset) and prints the CPU time and
the T4 estimate of :func:`refimpl.runtime.t4_seconds`. Data loading, data
generation and evaluation passes are not counted (they are small next to
training at ``full`` and ``paper``).

    python scripts/estimate_runtime.py                    # all chapters and scales
    python scripts/estimate_runtime.py --topics rise --scales full paper
    python scripts/estimate_runtime.py --csv book/data/runtime_estimates.csv

Its committed output is ``benchmarks/runtime_estimates.txt``, and the CSV that the
notebooks read at the ``paper`` scale is ``book/data/runtime_estimates.csv``.
Measure on an idle machine: CPU step times swing several-fold under contention
(each row records the 1-minute load average when it was measured; the T4
estimate depends on the FLOPs only).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

import refimpl
from refimpl.runtime import human_time, measure_step, t4_seconds
from refimpl.stats import markdown_table, write_csv


@dataclass
class Job:
    """One kind of step of a chapter: ``steps`` repetitions of ``loss()`` on ``model``."""

    label: str
    model: torch.nn.Module
    loss: Callable[[], torch.Tensor]
    steps: int
    backward: bool = True


def _batches(n: int, batch: int) -> int:
    return math.ceil(n / batch)


# ------------------------------------------------------------------ chapter 1
def operator_classification_jobs(scale: str) -> Iterator[Job]:
    from refimpl.experiments import operator_classification as ex
    from refimpl.operators.benchmark import model_factories
    from refimpl.operators.losses import relative_l2

    P = ex.PRESETS[scale]
    tasks = 3  # wave t = 1, wave t = 5, Darcy (make_datasets)
    steps = P["epochs"] * _batches(P["n_train"], P["batch_size"]) * len(P["seeds"]) * tasks
    x = torch.randn(P["batch_size"], 1, P["res"], P["res"])
    y = torch.randn_like(x)
    for name, make in model_factories(P["models"]).items():
        model = make()
        yield Job(f"train {name}", model, lambda m=model: relative_l2(m(x), y), steps)


# ------------------------------------------------------------------ chapter 2
def hidden_physics_jobs(scale: str) -> Iterator[Job]:
    from refimpl.experiments import hidden_physics as ex
    from refimpl.operators.losses import relative_l2

    P = ex.PRESETS[scale]
    # every model per seed and horizon, plus the shuffled-target control (an FNO)
    steps = P["epochs"] * _batches(P["n_train"], P["batch_size"]) * len(P["seeds"]) \
        * len(P["times"])
    x = torch.randn(P["batch_size"], 1, P["resolution"], P["resolution"])
    y = torch.randn_like(x)
    factories = ex.model_factories(P)
    for name in [*P["models"], "shuffled control"]:
        make = factories["FNO" if name == "shuffled control" else name]
        model = make()
        yield Job(f"train {name}", model, lambda m=model: relative_l2(m(x), y), steps)


# ------------------------------------------------------------------ chapter 3
def dual_space_jobs(scale: str) -> Iterator[Job]:
    from refimpl.experiments import dual_space as ex
    from refimpl.operators.losses import relative_l2

    P = ex.PRESETS[scale]
    n_seeds = len(P["seeds"])
    for problem in ex.PROBLEMS:
        cfg = P[problem]
        c_in, c_out = ((cfg["T_in"], cfg["T_out"]) if problem == "navier_stokes"
                       else (1, 1))
        s = int(cfg["resolution"])
        builders = ex.model_builders(problem, c_in, c_out, P)
        built = ex.build_matched_models(builders, names=ex.MODELS, reference="FNO",
                                        reference_width=int(cfg["fno"]["width"]),
                                        tolerance=float(P["tolerance"]))
        x = torch.randn(P["batch_size"], c_in, s, s)
        y = torch.randn(P["batch_size"], c_out, s, s)
        per_run = P["epochs"] * _batches(cfg["n_train"], P["batch_size"])
        # the validation sweep adds its settings but one (seed 0 is reused)
        sweep = len(ex.sweep_grid(P)) - 1 if P.get("sweep") else 0
        for name, (model, _) in built.items():
            yield Job(f"{problem} train {name}", model,
                      lambda m=model: relative_l2(m(x), y), per_run * (n_seeds + sweep))
        # the ablation's two variants cost about what the full model costs
        model = built["DualSpaceMultiScale"][0]
        yield Job(f"{problem} ablation (2 variants)", model,
                  lambda m=model: relative_l2(m(x), y), per_run * n_seeds * 2)


# ------------------------------------------------------------------ chapter 4
def gaussian_shortcut_jobs(scale: str) -> Iterator[Job]:
    from refimpl.diffusion import crop_collate
    from refimpl.experiments import gaussian_shortcut as ex

    P = dict(ex.PRESETS[scale])
    data = ex.load_data(P, progress=False)
    n_train = len(data.train)
    refimpl.seed_everything(0)
    model = ex.build_model(P, data.num_types)
    batch = crop_collate([data.train[i] for i in range(P["batch_size"])])
    t_main = P["t_star"] if isinstance(P.get("t_star"), int) else round(0.55 * P["T"])
    if "arms" in P and "train_seeds" in P:  # the study's plan (full and paper)
        plan = ex.study_plan(P, t_main)
        runs, evals = plan["budget_units"], plan["molecule_evaluations"]
    else:  # book and smoke: the two committed arms, five sampled arms
        runs = 2
        evals = P["n_samples"] * len(P["seeds"]) * (P["T"] + 1 + 4 * (t_main + 1))
    yield Job("train EGNN", model, lambda: model(*batch, t_max=P["T"]),
              P["epochs"] * _batches(n_train, P["batch_size"]) * runs)
    x, onehot, mask = batch[:3]
    t = torch.full((x.shape[0],), t_main)
    z = torch.cat([x, onehot], -1)
    yield Job("sample step (one evaluation)", model,
              lambda: model.phi(z, t, mask).sum(),
              _batches(evals, x.shape[0]), backward=False)


# ------------------------------------------------------------------ chapter 5
def rise_jobs(scale: str) -> Iterator[Job]:
    from refimpl.experiments import rise as ex
    from refimpl.molecules.qm9 import load_qm9
    from refimpl.molecules.schnet import SchNetRegressor

    P = ex.PRESETS[scale]
    view = load_qm9(remove_h=False, limit=2000, seed=0).split("train")
    z, pos, batch = ex.explain_set(view, P["batch_size"], seed=0)
    refimpl.seed_everything(0)
    model = SchNetRegressor(**P["model"])
    y = torch.zeros(int(batch.max()) + 1)
    # the full scale reuses the book model (no training); train otherwise
    if scale != "full":
        n_train = 110_000 if P["limit"] is None else int(0.8 * P["limit"])
        steps = P["epochs"] * _batches(n_train, P["batch_size"]) * 2  # U0, planted
        yield Job("train SchNet", model,
                  lambda: (model(z, pos, batch) - y).abs().mean(), steps)
    # one RISE step explains all test molecules in one batch: a forward and
    # backward pass of the masked model (the parameters' gradients stand in for
    # the radii's); per budget, plus the steps check at steps_factor x the steps
    ez, epos, ebatch = ex.explain_set(view, P["n_explain"], seed=1)
    ey = torch.zeros(int(ebatch.max()) + 1)
    budgets = len(P["budgets"]) + len(P["planted_budgets"])
    factor = 1 + P.get("steps_factor", 0)
    yield Job("RISE step (all molecules)", model,
              lambda: (model(ez, epos, ebatch) - ey).abs().mean(),
              P["rise"]["steps"] * budgets * factor)


TOPICS: dict[str, Callable[[str], Iterator[Job]]] = {
    "operator_classification": operator_classification_jobs,
    "hidden_physics": hidden_physics_jobs,
    "dual_space": dual_space_jobs,
    "gaussian_shortcut": gaussian_shortcut_jobs,
    "rise": rise_jobs,
}


def estimate(topics, scales, repeats: int = 2) -> list[dict]:
    rows = []
    for topic in topics:
        for scale in scales:
            for job in TOPICS[topic](scale):
                cost = measure_step(job.loss, job.model, repeats=repeats,
                                    backward=job.backward)
                rows.append(dict(
                    topic=topic, scale=scale, step=job.label,
                    load_avg=round(os.getloadavg()[0], 1),
                    gflop_per_step=cost.flops / 1e9, cpu_ms_per_step=1e3 * cost.seconds,
                    steps=job.steps, cpu_seconds=cost.seconds * job.steps,
                    t4_seconds=t4_seconds(cost.flops, job.steps)))
                print(f"{topic:24s} {scale:6s} {job.label:32s} {cost}", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topics", nargs="+", choices=list(TOPICS), default=list(TOPICS))
    parser.add_argument("--scales", nargs="+", choices=list(refimpl.SCALES),
                        default=["book", "full", "paper"])
    parser.add_argument("--csv", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    rows = estimate(args.topics, args.scales, args.repeats)
    totals = {}
    for r in rows:
        key = (r["topic"], r["scale"])
        c, t = totals.get(key, (0.0, 0.0))
        totals[key] = (c + r["cpu_seconds"], t + r["t4_seconds"])
    print("\n## Per step\n")
    print(markdown_table(rows, ["topic", "scale", "step", "gflop_per_step",
                                "cpu_ms_per_step", "steps", "load_avg"]))
    print("\n## Per chapter (training and the repeated steps above)\n")
    print(markdown_table(
        [dict(topic=k[0], scale=k[1], cpu=human_time(c), t4=human_time(t))
         for k, (c, t) in totals.items()],
        ["topic", "scale", "cpu", "t4"]))
    print(f"\n{refimpl.results.machine_description()}; "
          f"{human_time(time.perf_counter() - t0)} to measure")
    if args.csv:
        write_csv(rows, args.csv)
    return 0


if __name__ == "__main__":
    import refimpl.results  # noqa: F401  (machine_description)

    sys.exit(main())
