r"""Chapter 2's spatial-dependency study of neural operators at any scale.

Every model of :data:`MODELS` (spatial-domain U-Net, CNO and the attention
operator when it is available; functional-domain FNO and DeepONet) is trained on
the exact wave data :math:`u_0\mapsto u(\cdot,t)` (:mod:`refimpl.pde.wave`) at
the preset's horizons (:math:`t = 1`, where the ring is local, and :math:`t = 5`,
the horizon of Gao et al.'s Figure 2), for several training seeds, and its
learned spatial dependency at the five probes is scored against the analytic
Green's function (:func:`refimpl.explain.erf_study.erf_study`): Pearson
:math:`r` and the relative L2 distance of magnitudes, the projected signed
correlation :math:`r_\text{proj}` and the off-span fraction :math:`\phi`
(spec §5.5), and the ring-radius error. Two **null controls** are scored like a
model at every horizon: the featureless Gaussian blob of width :math:`ct`
(:func:`~refimpl.explain.erf_study.blob_control`) and the :data:`SHUFFLED` model
trained on targets permuted across samples, so a reader can see what a score
means when nothing was learned.

Command line (writes ``results.csv`` + ``README.md`` through
:func:`refimpl.results.write_run`, one row per seed, model, horizon and probe,
columns :data:`COLUMNS`; finished (seed, horizon, model) parts are kept in
``OUT/parts`` and skipped on a rerun, so an interrupted run resumes)::

    python -m refimpl.experiments.hidden_physics --scale full
    python -m refimpl.experiments.hidden_physics --scale full --double

``--double`` doubles the epochs (the convergence check: compare the two runs'
rows with :func:`refimpl.stats.convergence`). ``--models M ...`` restricts a
call to some models, so that two processes (one per CPU core) can share one
study's parts; a last call without it assembles them. The default output folder is
``refimpl.cache_dir("hidden_physics", SCALE)`` (``SCALE-double`` with
``--double``); a maintainer copies a finished ``full`` run to
``book/data/hidden_physics/full/``. The driver only calls library pieces; the
metrics live in :mod:`refimpl.explain`.

**Cost.** Train-step times at 64², batch 16, relative to the FNO's (measured
alternately in one process on a loaded 2-core CPU, so only the ratios are
meaningful): U-Net 1.4, CNO 1.9–2.3 (without / with BatchNorm), the attention
operator at the ``book`` size 1.4, DeepONet 0.6. The ``full`` scale trains
:math:`1024/16\times 20 = 1280` steps per model, about 7.7 FNO-trainings per
(seed, horizon) with the shuffled control, 46 in all; at the FNO step time
inferred from the former 290 s book-scale chapter on an idle 2-core CPU
(about 0.085 s) that is about 1.4 h, within the 2 h budget of the ``full``
scale (not yet measured end to end: run it on an idle machine).
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

import refimpl
from refimpl.experiments import add_study_arguments, command_line, study_models
from refimpl.explain import erf_study as study
from refimpl.operators.models import CNO, FNO, DeepONet, UNet
from refimpl.pde import wave
from refimpl.pde.sine import sine_basis

try:  # the attention operator of chapter 1 (issue 14, first half)
    from refimpl.operators.models import GalerkinTransformer
except ImportError:  # pragma: no cover - until it lands on main
    GalerkinTransformer = None

__all__ = [
    "BLOB",
    "COLUMNS",
    "MODELS",
    "PRESETS",
    "SHUFFLED",
    "TOPIC",
    "C",
    "available_models",
    "basis",
    "cell_names",
    "main",
    "model_factories",
    "probes",
    "run_cell",
    "run_study",
    "study_kwargs",
]

TOPIC = "hidden_physics"
#: Wave speed of the benchmark.
C = 0.1
#: The models of the study, spatial-domain first. "Attention" is trained when
#: :class:`refimpl.operators.models.GalerkinTransformer` exists.
MODELS = ("U-Net", "CNO", "Attention", "FNO", "DeepONet")
#: The model trained on shuffled targets (the trained null control).
SHUFFLED = "FNO"
#: Name of the blob null control.
BLOB = "blob (null)"
#: The columns of ``results.csv`` (what chapter 2 reads).
COLUMNS = ("seed", "model", "family", "t", "probe", "n_params", "epochs",
           "test_error", "pearson", "rel_l2", "cosine", "r_proj", "phi",
           "ring_error")

_ARCH = {
    "smoke": dict(unet=dict(width=4, depth=2), cno=dict(width=4, depth=2),
                  fno=dict(modes=8, width=8), deeponet=dict(n_basis=16, width=4),
                  attention=dict(width=8, n_layers=1, n_heads=2)),
    "book": dict(unet=dict(width=16, depth=2), cno=dict(width=16, depth=2),
                 fno=dict(modes=16, width=20), deeponet=dict(n_basis=64, width=16),
                 attention=dict(width=32, n_layers=2, n_heads=4)),
    "paper": dict(unet=dict(width=32, depth=4), cno=dict(width=32, depth=3),
                  fno=dict(modes=16, width=32),
                  deeponet=dict(n_basis=256, width=32),
                  attention=dict(width=64, n_layers=4, n_heads=4)),
}

#: Sizes per scale. ``book``: the chapter's live run on a CPU (one seed);
#: ``full``: the committed study (3 seeds, both horizons, every model and both
#: controls; see *Cost* in the module notes); ``paper``: the authors' six
#: horizons at a GPU budget.
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": dict(
        resolution=32, n_train=24, n_val=4, n_test=8, n_explain=4, epochs=1,
        batch_size=8, lr=2e-3, times=(1.0, 5.0), seeds=(0,),
        models=("U-Net", "FNO", "DeepONet"), **_ARCH["smoke"]),
    "book": dict(
        resolution=64, n_train=384, n_val=64, n_test=64, n_explain=16,
        epochs=12, batch_size=16, lr=2e-3, times=(1.0, 5.0), seeds=(0,),
        models=("U-Net", "CNO", "Attention", "FNO", "DeepONet"), **_ARCH["book"]),
    "full": dict(
        resolution=64, n_train=1024, n_val=128, n_test=128, n_explain=32,
        epochs=20, batch_size=16, lr=2e-3, times=(1.0, 5.0), seeds=(0, 1, 2),
        models=("U-Net", "CNO", "Attention", "FNO", "DeepONet"), **_ARCH["book"]),
    "paper": dict(
        resolution=64, n_train=1600, n_val=200, n_test=200, n_explain=32,
        epochs=200, batch_size=16, lr=1e-3, times=(1.0, 2.0, 3.0, 4.0, 5.0, 6.0),
        seeds=(0, 1, 2), models=("U-Net", "CNO", "Attention", "FNO", "DeepONet"),
        **_ARCH["paper"]),
}


def model_factories(P: Mapping[str, Any]) -> dict[str, Callable[[], nn.Module]]:
    """Name -> factory of a fresh ``(B, 1, n, n) -> (B, 1, n, n)`` model with the
    preset's sizes. FNO gets 16 modes per direction (the data's 24 sine modes are
    Fourier frequencies up to 12, a little more after padding) and no coordinate
    channels; DeepONet and the attention operator need coordinates."""
    out: dict[str, Callable[[], nn.Module]] = {
        "U-Net": lambda: UNet(1, 1, **P["unet"]),
        "CNO": lambda: CNO(1, 1, **P["cno"]),
        "FNO": lambda: FNO(1, 1, n_layers=4, padding=0.08, grid=False, **P["fno"]),
        "DeepONet": lambda: DeepONet(1, 1, **P["deeponet"]),
    }
    if GalerkinTransformer is not None:
        out["Attention"] = lambda: GalerkinTransformer(1, 1, **P["attention"])
    return out


def available_models(P: Mapping[str, Any]) -> tuple[str, ...]:
    """The preset's models that exist in this installation (``"Attention"`` is
    dropped, with a printed note, until the attention operator is available)."""
    have = model_factories(P)
    missing = [m for m in P["models"] if m not in have]
    if missing:
        print(f"note: {', '.join(missing)} not available in this refimpl; "
              "skipped", flush=True)
    return tuple(m for m in P["models"] if m in have)


def basis(P: Mapping[str, Any]) -> torch.Tensor:
    """The sine modes that span every wave input, ``(resolution, K)``."""
    return sine_basis(P["resolution"], 24)


def probes(P: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """The authors' five probes scaled to the preset's grid."""
    n = P["resolution"]
    return {k: (i * n // 64, j * n // 64) for k, (i, j) in wave.PROBES.items()}


def study_kwargs(P: Mapping[str, Any], *, epochs: int | None = None,
                 device: torch.device | str | None = None) -> dict[str, Any]:
    """The keyword arguments of :func:`~refimpl.explain.erf_study.erf_study`
    (everything but models, horizons, seed) for the wave study."""
    return dict(sample=wave.sample, dependency_map=wave.dependency_map,
                probes=probes(P), n_train=P["n_train"], n_val=P["n_val"],
                n_test=P["n_test"], n_explain=P["n_explain"],
                epochs=P["epochs"] if epochs is None else epochs,
                batch_size=P["batch_size"], lr=P["lr"], resolution=P["resolution"],
                device=device, basis=basis(P), ring_speed=C)


def run_cell(P: Mapping[str, Any], model: str, t: float, seed: int, *,
             epochs: int | None = None, device: torch.device | str | None = None
             ) -> list[study.ERFRecord]:
    """One (model, horizon, seed) cell: a trained model, the shuffled-target
    control (``model`` = ``"<SHUFFLED> (shuffled)"``) or the blob control
    (``model`` = :data:`BLOB`, seed-independent)."""
    kw = study_kwargs(P, epochs=epochs, device=device)
    if model == BLOB:
        return study.blob_control([t], probes=kw["probes"],
                                  dependency_map=wave.dependency_map,
                                  resolution=P["resolution"],
                                  width=lambda tt: C * tt, basis=kw["basis"],
                                  ring_speed=C)
    shuffled = model == f"{SHUFFLED} (shuffled)"
    name = SHUFFLED if shuffled else model
    factories = model_factories(P)
    if name not in factories:
        raise ValueError(f"unknown or unavailable model {model!r}; available: "
                         f"{sorted(factories)}")
    return study.erf_study({name: factories[name]}, [t], seed=seed,
                           shuffle_targets=shuffled, **kw)


def cell_names(P: Mapping[str, Any]) -> tuple[str, ...]:
    """The models of one horizon and seed: the available models, then the two
    controls."""
    return available_models(P) + (f"{SHUFFLED} (shuffled)", BLOB)


def run_study(scale: str, *, out: Path | None = None,
              seeds: Sequence[int] | None = None,
              models: Sequence[str] | None = None, double: bool = False,
              device: torch.device | str | None = None, command: str = "") -> Path:
    """The whole study at ``scale``, resumable per (seed, horizon, model) part in
    ``out/parts``; writes ``out/results.csv`` and ``README.md`` (columns
    :data:`COLUMNS`). ``models`` (default: every model and control of the preset)
    restricts the run, so that two processes can share one study's parts; a last
    call without it assembles every part. Returns the CSV's path."""
    from refimpl.results import resumable_part, study_folder, write_run

    P = refimpl.preset(PRESETS, scale)
    seeds = tuple(P["seeds"] if seeds is None else seeds)
    epochs = P["epochs"] * (2 if double else 1)
    out, parts = study_folder(TOPIC, scale, out, double)
    device = torch.device(device) if device is not None else refimpl.device()
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    names = study_models(models, cell_names(P))

    def train(seed: int, t: float, model: str) -> list[dict[str, Any]]:
        tic = time.perf_counter()
        recs = run_cell(P, model, t, seed, epochs=epochs, device=device)
        new = study.record_rows(recs, seed=seed, epochs=0 if model == BLOB else epochs)
        rec = recs[0]
        print(f"seed {seed} t={t:g} {model}: test {rec.test_error:.4f}, "
              f"r_proj {rec.r_proj:.3f}, phi {rec.mean('phi'):.3f} "
              f"({time.perf_counter() - tic:.0f} s)", flush=True)
        return [{c: r[c] for c in COLUMNS} for r in new]

    for seed in seeds:
        for t in P["times"]:
            for model in names:
                tag = model.replace(" ", "_").replace("(", "").replace(")", "")
                rows += resumable_part(parts / f"seed{seed}_t{t:g}_{tag}.csv",
                                       partial(train, seed, t, model), COLUMNS,
                                       label=f"seed {seed} t={t:g} {model}")
    wall = time.perf_counter() - start
    notes = (f"Scale `{scale}`, seeds {list(seeds)}, horizons {list(P['times'])}, "
             f"{epochs} epochs{' (doubled: the convergence check)' if double else ''}"
             f", models {list(names)}. Rows kept from earlier (resumed) parts are "
             f"included; the wall time counts only this invocation.")
    return write_run(rows, out, command=command or f"--scale {scale}",
                     wall_seconds=wall, device=device, columns=COLUMNS, notes=notes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m refimpl.experiments.hidden_physics",
        description=__doc__.split("\n\n")[0])
    add_study_arguments(parser, TOPIC)
    args = parser.parse_args(argv)
    scale = refimpl.scale(args.scale)
    os.environ["REFIMPL_SCALE"] = scale
    path = run_study(scale, out=args.out, seeds=args.seeds, models=args.models,
                     double=args.double,
                     device=args.device, command=command_line("hidden_physics", argv))
    print(f"wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
