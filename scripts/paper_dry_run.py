r"""Run every chapter's ``paper`` configuration end to end on a few samples.

The paper-scale runs of chapters 3–5 take GPU hours. This script runs the same
code paths with the same models, grids, schedules and diffusion lengths, but on a
handful of samples and one epoch, so a broken path shows up in minutes (on a CPU
too) instead of after a long job has started. It checks that every stage finishes
and that every number it produces is finite; the numbers themselves mean nothing
(nothing is trained).

    python scripts/paper_dry_run.py                   # all chapters, the default device
    python scripts/paper_dry_run.py --chapters 4 --device cpu

The output of a run on the 2-core CPU of the development machine is in
``benchmarks/paper_dry_run.txt``.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

import refimpl


def _all_finite(obj) -> bool:
    """Every float or tensor inside nested dicts, lists and tuples is finite."""
    if isinstance(obj, dict):
        return all(_all_finite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_all_finite(v) for v in obj)
    if isinstance(obj, torch.Tensor):
        return bool(torch.isfinite(obj).all()) if obj.is_floating_point() else True
    if isinstance(obj, float):
        return math.isfinite(obj)
    return True


def _peak_rss_gib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 2**20


def _stage(name: str, fn: Callable[[], str]) -> bool:
    t0 = time.perf_counter()
    try:
        detail = fn()
        ok = True
    except Exception as exc:  # report and go on with the other chapters
        detail, ok = f"FAILED: {type(exc).__name__}: {exc}", False
    print(f"[{'ok' if ok else 'FAIL'}] {name}: {time.perf_counter() - t0:.1f} s, "
          f"peak RSS {_peak_rss_gib():.2f} GiB\n       {detail}", flush=True)
    return ok


def chapter3(device: torch.device) -> bool:
    """Navier–Stokes at ν = 1e-5 solved on 256² and sub-sampled to 64², Darcy
    solved on 256², the paper widths and modes, the FNO's step schedule."""
    from refimpl.experiments import dual_space as ex

    P = dict(ex.PRESETS["paper"], epochs=1, seeds=(0,))
    P["navier_stokes"] = dict(P["navier_stokes"], n_train=4, n_test=2)
    P["darcy"] = dict(P["darcy"], n_train=4, n_test=2)
    problems = {}

    def data() -> str:
        for name in ex.PROBLEMS:
            problems[name] = ex.load_problem(name, P[name], device=device)
        parts = []
        for name, prob in problems.items():
            if not (torch.isfinite(prob.x_train).all() and torch.isfinite(prob.y_train).all()):
                raise FloatingPointError(f"{name}: non-finite data")
            parts.append(f"{name} x {tuple(prob.x_train.shape)} y "
                         f"{tuple(prob.y_train.shape)} std {prob.y_train.std():.3f}")
        return "; ".join(parts)

    def train() -> str:
        res = ex.run_benchmark(P, models=ex.MODELS + ex.EXTRA_MODELS, device=device,
                               data=problems)
        abl = ex.run_ablation(P, device=device, data=problems, baseline=res)
        if not _all_finite([r["rel_l2"] for r in res.runs + abl.runs]):
            raise FloatingPointError("non-finite test error")
        return ", ".join(f"{r['problem'][:6]}/{r['model']} {r['params']:,} params "
                         f"{r['sec_per_epoch']:.1f} s/epoch" for r in res.runs)

    return _stage("ch3 data (NS 256² -> 64², Darcy 256² -> 64²)", data) and \
        _stage("ch3 one epoch of every model and ablation", train)


