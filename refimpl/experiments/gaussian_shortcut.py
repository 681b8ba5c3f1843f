r"""Gaussian-shortcut diffusion (EDM + the characteristic step) at every scale.

Four arms with identical data, features (types centred in every arm), network,
optimiser and training budget :cite:`qu2025shortening`, :cite:`hoogeboom2022edm`:

====  ===================================  ==========================================
arm   model                                sampling
====  ===================================  ==========================================
A     full training, t ~ U{0..T}           from N(0, I) at T, every step (NFE T+1)
B     A's weights                          from N(0, ṽ_{T*} I) at T* (NFE T*+1)
C     truncated training, t ~ U{0..T*}     from N(0, ṽ_{T*} I) at T* (NFE T*+1)
D     A's weights                          from N(0, I) at T, T* evenly spaced
                                           steps (NFE T*+1, same as C)
C-pc  C's weights                          per-channel start (ṽ^x, ṽ^h) (project
                                           variant)
C-h.  truncated training, half the steps   as C (C-half: separates truncation from
                                           more training per retained step)
A-r.  full training, types not centred     as A (A-raw: the effect of centring)
====  ===================================  ==========================================

T* is measured (``t_star="measured"``: :func:`measure_t_star`, the rule of
:func:`refimpl.diffusion.characteristic_step` at ``tstar_bands`` noise bands) or
fixed by the preset (book: 110, the committed weights' truncation, 0.55 T); the
``study`` command also runs arms B and C at the T* of ``tstar_sweep``.

Optimisation: AdamW with weight decay 1e-12, float32 and an EMA of the weights
(used for sampling) at every scale. ``paper`` follows EDM exactly: AMSGrad, a
constant learning rate and EDM's adaptive gradient clipping (the global norm is
clipped to 1.5 × mean + 2 × std of the last 50 norms,
:class:`refimpl.training.AdaptiveGradClip`). ``smoke`` and ``book`` (about 1e4
steps on a CPU) use plain AdamW, a cosine learning-rate decay and clipping at a
fixed norm, the settings the committed book weights were trained with.

Command line (the book-scale weights in ``book/data/gaussian_shortcut`` were made
with the first command)::

    python -m refimpl.experiments.gaussian_shortcut train --scale book
    python -m refimpl.experiments.gaussian_shortcut evaluate --scale book
    python -m refimpl.experiments.gaussian_shortcut train --scale paper --out DIR  # GPU
    python -m refimpl.experiments.gaussian_shortcut study --scale full   # the study
    python -m refimpl.experiments.gaussian_shortcut study --scale full --double

``study`` writes ``results.csv`` (columns :data:`STUDY_COLUMNS`) and ``README.md``
into ``--out`` (default ``refimpl.cache_dir("gaussian_shortcut", "study", SCALE)``)
and resumes from what is there.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch

import refimpl
from refimpl.checkpoint import load_model, save_model
from refimpl.experiments import command_line
from refimpl.results import data_path
from refimpl.diffusion import (
    EquivariantDiffusion,
    MoleculeTensors,
    NodeCountDistribution,
    SampleResult,
    bond_lengths,
    crop_collate,
    data_variance,
    encode,
    evaluate_samples,
    molecule_tensors,
    radius_of_gyration,
    reference_variance,
    shortcut_type_mean,
    type_frequencies,
)

__all__ = [
    "PRESETS",
    "ARMS",
    "COLUMNS",
    "QM9Data",
    "load_data",
    "build_model",
    "train_models",
    "load_models",
    "load_or_train",
    "qm9_sample",
    "weights_dir",
    "cache_weights_dir",
    "sample_arm",
    "evaluate_arms",
    "summarize",
    "markdown_table",
    "paired_difference",
    "tstar_table",
    "TRAIN_ARMS",
    "STUDY_METRICS",
    "STUDY_COMPARISONS",
    "study_tables",
    "STUDY_COLUMNS",
    "train_one",
    "measure_t_star",
    "study_row",
    "run_study",
    "study_plan",
    "estimate_study_time",
    "main",
]

#: Every size of the experiment and of chapter 4, per scale.
PRESETS = {
    "smoke": dict(
        remove_h=True,
        limit=800,
        T=20,
        t_star=11,
        hidden_nf=16,
        n_layers=2,
        batch_size=32,
        epochs=2,
        lr=1e-3,
        weight_decay=1e-12,
        optimizer="adamw",
        scheduler="cosine",
        grad_clip=1.0,
        ema_decay=None,
        n_samples=12,
        sample_batch=12,
        seeds=(0,),
        curve_molecules=64,
        curve_grid=4,
        curve_repeats=1,
        toy_molecules=64,
        sizes_M=(32, 64),
        view_molecules=2,
        # the study (CLI ``study``)
        tstar_bands=2.0,
        tstar_sweep=(0.3, 0.8),
        estimator="unbiased_subspace",
        stride=1,
        arms=("A", "B", "C", "D", "C-pc", "C-half", "A-raw"),
        sweep_arms=("B", "C"),
        train_seeds=(0,),
        train_seeds_per_arm={},
        sweep_seeds=(0,),
    ),
    "book": dict(
        remove_h=True,
        limit=None,
        T=200,
        t_star=110,
        hidden_nf=64,
        n_layers=4,
        batch_size=64,
        epochs=8,
        lr=5e-4,
        weight_decay=1e-12,
        optimizer="adamw",
        scheduler="cosine",
        grad_clip=2.0,
        ema_decay=0.999,
        n_samples=200,
        sample_batch=200,
        seeds=(0, 1, 2),
        curve_molecules=500,
        curve_grid=20,
        curve_repeats=3,
        toy_molecules=500,
        sizes_M=(125, 250, 500, 1000),
        view_molecules=6,
        tstar_bands=2.0,
        tstar_sweep=(),
        estimator="unbiased_subspace",
        stride=1,
        arms=("A", "B", "C", "D", "C-pc"),
        sweep_arms=("B", "C"),
        train_seeds=(0,),
        train_seeds_per_arm={},
        sweep_seeds=(0,),
    ),
    "paper": dict(
        remove_h=False,
        limit=None,
        T=1000,
        t_star=550,
        hidden_nf=256,
        n_layers=9,
        batch_size=64,
        epochs=1100,
        lr=1e-4,
        weight_decay=1e-12,
        optimizer="adamw_amsgrad",
        scheduler=None,
        grad_clip="adaptive",
        ema_decay=0.9999,
        n_samples=10000,
        sample_batch=1000,
        seeds=(0, 1, 2),
        curve_molecules=2000,
        curve_grid=40,
        curve_repeats=5,
        toy_molecules=500,
        sizes_M=(250, 500, 1000, 2000),
        view_molecules=6,
        tstar_bands=2.0,
        tstar_sweep=(0.45, 0.55, 0.65),
        estimator="unbiased_subspace",
        stride=1,
        arms=("A", "B", "C", "D", "C-pc", "C-half", "A-raw"),
        sweep_arms=("B", "C"),
        train_seeds=(0, 1, 2),
        train_seeds_per_arm={"full_raw": (0,)},
        sweep_seeds=(0,),
    ),
}
#: ``full``: the study of the issue "a powered four-arm study" on heavy-atom QM9 at
#: T = 200 — T* measured (2 noise bands), arms A–D, C-pc, C-half and A-raw, 3
#: training seeds for the models of A and C (and C-half), 1 for A-raw, 1000
#: molecules per arm and seed, and B and C at T* = 0.3 T and 0.8 T (seed 0). The
#: training budget per model is half the book's (4 epochs ≈ 6.3k steps): the 12
#: training runs (10.5 full budgets, ≈ 66k optimiser steps) and ≈ 0.8 M molecule
#: evaluations take about 1.5 h at the ≈ 0.075 s per step measured on a lightly
#: loaded 2-core CPU, but 4.1 h at the 0.20 s measured under heavy contention
#: (``python -m refimpl.experiments.gaussian_shortcut estimate --scale full``
#: projects it on the machine at hand). ``--double`` runs the convergence check.
PRESETS["full"] = dict(
    PRESETS["book"],
    t_star="measured",
    epochs=4,
    n_samples=1000,
    sample_batch=250,
    tstar_sweep=(0.3, 0.55, 0.8),
    arms=("A", "B", "C", "D", "C-pc", "C-half", "A-raw"),
    train_seeds=(0, 1, 2),
    train_seeds_per_arm={"full_raw": (0,)},
    sweep_seeds=(0,),
)
# keep the table in scale order (smoke, book, full, paper)
PRESETS = {k: PRESETS[k] for k in ("smoke", "book", "full", "paper")}

#: The compared arms: (weights, start, step rule).
ARMS = {
    "A": dict(weights="full", start="T", label="full training, full sampling"),
    "B": dict(weights="full", start="t_star", label="full training, sampling from T*"),
    "C": dict(
        weights="truncated", start="t_star", label="truncated training and sampling"
    ),
    "D": dict(
        weights="full",
        start="T",
        n_steps="t_star",
        label="full training, strided sampling (NFE of C)",
    ),
    "C-pc": dict(
        weights="truncated",
        start="t_star",
        per_channel=True,
        label="as C, per-channel start variance",
    ),
    "C-half": dict(
        weights="truncated_half",
        start="t_star",
        label="as C with half the optimiser steps (control: truncation vs. more "
        "training per retained step)",
    ),
    "A-raw": dict(
        weights="full_raw",
        start="T",
        label="as A without type centring (EDM's uncentred one-hots)",
    ),
}


@dataclass
class QM9Data:
    """Training molecules and the statistics the samplers and metrics need."""

    train: MoleculeTensors
    atomic_numbers: tuple[int, ...]
    num_atoms: NodeCountDistribution
    v_hat: float
    v_x: float
    v_h: float
    rg: torch.Tensor
    type_freq: torch.Tensor
    estimator: str = "unbiased_subspace"
    bond_lengths: Optional[torch.Tensor] = None
    dataset: Optional[object] = None

    @property
    def num_types(self) -> int:
        return len(self.atomic_numbers)

    def train_smiles(self) -> list:
        """EDM-pipeline SMILES of the training molecules (for novelty; cached)."""
        if self.dataset is None:
            raise ValueError("this QM9Data was built without its dataset view")
        return [s for s in self.dataset.reference_smiles(progress=False) if s]


def load_data(P: dict, progress: bool | None = None) -> QM9Data:
    """The QM9 training split (heavy atoms or with H) as dense tensors, with
    :math:`\\hat v` (scalar and per channel) from the same preprocessing as training."""
    from refimpl.molecules.qm9 import load_qm9

    ds = load_qm9(remove_h=P["remove_h"], limit=P["limit"], seed=0, progress=progress)
    train = ds.split("train")
    atomic_numbers = (6, 7, 8, 9) if P["remove_h"] else (1, 6, 7, 8, 9)
    x, onehot, mask = molecule_tensors(train, atomic_numbers)
    xc, h = encode(x.double(), onehot.double(), mask.double())
    z = torch.cat([xc, h], -1)
    est = P.get("estimator", "unbiased_subspace")
    types = torch.where(
        mask[..., 0] > 0, onehot.argmax(-1), torch.full_like(mask[..., 0], -1).long()
    )
    return QM9Data(
        train=MoleculeTensors(x, onehot, mask),
        atomic_numbers=atomic_numbers,
        num_atoms=NodeCountDistribution(mask.sum((1, 2)).long()),
        v_hat=float(data_variance(z, mask.double(), est)),
        v_x=float(data_variance(xc, mask.double(), est)),
        v_h=float(data_variance(h, mask.double(), est)),
        estimator=est,
        rg=radius_of_gyration(x.double(), mask.double()),
        type_freq=type_frequencies(types, len(atomic_numbers)),
        bond_lengths=bond_lengths(
            x[:5000].double(), types[:5000], mask[:5000], atomic_numbers
        ),
        dataset=train,
    )


def build_model(P: dict, num_types: int) -> EquivariantDiffusion:
    """EDM with the preset's EGNN; type centring on (in every arm)."""
    return EquivariantDiffusion(
        num_types,
        3,
        T=P["T"],
        hidden_nf=P["hidden_nf"],
        n_layers=P["n_layers"],
        center_types=True,
    )