def chapter4(device: torch.device) -> bool:
    """QM9 with hydrogens, T = 1000, EDM's 256 × 9 EGNN, AMSGrad and adaptive
    clipping, every sampling arm over the full 1000-step chain."""
    from refimpl.experiments import gaussian_shortcut as ex

    P = dict(ex.PRESETS["paper"], limit=640, epochs=1, n_samples=4, sample_batch=4,
             seeds=(0,))
    state: dict = {}

    def data() -> str:
        state["data"] = ex.load_data(P)
        d = state["data"]
        return (f"{len(d.train)} training molecules, max {d.train.tensors[0].shape[1]} atoms, "
                f"v_hat {d.v_hat:.4f}")

    def train() -> str:
        with tempfile.TemporaryDirectory() as out:
            models, log = ex.train_models(P, state["data"], out=Path(out),
                                          progress=False)
        state["models"] = models
        arms = log["arms"]
        losses = [h["train_loss"] for a in arms.values() for h in a["history"]]
        if not _all_finite(losses):
            raise FloatingPointError("non-finite training loss")
        n = sum(p.numel() for p in models["full"].parameters())
        return (f"{n:,} parameters; " + ", ".join(
            f"{k}: t ≤ {v['t_max']}, {v['optimizer_steps']} steps, "
            f"{v['seconds']:.0f} s" for k, v in arms.items()))

    def sample() -> str:
        res, _ = ex.evaluate_arms(state["models"], P, state["data"], seeds=[0])
        nfe = {arm: rows[0]["nfe"] for arm, rows in res.items()}
        expected = {"A": P["T"] + 1, "B": P["t_star"] + 1, "C": P["t_star"] + 1,
                    "D": P["t_star"] + 1, "C-pc": P["t_star"] + 1}
        if nfe != expected:
            raise AssertionError(f"NFE {nfe}, expected {expected}")
        secs = {arm: rows[0]["seconds_per_molecule"] for arm, rows in res.items()}
        return "NFE " + str(nfe) + "; s/molecule " + ", ".join(
            f"{a} {s:.2f}" for a, s in secs.items())

    return _stage("ch4 data (QM9 with H)", data) and \
        _stage("ch4 one epoch, full and truncated", train) and \
        _stage("ch4 sampling, every arm", sample)


def chapter5(device: torch.device) -> bool:
    """Full-size SchNet (128 × 6, 50 Gaussians, cutoff 10 Å) on U0 and the planted
    label, then RISE and every baseline at the paper budgets."""
    from refimpl.experiments import rise as ex

    P = dict(ex.PRESETS["paper"], limit=1_000, epochs=1, n_explain=4, gnn_epochs=5,
             random_draws=2, rise=dict(ex.PRESETS["paper"]["rise"], steps=20))
    state: dict = {}

    def train() -> str:
        state["data"] = ex.load_data(P)
        out = []
        for kind in ("U0", "planted"):
            model, info = ex.train_model(kind, P, state["data"], log=lambda s: None,
                                         device=device)
            state[kind] = model.to(device).eval()
            if not _all_finite(info["test_mae"]):
                raise FloatingPointError(f"{kind}: non-finite test MAE")
            out.append(f"{kind} test MAE {info['test_mae']:.3g}")
        return "; ".join(out)

    def explain() -> str:
        z, pos, batch = (t.to(device) for t in
                         ex.explain_set(state["data"]["test"], P["n_explain"]))
        fid = ex.fidelity_benchmark(state["U0"], z, pos, batch, P["budgets"],
                                    P["rise"], P["gnn_epochs"], P["random_draws"])
        planted = ex.planted_benchmark(state["planted"], z, pos, batch,
                                       P["planted_budgets"], P["rise"],
                                       P["gnn_epochs"], P["random_draws"])
        # (precision is NaN, "undefined", where a method keeps no edge: not checked)
        keeps = [m[b]["keep"] for m in planted["methods"].values() for b in m]
        if not (_all_finite(fid["methods"]) and _all_finite(keeps)):
            raise FloatingPointError("non-finite metrics")
        return (f"{len(fid['budgets'])} fidelity budgets, "
                f"{len(planted['budgets'])} planted budgets on {P['n_explain']} "
                f"molecules")

    return _stage("ch5 SchNet 128x6, cutoff 10 Å: one epoch each", train) and \
        _stage("ch5 RISE and baselines at the paper budgets", explain)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapters", nargs="+", type=int, choices=(3, 4, 5),
                        default=[3, 4, 5])
    parser.add_argument("--device", default=None, help="default: cuda if available")
    args = parser.parse_args(argv)
    os.environ["REFIMPL_SCALE"] = "paper"
    device = torch.device(args.device) if args.device else refimpl.device()
    print(f"refimpl {refimpl.__version__}, torch {torch.__version__}, device {device}, "
          f"{torch.get_num_threads()} CPU thread(s), "
          f"{time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    runs = {3: chapter3, 4: chapter4, 5: chapter5}
    ok = [runs[c](device) for c in args.chapters]
    print("all paper paths ran" if all(ok) else "some paper paths FAILED", flush=True)
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