def weights_dir(scale: str) -> Path:
    """Where a scale's weights are read from: the committed book-scale weights
    (``book/data/gaussian_shortcut``, shipped as package data) when they exist, else
    :func:`cache_weights_dir`. Nothing is ever written into the committed folder."""
    committed = data_path("gaussian_shortcut")
    if scale == "book" and (committed / "full.pt").is_file():
        return committed
    return cache_weights_dir(scale)


def cache_weights_dir(scale: str) -> Path:
    """Where weights trained here at ``scale`` are written (and then found):
    ``refimpl.cache_dir("gaussian_shortcut", scale)``."""
    return refimpl.cache_dir("gaussian_shortcut", scale)


def _checkpoint_folder(P: dict, seed: int, arm: str) -> Path:
    """The resumable-training folder of one arm, keyed by the scale, the seed and a
    short hash of the preset, so runs with other settings never share it (and
    :func:`refimpl.training.fit` refuses a folder of another run anyway)."""
    import hashlib

    blob = json.dumps(P, sort_keys=True, default=list).encode()
    key = f"{refimpl.scale()}-seed{seed}-{hashlib.sha256(blob).hexdigest()[:10]}"
    return refimpl.cache_dir("gaussian_shortcut", "ckpt", key, arm)


def train_models(
    P: dict,
    data: QM9Data,
    *,
    arms: Sequence[str] = ("full", "truncated"),
    out: Optional[Path] = None,
    progress: bool | None = None,
    seed: int = 0,
    device: Optional[torch.device] = None,
    command: str = "",
    checkpoint: bool = False,
) -> tuple[dict[str, EquivariantDiffusion], dict]:
    """Train the full (``t ~ U{0..T}``) and truncated (``t ~ U{0..T*}``) models with
    the same budget (epochs, batch, optimiser, seed) via :func:`refimpl.training.fit`.

    Returns:
        ``(models, log)``: the EMA weights (the raw weights without EMA) per arm, and
        the training log (preset, command, data variances, per-epoch history); both
        are saved to ``out`` when given (``<arm>.pt/.json``, ``training_log.json``).
    """
    from refimpl.training import fit

    models, log = (
        {},
        {
            "preset": {
                k: (list(v) if isinstance(v, tuple) else v) for k, v in P.items()
            },
            "command": command,
            "scale": refimpl.scale(),
            "torch": torch.__version__,
            "v_hat": data.v_hat,
            "v_x": data.v_x,
            "v_h": data.v_h,
            "estimator": data.estimator,
            "n_train": len(data.train),
            "arms": {},
        },
    )
    for arm in arms:
        if arm not in ("full", "truncated"):
            raise ValueError(
                f"unknown training arm {arm!r}; expected 'full' or 'truncated'"
            )
        t_max = P["T"] if arm == "full" else P["t_star"]
        refimpl.seed_everything(seed)
        model = build_model(P, data.num_types)

        def step_fn(m, batch, t_max=t_max):
            return m(*batch, t_max=t_max)

        t0 = time.perf_counter()
        res = fit(
            model,
            data.train,
            epochs=P["epochs"],
            batch_size=P["batch_size"],
            step_fn=step_fn,
            lr=P["lr"],
            weight_decay=P["weight_decay"],
            optimizer=P.get("optimizer", "adamw"),
            scheduler=P.get("scheduler", "cosine"),
            grad_clip=P["grad_clip"],
            ema_decay=P["ema_decay"],
            collate_fn=crop_collate,
            seed=seed,
            amp=False,  # EDM trains in float32 throughout
            device=device,
            progress=progress,
            checkpoint_dir=_checkpoint_folder(P, seed, arm) if checkpoint else None,
        )
        seconds = time.perf_counter() - t0
        best = (res.ema_model if res.ema_model is not None else res.model).eval()
        steps = P["epochs"] * -(-len(data.train) // P["batch_size"])
        log["arms"][arm] = {
            "t_max": t_max,
            "optimizer_steps": steps,
            "seconds": seconds,
            "history": res.history,
        }
        models[arm] = best
        if out is not None:
            save_model(
                best.cpu(),
                Path(out) / arm,
                arm=arm,
                t_max=t_max,
                t_star=P["t_star"],
                v_hat=data.v_hat,
                v_x=data.v_x,
                v_h=data.v_h,
                estimator=data.estimator,
                optimizer_steps=steps,
                ema_decay=P["ema_decay"],
                command=command,
            )
            best.to(device or refimpl.device())
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        path = Path(out) / "training_log.json"
        if path.exists():  # keep the record of arms not retrained now
            old_arms = json.loads(path.read_text()).get("arms", {})
            log["arms"] = {
                **{k: v for k, v in old_arms.items() if k not in log["arms"]},
                **log["arms"],
            }
        path.write_text(json.dumps(log, indent=2) + "\n")
    return models, log


def load_models(
    directory: Path, device: Optional[torch.device] = None
) -> dict[str, EquivariantDiffusion]:
    """The ``full`` and ``truncated`` weights saved by :func:`train_models`."""
    out = {}
    for arm in ("full", "truncated"):
        model, _ = load_model(
            Path(directory) / arm, map_location=device or refimpl.device()
        )
        out[arm] = model.eval()
    return out


def load_or_train(
    P: dict, data: QM9Data, *, scale: Optional[str] = None, progress: bool | None = None
) -> tuple[dict[str, EquivariantDiffusion], dict, str]:
    """Committed (book) or cached (paper) weights when they exist and match the preset;
    otherwise train now (always at smoke scale).

    Returns:
        ``(models, log, origin)`` with the training log of :func:`train_models`.
    """
    scale = scale or refimpl.scale()
    d = weights_dir(scale)
    files = [d / f"{a}.pt" for a in ("full", "truncated")] + [d / "training_log.json"]
    if scale != "smoke" and all(f.exists() for f in files):
        models = load_models(d)
        ok = all(
            m.T == P["T"]
            and m.config()["hidden_nf"] == P["hidden_nf"]
            and m.config()["n_layers"] == P["n_layers"]
            for m in models.values()
        )
        if ok:
            log = json.loads((d / "training_log.json").read_text())
            where = ("the committed book weights (refimpl.bookdata/gaussian_shortcut)"
                     if d == data_path("gaussian_shortcut") else str(d))
            return models, log, f"loaded from {where}"
    models, log = train_models(
        P, data, progress=progress,
        out=None if scale == "smoke" else cache_weights_dir(scale)
    )
    return models, log, "trained in this run"


def qm9_sample(
    M: int, *, remove_h: bool, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``M`` random molecules of QM9's training split as ``(x, onehot, node_mask)``
    (float64)."""
    from refimpl.molecules.qm9 import load_qm9

    train = load_qm9(remove_h=remove_h, progress=False).split("train")
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(train), generator=g)[:M].sort().values
    atomic_numbers = (6, 7, 8, 9) if remove_h else (1, 6, 7, 8, 9)
    x, onehot, mask = molecule_tensors(train.subset(pick), atomic_numbers)
    return x.double(), onehot.double(), mask.double()


#: Column labels of :func:`markdown_table`.
COLUMNS = {
    "valence_feasible_atoms": "atom stab. (feasible)",
    "valence_feasible_molecules": "mol. stab. (feasible)",
    "atom_stability": "atom stab.",
    "molecule_stability": "mol. stab.",
    "validity": "valid",
    "uniqueness": "unique",
    "valid_x_unique": "V×U",
    "valid_and_connected": "valid & conn.",
    "rg_w1": "W1(R_g) Å",
    "nfe": "NFE",
    "seconds_per_molecule": "s / molecule",
}


def markdown_table(
    summary: dict,
    keys: Sequence[str],
    *,
    percent: Sequence[str] = (
        "valence_feasible_atoms",
        "valence_feasible_molecules",
        "atom_stability",
        "molecule_stability",
        "validity",
        "uniqueness",
        "valid_x_unique",
        "valid_and_connected",
    ),
) -> str:
    """A Markdown table of :func:`summarize` output (mean ± sd over seeds)."""
    head = "| arm | " + " | ".join(COLUMNS.get(k, k) for k in keys) + " |"
    lines = [head, "|" + "---|" * (len(keys) + 1)]
    for arm, row in summary.items():
        cells = []
        for k in keys:
            m, s = row[k]
            if k in percent:
                cells.append(f"{100 * m:.1f} ± {100 * s:.1f}")
            elif k == "nfe":
                cells.append(f"{m:.0f}")
            elif k == "seconds_per_molecule":
                cells.append(f"{m:.4f}")
            else:
                cells.append(f"{m:.3f} ± {s:.3f}")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _start(arm: dict, P: dict, data: QM9Data, model: EquivariantDiffusion) -> dict:
    kw: dict = {}
    if not model.center_types:  # EDM's uncentred types: start at alpha_t * mu_h
        t0 = P["t_star"] if arm["start"] == "t_star" else model.T
        kw["start_type_mean"] = shortcut_type_mean(model, t0, data.type_freq.tolist())
    if arm["start"] == "t_star":
        t = P["t_star"]
        if arm.get("per_channel"):
            v = [
                float(reference_variance(model.schedule, t, data.v_x)),
                float(reference_variance(model.schedule, t, data.v_h)),
            ]
        else:
            v = float(reference_variance(model.schedule, t, data.v_hat))
        kw.update(start_t=t, start_variance=v)
    if arm.get("n_steps") == "t_star":
        kw.update(n_steps=P["t_star"])
    return kw


def sample_arm(
    name: str, models: dict, P: dict, data: QM9Data, num_atoms: torch.Tensor, seed: int
) -> tuple[SampleResult, float]:
    """Samples of one arm for the given atom counts, and the sampling seconds (after a
    warm-up; device synchronised)."""
    arm = ARMS[name]
    model = models[arm["weights"]]
    dev = next(model.parameters()).device
    kw = _start(arm, P, data, model)
    model.sample(num_atoms[:2].to(dev), **kw)  # warm-up (allocations, first-call costs)
    g = torch.Generator(device=dev).manual_seed(seed)
    parts, seconds = [], 0.0
    for i in range(0, num_atoms.numel(), P["sample_batch"]):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        res = model.sample(
            num_atoms[i : i + P["sample_batch"]].to(dev), generator=g, **kw
        )
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds += time.perf_counter() - t0
        parts.append(res)
    n = max(r.x.shape[1] for r in parts)

    def pad(t: torch.Tensor, fill) -> torch.Tensor:
        extra = n - t.shape[1]
        if extra == 0:
            return t
        shape = (t.shape[0], extra) + tuple(t.shape[2:])
        return torch.cat(
            [t, torch.full(shape, fill, dtype=t.dtype, device=t.device)], 1
        )

    out = SampleResult(
        x=torch.cat([pad(r.x, 0.0) for r in parts]),
        types=torch.cat([pad(r.types, -1) for r in parts]),
        node_mask=torch.cat([pad(r.node_mask, 0.0) for r in parts]),
        nfe=parts[0].nfe,
    )
    return out, seconds


def evaluate_arms(
    models: dict,
    P: dict,
    data: QM9Data,
    *,
    arms: Sequence[str] = ("A", "B", "C", "D", "C-pc"),
    seeds: Optional[Sequence[int]] = None,
    progress: bool | None = None,
) -> tuple[dict[str, list[dict]], dict[str, SampleResult]]:
    """Metrics of every arm and sampling seed (same atom counts for all arms of a
    seed).

    Returns:
        ``(results, samples)``: per arm, one dict per seed with the chemistry
        metrics, ``rg_w1``, ``type_tv``, ``nfe`` and ``seconds_per_molecule``; and
        the first seed's samples of every arm (for the 3-D views).
    """
    from refimpl.progress import tqdm

    seeds = P["seeds"] if seeds is None else seeds
    results: dict[str, list[dict]] = {a: [] for a in arms}
    samples: dict[str, SampleResult] = {}
    for seed in tqdm(list(seeds), desc="sampling seeds", progress=progress):
        g = torch.Generator().manual_seed(10_000 + seed)
        num_atoms = data.num_atoms.sample(P["n_samples"], generator=g)
        for a in arms:
            res, sec = sample_arm(a, models, P, data, num_atoms, seed)
            m = evaluate_samples(
                res,
                data.atomic_numbers,
                reference_rg=data.rg,
                reference_type_freq=data.type_freq,
            )
            m["seconds_per_molecule"] = sec / num_atoms.numel()
            results[a].append(m)
            samples.setdefault(a, res)
    return results, samples


def summarize(
    results: dict[str, list[dict]],
    keys: Sequence[str] = (
        "valence_feasible_atoms",
        "valence_feasible_molecules",
        "atom_stability",
        "molecule_stability",
        "validity",
        "uniqueness",
        "valid_x_unique",
        "valid_and_connected",
        "rg_w1",
        "type_tv",
        "nfe",
        "seconds_per_molecule",
    ),
) -> dict[str, dict[str, tuple[float, float]]]:
    """Mean and standard deviation over seeds, per arm and metric."""
    out = {}
    for arm, rows in results.items():
        out[arm] = {}
        for k in keys:
            v = torch.tensor([float(r[k]) for r in rows], dtype=torch.float64)
            out[arm][k] = (float(v.mean()), float(v.std()) if v.numel() > 1 else 0.0)
    return out


def paired_difference(
    results: dict[str, list[dict]], arm: str, baseline: str, key: str
) -> tuple[float, float]:
    """Mean and standard deviation over seeds of ``results[arm] - results[baseline]``
    for one metric (arms of a seed share their atom counts, so the pairing removes
    that part of the seed-to-seed variation)."""
    a = torch.tensor([float(r[key]) for r in results[arm]], dtype=torch.float64)
    b = torch.tensor([float(r[key]) for r in results[baseline]], dtype=torch.float64)
    if a.numel() != b.numel():
        raise ValueError(
            f"arms {arm!r} and {baseline!r} have different numbers of seeds"
        )
    d = a - b
    return float(d.mean()), float(d.std()) if d.numel() > 1 else 0.0


def tstar_table(
    curves: dict,
    stats: Sequence[str],
    *,
    factors: Sequence[float] = (1, 2, 4),
    absolute: Sequence[float] = (),
) -> str:
    """A Markdown table of :math:`T^*/T` per dataset and statistic at tolerances
    ``factor × band`` and, for the Kolmogorov–Smirnov statistics only
    (:data:`refimpl.diffusion.KS_STATISTICS`), at absolute tolerances; "—" where
    the curve never stays below the tolerance, "n/a" where an absolute tolerance
    has no meaning (correlation and mutual-information excesses)."""
    from refimpl.diffusion import KS_STATISTICS

    cols = [f"{f:g}b" for f in factors] + [f"ε={a:g}" for a in absolute]
    lines = [
        "| data | statistic | band b | "
        + " | ".join(f"T*/T at {c}" for c in cols)
        + " |",
        "|" + "---|" * (3 + len(cols)),
    ]
    for label, c in curves.items():
        for stat in stats:
            if stat not in c.value:
                continue
            b = c.band(stat)
            vals = c.t_star(stat, [f * b for f in factors])
            cells = ["—" if v is None else f"{v / c.T:.3f}" for v in vals]
            if stat in KS_STATISTICS:
                vals = c.t_star(stat, list(absolute)) if absolute else []
                cells += ["—" if v is None else f"{v / c.T:.3f}" for v in vals]
            else:
                cells += ["n/a"] * len(absolute)
            lines.append(f"| {label} | {stat} | {b:.4f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: Metrics of the study tables: (column, label, lower is better, as a rate).
STUDY_METRICS = (
    ("valid_x_unique", "V×U", False, True),
    ("validity", "valid", False, True),
    ("novelty", "novel", False, True),
    ("valid_and_connected", "valid & conn.", False, True),
    ("bond_w1", "W1(bond) Å", True, False),
    ("rg_w1", "W1(R_g) Å", True, False),
    ("nfe", "NFE", True, False),
    ("seconds_per_molecule", "s / molecule", True, False),
)

#: The pre-registered and exploratory paired comparisons (arm, baseline).
STUDY_COMPARISONS = (
    ("C", "A"), ("B", "A"), ("D", "A"), ("C", "B"), ("C", "D"),
    ("C", "C-half"), ("C-pc", "C"), ("A", "A-raw"),
)


def study_tables(rows: Sequence[dict], t_star: Optional[int] = None) -> dict:
    """Tables and verdicts of a study's rows (from :func:`run_study` or the
    committed ``results.csv``), all computed with :mod:`refimpl.stats`:

    * ``"arms"``: per arm, the mean over training seeds with its t interval
      (:func:`refimpl.stats.summarize`) and the pooled V×U rate with its Wilson
      interval (:func:`refimpl.stats.wilson`; molecules pooled over seeds);
    * ``"paired"``: the paired differences of :data:`STUDY_COMPARISONS` over
      training seeds (:func:`refimpl.stats.paired`) with their verdicts;
    * ``"sweep"``: V×U and W1(bond) of every arm at every T*;
    * ``"verdicts"``: ``{(arm, base, metric): Paired}``.

    ``t_star`` selects the main T* (default: the most frequent one)."""
    from collections import Counter

    from refimpl import stats

    if not rows:
        raise ValueError("no rows")
    if t_star is None:
        t_star = Counter(int(r["t_star"]) for r in rows).most_common(1)[0][0]
    main = [r for r in rows if int(r["t_star"]) == t_star]
    arms = [a for a in ARMS if any(r["arm"] == a for r in main)]
    by = {a: sorted((r for r in main if r["arm"] == a),
                    key=lambda r: int(r["train_seed"])) for a in arms}
    table = []
    for a in arms:
        rs = by[a]
        row = {"arm": a, "seeds": len(rs)}
        for key, label, _, _ in STUDY_METRICS:
            vals = [float(r[key]) for r in rs if r[key] == r[key]]
            row[label] = stats.summarize(vals) if len(vals) > 1 else (
                stats.fmt(vals[0]) if vals else "—")
        n = sum(int(r["n_molecules"]) for r in rs)
        k = sum(round(float(r["valid_x_unique"]) * int(r["n_molecules"])) for r in rs)
        row["V×U pooled (Wilson)"] = stats.wilson(k, n)
        table.append(row)
    paired_rows, verdicts = [], {}
    for a, b in STUDY_COMPARISONS:
        if a not in by or b not in by:
            continue
        seeds = sorted({int(r["train_seed"]) for r in by[a]}
                       & {int(r["train_seed"]) for r in by[b]})
        if len(seeds) < 2:
            continue
        for key, label, lower, _ in STUDY_METRICS[:1] + STUDY_METRICS[4:5]:
            va = [float(r[key]) for r in by[a] if int(r["train_seed"]) in seeds]
            vb = [float(r[key]) for r in by[b] if int(r["train_seed"]) in seeds]
            p = stats.paired(va, vb)
            verdicts[(a, b, key)] = p
            paired_rows.append({
                "comparison": f"{a} − {b}", "metric": label, "seeds": len(seeds),
                "difference": stats.fmt(p.diff),
                "95 % CI": f"[{stats.fmt(p.low)}, {stats.fmt(p.high)}]",
                "verdict": p.verdict(a, b, lower_is_better=lower),
            })
    sweep = []
    for t in sorted({int(r["t_star"]) for r in rows}):
        for a in ARMS:
            rs = [r for r in rows if int(r["t_star"]) == t and r["arm"] == a]
            if not rs:
                continue
            sweep.append({
                "T*/T": f"{float(rs[0]['t_star_fraction']):.2f}", "arm": a,
                "seeds": len(rs),
                "V×U": stats.fmt(sum(float(r["valid_x_unique"]) for r in rs)
                                 / len(rs)),
                "W1(bond) Å": stats.fmt(sum(float(r["bond_w1"]) for r in rs)
                                        / len(rs)),
                "NFE": int(rs[0]["nfe"]),
            })
    return dict(
        t_star=t_star,
        arms=stats.markdown_table(table),
        paired=stats.markdown_table(paired_rows) if paired_rows else "",
        sweep=stats.markdown_table(sweep),
        verdicts=verdicts,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m refimpl.experiments.gaussian_shortcut",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("command", choices=["train", "evaluate", "study", "estimate"])
    parser.add_argument("--scale", choices=list(refimpl.SCALES), default=None)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="weights folder (train: written here, default the cache "
        "refimpl.cache_dir('gaussian_shortcut', SCALE); evaluate: read from here, "
        "default the committed book weights at book scale, else the cache)",
    )
    parser.add_argument("--arms", nargs="+", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--checkpoint",
        action="store_true",
        help="keep resumable training checkpoints in the cache (one folder per "
        "scale, seed and preset: another run never resumes these)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="write evaluation results here"
    )
    parser.add_argument(
        "--samples", type=int, default=None, help="molecules per arm and seed"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument(
        "--t-star", default=None,
        help="the truncation step: an integer, or 'measured' (the rule of "
        "characteristic_step on the preset's curves); default: the preset's",
    )
    parser.add_argument("--bands", type=float, default=None,
                        help="tolerance of the T* rule in noise bands")
    parser.add_argument("--estimator", default=None,
                        choices=["unbiased_subspace", "pooled", "mean_square", "rms"],
                        help="the data-variance estimator of the shortcut start")
    parser.add_argument("--stride", type=int, default=None,
                        help="sampling stride k (must divide T*)")
    parser.add_argument("--tstar-sweep", type=float, nargs="*", default=None,
                        help="study: further T*/T values for arms B and C")
    parser.add_argument("--double", action="store_true",
                        help="study: twice the training epochs (convergence check)")
    parser.add_argument("--no-novelty", action="store_true",
                        help="study: skip novelty (needs the training SMILES)")
    args = parser.parse_args(argv)
    scale = refimpl.scale(args.scale)  # an explicit --scale wins over REFIMPL_SCALE
    os.environ["REFIMPL_SCALE"] = scale
    P = dict(refimpl.preset(PRESETS, scale))
    if args.t_star is not None:
        P["t_star"] = args.t_star if args.t_star == "measured" else int(args.t_star)
    for key, v in (("tstar_bands", args.bands), ("estimator", args.estimator),
                   ("stride", args.stride), ("tstar_sweep", args.tstar_sweep)):
        if v is not None:
            P[key] = tuple(v) if isinstance(v, list) else v
    if args.arms:
        train_arms_for(args.arms)  # a clear error for unknown arms
    if args.double:
        P["epochs"] = 2 * P["epochs"]
    if args.samples is not None:
        P["n_samples"] = args.samples
    if args.out is not None:
        out = args.out
    elif args.command == "study":
        out = refimpl.cache_dir(
            "gaussian_shortcut", "study", scale + ("-double" if args.double else "")
        )
    elif args.command == "train":
        out = cache_weights_dir(scale)
    else:
        out = weights_dir(scale)
    command = command_line("gaussian_shortcut", argv)
    print(f"scale={scale} device={refimpl.device()} preset={P}", flush=True)
    data = load_data(P, progress=True)
    print(
        f"{len(data.train)} training molecules; v_hat={data.v_hat:.4f} "
        f"(v_x={data.v_x:.4f}, v_h={data.v_h:.5f}, {data.estimator})",
        flush=True,
    )
    if args.command in ("train", "evaluate") and P["t_star"] == "measured":
        P["t_star"], rule, _ = measure_t_star(P)
        print(rule, flush=True)
    if args.command == "study":
        rows = run_study(P, data, out, arms=args.arms, command=command,
                         novelty=not args.no_novelty)
        print(f"{len(rows)} rows written to {out / 'results.csv'}", flush=True)
        return 0
    if args.command == "estimate":
        est = estimate_study_time(P, data)
        print(json.dumps(est, indent=2), flush=True)
        return 0
    if args.command == "train":
        train_models(
            P,
            data,
            arms=args.arms or ("full", "truncated"),
            out=out,
            seed=args.seed,
            command=command,
            checkpoint=args.checkpoint,
        )
        print(f"saved to {out}", flush=True)
    else:
        models = load_models(out)
        res, _ = evaluate_arms(
            models,
            P,
            data,
            arms=args.arms or tuple(ARMS),
            seeds=args.seeds,
            progress=True,
        )
        summary = summarize(res)
        for arm, row in summary.items():
            print(arm, {k: f"{m:.4g}±{s:.2g}" for k, (m, s) in row.items()}, flush=True)
        if args.json:
            args.json.write_text(
                json.dumps({"results": res, "summary": summary}, indent=2)
            )
    return 0



# ============================================================== the full study
#: Training runs: the range of t, type centring and the fraction of the budget.
TRAIN_ARMS = {
    "full": dict(t_max="T", center_types=True, budget=1.0),
    "truncated": dict(t_max="t_star", center_types=True, budget=1.0),
    "truncated_half": dict(t_max="t_star", center_types=True, budget=0.5),
    "full_raw": dict(t_max="T", center_types=False, budget=1.0),
}

#: Columns of the study's ``results.csv`` (one row per arm, T* and training seed);
#: the chapter reads exactly these.
STUDY_COLUMNS = (
    "arm",
    "t_star",
    "t_star_fraction",
    "train_seed",
    "n_molecules",
    "validity",
    "uniqueness",
    "valid_x_unique",
    "novelty",
    "valence_feasible_molecules",
    "valid_and_connected",
    "bond_w1",
    "rg_w1",
    "type_tv",
    "nfe",
    "seconds_per_molecule",
    "optimizer_steps",
    "v_hat_estimator",
)


def train_arms_for(arms: Sequence[str]) -> set[str]:
    """The training runs (keys of :data:`TRAIN_ARMS`) that ``arms`` need."""
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"unknown arms {unknown}; valid: {list(ARMS)}")
    return {ARMS[a]["weights"] for a in arms}


def train_one(
    P: dict,
    data: QM9Data,
    train_arm: str,
    t_star: int,
    seed: int,
    *,
    out: Optional[Path] = None,
    progress: bool = False,
    command: str = "",
) -> tuple[EquivariantDiffusion, dict]:
    """Train one run of :data:`TRAIN_ARMS` (resumable through ``out/ckpt``; an
    existing ``out/<name>.pt`` is loaded instead). Returns the EMA model and its
    record (``t_max``, ``optimizer_steps``, ``seconds``)."""
    from refimpl.training import fit

    spec = TRAIN_ARMS[train_arm]
    t_max = P["T"] if spec["t_max"] == "T" else t_star
    epochs = int(P["epochs"] * spec["budget"])
    if epochs < 1:
        raise ValueError(
            f"{train_arm!r} needs at least 2 epochs in the preset, got {P['epochs']}"
        )
    name = f"{train_arm}_t{t_max}_s{seed}"
    steps = epochs * -(-len(data.train) // P["batch_size"])
    if out is not None and (Path(out) / f"{name}.pt").is_file():
        model, meta = load_model(Path(out) / name, map_location=refimpl.device())
        return model.eval(), dict(t_max=t_max, optimizer_steps=steps,
                                  seconds=meta.get("seconds", float("nan")))
    refimpl.seed_everything(seed)
    model = EquivariantDiffusion(
        data.num_types, 3, T=P["T"], hidden_nf=P["hidden_nf"],
        n_layers=P["n_layers"], center_types=spec["center_types"],
    )

    def step_fn(m, batch, t_max=t_max):
        return m(*batch, t_max=t_max)

    t0 = time.perf_counter()
    res = fit(
        model, data.train, epochs=epochs, batch_size=P["batch_size"],
        step_fn=step_fn, lr=P["lr"], weight_decay=P["weight_decay"],
        optimizer=P.get("optimizer", "adamw"), scheduler=P.get("scheduler", "cosine"),
        grad_clip=P["grad_clip"], ema_decay=P["ema_decay"], collate_fn=crop_collate,
        seed=seed, amp=False, progress=progress,
        checkpoint_dir=None if out is None else Path(out) / "ckpt" / name,
    )
    seconds = time.perf_counter() - t0
    best = (res.ema_model if res.ema_model is not None else res.model).eval()
    if out is not None:
        save_model(best.cpu(), Path(out) / name, arm=train_arm, t_max=t_max,
                   seed=seed, optimizer_steps=steps, seconds=seconds,
                   command=command)
        best.to(refimpl.device())
    return best, dict(t_max=t_max, optimizer_steps=steps, seconds=seconds)


def measure_t_star(P: dict, *, seed: int = 0) -> tuple[int, object, object]:
    """T* by the rule of :func:`refimpl.diffusion.characteristic_step` on the
    heavy-atom (or with-H) Gaussianity curves of ``P["curve_molecules"]`` training
    molecules. Returns ``(t_star, CharacteristicStep, curves)``; ``t_star`` is
    rounded up to a multiple of the sampling stride."""
    from refimpl.diffusion import NoiseSchedule, characteristic_step, pointcloud_curves

    sch = NoiseSchedule(P["T"])
    grid = list(range(0, P["T"] + 1, max(1, P["T"] // P["curve_grid"])))
    x, onehot, mask = qm9_sample(P["curve_molecules"], remove_h=P["remove_h"],
                                 seed=seed)
    h0 = encode(x, onehot, mask)[1]
    g = torch.Generator().manual_seed(seed)
    curves = pointcloud_curves(x, mask, sch, grid, h0=h0,
                               repeats=P["curve_repeats"], generator=g)
    rule = characteristic_step(curves, bands=P["tstar_bands"])
    k = P.get("stride", 1)
    t = max(k, -(-rule.t_star // k) * k)
    return min(t, P["T"] - P["T"] % k), rule, curves


def study_row(
    arm: str, P: dict, data: QM9Data, models: dict, t_star: int, seed: int,
    train_records: dict, train_smiles=None,
) -> dict:
    """One row of :data:`STUDY_COLUMNS`: arm ``arm`` with the given weights,
    ``P["n_samples"]`` molecules sampled with seed ``seed``."""
    Pt = dict(P, t_star=t_star)
    g = torch.Generator().manual_seed(10_000 + seed)
    num_atoms = data.num_atoms.sample(P["n_samples"], generator=g)
    res, sec = sample_arm(arm, models, Pt, data, num_atoms, seed)
    m = evaluate_samples(
        res, data.atomic_numbers, train_smiles=train_smiles,
        reference_rg=data.rg, reference_type_freq=data.type_freq,
        reference_bond_lengths=data.bond_lengths,
    )
    rec = train_records[ARMS[arm]["weights"]]
    row = dict(
        arm=arm, t_star=t_star, t_star_fraction=t_star / P["T"], train_seed=seed,
        n_molecules=int(num_atoms.numel()), nfe=res.nfe,
        seconds_per_molecule=sec / num_atoms.numel(),
        optimizer_steps=rec["optimizer_steps"], v_hat_estimator=data.estimator,
    )
    for k in STUDY_COLUMNS:
        if k not in row:
            v = m.get(k)
            row[k] = float("nan") if v is None else float(v)
    return row


def run_study(
    P: dict,
    data: QM9Data,
    out: Path,
    *,
    arms: Optional[Sequence[str]] = None,
    command: str = "",
    progress: bool = True,
    novelty: bool = True,
) -> list[dict]:
    """The study of ``P``: T* measured (or the preset's), every arm at every T* of
    ``P["tstar_sweep"]`` (fractions of T; arms B, C and their variants move with
    T*, A does not) and every training seed. Resumable: trained weights
    (``out/<run>.pt``), training checkpoints (``out/ckpt``) and finished rows
    (``out/rows/*.json``) are reused. Writes ``results.csv`` + ``README.md`` with
    :func:`refimpl.results.write_run` and returns the rows."""
    from refimpl.results import write_run

    t0 = time.perf_counter()
    out = Path(out)
    (out / "rows").mkdir(parents=True, exist_ok=True)
    arms = tuple(arms or P["arms"])
    train_arms_for(arms)  # a clear error for unknown arms
    if P["t_star"] == "measured":
        t_main, rule, _ = measure_t_star(P)
        note = f"T* measured: {rule}"
    else:
        t_main, note = int(P["t_star"]), f"T* = {P['t_star']} (preset)"
    (out / "tstar.txt").write_text(note + "\n")
    print(note, flush=True)
    k = P.get("stride", 1)
    sweep = sorted({t_main} | {
        max(k, int(round(f * P["T"] / k)) * k) for f in P.get("tstar_sweep", ())
    })
    train_smiles = data.train_smiles() if novelty else None
    rows = []
    for t_star in sweep:
        # Arms that do not depend on T* are run once, at the main T*.
        todo = [a for a in arms if t_star == t_main or ARMS[a]["start"] == "t_star"
                or ARMS[a].get("n_steps") == "t_star"]
        if t_star != t_main:
            todo = [a for a in todo if a in P.get("sweep_arms", ("B", "C"))]
        seeds = P["train_seeds"] if t_star == t_main else P.get("sweep_seeds", (0,))
        for seed in seeds:
            for arm in todo:
                f = out / "rows" / f"{arm}_t{t_star}_s{seed}.json"
                if f.is_file():
                    rows.append(json.loads(f.read_text()))
                    continue
                w = ARMS[arm]["weights"]
                if seed not in P["train_seeds_per_arm"].get(w, P["train_seeds"]):
                    continue
                models, recs = {}, {}
                for tw in {w}:
                    models[tw], recs[tw] = train_one(
                        P, data, tw, t_star, seed, out=out, progress=progress,
                        command=command,
                    )
                row = study_row(arm, P, data, models, t_star, seed, recs,
                                train_smiles)
                f.write_text(json.dumps(row) + "\n")
                rows.append(row)
                print(arm, t_star, seed, {k: row[k] for k in (
                    "valid_x_unique", "bond_w1", "nfe")}, flush=True)
    write_run(rows, out, command=command, wall_seconds=time.perf_counter() - t0,
              columns=STUDY_COLUMNS, notes=note)
    return rows


def study_plan(P: dict, t_main: int) -> dict:
    """What :func:`run_study` trains and samples for ``P`` with main T* ``t_main``:
    optimiser steps in total and network evaluations × molecules in total."""
    k = P.get("stride", 1)
    sweep = sorted({t_main} | {
        max(k, int(round(f * P["T"] / k)) * k) for f in P.get("tstar_sweep", ())
    })
    runs, evals = set(), 0
    for t_star in sweep:
        arms = [a for a in P["arms"] if t_star == t_main or (
            a in P.get("sweep_arms", ("B", "C")) and (
                ARMS[a]["start"] == "t_star" or ARMS[a].get("n_steps") == "t_star"))]
        seeds = P["train_seeds"] if t_star == t_main else P.get("sweep_seeds", (0,))
        for seed in seeds:
            for a in arms:
                w = ARMS[a]["weights"]
                if seed not in P["train_seeds_per_arm"].get(w, P["train_seeds"]):
                    continue
                spec = TRAIN_ARMS[w]
                t_max = P["T"] if spec["t_max"] == "T" else t_star
                runs.add((w, t_max, seed, spec["budget"]))
                start = P["T"] if ARMS[a]["start"] == "T" else t_star
                nfe = (t_star if ARMS[a].get("n_steps") == "t_star" else start // k) + 1
                evals += nfe * P["n_samples"]
    return dict(runs=sorted(runs), n_runs=len(runs),
                budget_units=sum(r[3] for r in runs), molecule_evaluations=evals,
                )


def estimate_study_time(P: dict, data: QM9Data, *, steps: int = 20) -> dict:
    """Projected wall time of :func:`run_study` on this machine: one measured
    training step (the preset's batch, AdamW, clipping) times the planned steps, plus
    one measured network evaluation per molecule (at ``sample_batch``) times the
    planned evaluations. T* is taken as 0.55 T when it is to be measured."""
    refimpl.seed_everything(0)
    dev = refimpl.device()
    model = build_model(P, data.num_types).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=P["lr"])
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(4):
        idx = torch.randint(0, len(data.train), (P["batch_size"],), generator=g)
        batches.append(tuple(t.to(dev) for t in crop_collate(
            [data.train[int(i)] for i in idx])))

    def step(b):
        opt.zero_grad(set_to_none=True)
        model(*b).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        opt.step()

    for b in batches:
        step(b)
    t0 = time.perf_counter()
    for i in range(steps):
        step(batches[i % 4])
    step_s = (time.perf_counter() - t0) / steps
    n = data.num_atoms.sample(min(P["sample_batch"], P["n_samples"]), generator=g)
    with torch.no_grad():
        model.eval()
        model.sample(n.to(dev), start_t=min(4, P["T"]), start_variance=1.0)
        t0 = time.perf_counter()
        r = model.sample(n.to(dev), start_t=min(8, P["T"]), start_variance=1.0)
        eval_s = (time.perf_counter() - t0) / (r.nfe * n.numel())
    t_main = P["t_star"] if isinstance(P["t_star"], int) else int(0.55 * P["T"])
    plan = study_plan(P, t_main)
    steps_per_epoch = -(-len(data.train) // P["batch_size"])
    train_steps = plan["budget_units"] * P["epochs"] * steps_per_epoch
    return dict(
        step_seconds=step_s,
        eval_seconds_per_molecule=eval_s,
        training_runs=plan["n_runs"],
        optimizer_steps=int(train_steps),
        training_hours=train_steps * step_s / 3600,
        sampling_hours=plan["molecule_evaluations"] * eval_s / 3600,
        total_hours=(train_steps * step_s + plan["molecule_evaluations"] * eval_s)
        / 3600,
        note="excludes RDKit evaluation and the Gaussianity curves (minutes)",
    )


if __name__ == "__main__":
    raise SystemExit(main())
