r"""Chapter 1's side-by-side study of six neural operators at any scale.

Six models, one protocol (:func:`refimpl.operators.benchmark.train_and_evaluate`):
FNO, U-Net, DeepONet, CNO, transform-once (T1) and a Galerkin transformer,
trained on three tasks (wave :math:`u_0\mapsto u(\cdot,t)` at :math:`t=1` and
:math:`t=5`, Darcy :math:`a\mapsto u`) and scored on the training grid and,
zero-shot, on a grid twice as fine. At the ``book`` and ``full`` scales the six
models have matched parameter budgets (:data:`PARAM_BUDGET`; ``full`` within
±10 %, checked by the tests), and the study repeats over several training seeds
(the data are the same for every seed) so that models can be compared seed by
seed with :func:`refimpl.stats.paired`.

Command line (writes ``results.csv`` + ``README.md`` through
:func:`refimpl.results.write_run`; finished (seed, model) parts are kept in
``OUT/parts`` and skipped on a rerun, so an interrupted run resumes)::

    python -m refimpl.experiments.operator_classification --scale full
    python -m refimpl.experiments.operator_classification --scale full --double

``--double`` doubles the epochs (the convergence check of the ``full`` scale:
compare its rows with the plain run's using :func:`refimpl.stats.convergence`).
``--models M ...`` restricts a call to some models, so that two processes (one
per CPU core) can share one study's parts; a last call without it assembles
them. The default output folder is ``refimpl.cache_dir("operator_classification",
SCALE)`` (``SCALE-double`` with ``--double``); a maintainer copies a finished
``full`` run to ``book/data/operator_classification/full/``.
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

import refimpl
from refimpl.experiments import add_study_arguments, command_line, study_models
from refimpl.operators.benchmark import (OperatorData, convergence_rows, darcy_data,
                                         model_factories, train_and_evaluate,
                                         wave_data)
from refimpl.stats import markdown_table, read_csv, write_csv

__all__ = ["PRESETS", "PARAM_BUDGET", "COLUMNS", "TOPIC", "make_datasets",
           "run_seed", "run_study", "caveats", "main"]

TOPIC = "operator_classification"

#: Every size of the study and of chapter 1, per scale. ``seeds`` are training
#: seeds (initialisation and batch order); the data are drawn once (seed 0).
PRESETS: dict[str, dict[str, Any]] = {
    # seconds: tiny grids, samples, widths and epochs; numbers are not meant
    # to be read
    "smoke": dict(
        res=17, transfer_res=33, n_train=24, n_val=8, n_test=8, epochs=2,
        batch_size=8, lr=1e-3, darcy_oversample=2, seeds=(0, 1),
        models={
            "FNO": dict(modes=4, width=8, n_layers=2, padding=0.125,
                        projection_channels=16),
            "UNet": dict(width=4, depth=2),
            "DeepONet": dict(n_basis=16, width=4, n_down=2, sensors=17,
                             trunk_width=16, trunk_layers=2),
            "CNO": dict(width=4, depth=1, n_res=1, n_res_neck=1,
                        latent_resolution=17),
            "T1": dict(modes=6, width=8, n_layers=2),
            "GalerkinTransformer": dict(width=8, n_layers=2, n_heads=2)}),
    # minutes on a 2-core CPU: 32 x 32 cells, ~40k parameters per model (within
    # about +-15 %), few epochs, one seed
    "book": dict(
        res=33, transfer_res=65, n_train=320, n_val=64, n_test=100,
        epochs=20, batch_size=16, lr=1e-3, darcy_oversample=2, seeds=(0,),
        models={
            "FNO": dict(modes=6, width=8, n_layers=4, padding=0.125,
                        projection_channels=64),
            "UNet": dict(width=4, depth=3),
            "DeepONet": dict(n_basis=32, width=4, n_down=3, sensors=33,
                             trunk_width=64, trunk_layers=3),
            "CNO": dict(width=8, depth=2, n_res=1, n_res_neck=1,
                        latent_resolution=33),
            "T1": dict(modes=12, width=28, n_layers=3),
            "GalerkinTransformer": dict(width=32, n_layers=4, n_heads=4)}),
    # the committed comparison (about 3 h of one core of the 2-core CPU,
    # minutes on a GPU): the book's grids, 800 training samples, 45 epochs,
    # three seeds, 100k parameters per model (+-10 %). Meant to be converged;
    # the committed --double check (book/data/operator_classification/full/
    # convergence.csv) says where it is not, and chapter 1 prints it
    "full": dict(
        res=33, transfer_res=65, n_train=800, n_val=100, n_test=200,
        epochs=45, batch_size=20, lr=1e-3, darcy_oversample=2, seeds=(0, 1, 2),
        models={
            "FNO": dict(modes=8, width=10, n_layers=4, padding=0.125,
                        projection_channels=64),
            "UNet": dict(width=7, depth=3),
            "DeepONet": dict(n_basis=64, width=4, n_down=2, sensors=33,
                             trunk_width=64, trunk_layers=3),
            "CNO": dict(width=10, depth=2, n_res=2, n_res_neck=2,
                        latent_resolution=33),
            "T1": dict(modes=16, width=32, n_layers=4),
            "GalerkinTransformer": dict(width=56, n_layers=4, n_heads=4)}),
    # GPU: 64 x 64 grid and published model sizes (FNO: Li et al.; CNO,
    # DeepONet, T1, Galerkin transformer: the authors' wave configurations; not
    # matched), one shared schedule
    "paper": dict(
        res=64, transfer_res=127, n_train=1000, n_val=100, n_test=200,
        epochs=500, batch_size=20, lr=1e-3, darcy_oversample=2, seeds=(0, 1, 2),
        models={
            "FNO": dict(modes=12, width=32, n_layers=4, padding=0.125),
            "UNet": dict(width=32, depth=4),
            "DeepONet": dict(n_basis=256, width=32, n_down=4, sensors=64,
                             trunk_width=256, trunk_layers=4),
            "CNO": dict(width=24, depth=3, n_res=4, n_res_neck=6,
                        latent_resolution=64),
            "T1": dict(modes=32, width=24, n_layers=3),
            "GalerkinTransformer": dict(width=64, n_layers=4, n_heads=4,
                                        ffn_width=256)}),
}

#: The parameter budget the models of a scale are matched to, and the relative
#: tolerance (``None``: not matched).
PARAM_BUDGET: dict[str, tuple[int, float] | None] = {
    "smoke": None, "book": (40_000, 0.15), "full": (100_000, 0.10), "paper": None}

#: The columns of ``results.csv`` (what chapter 1's committed section reads).
COLUMNS: tuple[str, ...] = (
    "scale", "seed", "epochs", "dataset", "model", "family", "n_params", "val",
    "test", "grid", "zero_shot", "ratio", "zero_shot_exact", "ratio_exact",
    "input_change", "train_seconds")


def make_datasets(P: Mapping[str, Any], progress: bool = False) -> list[OperatorData]:
    """The three tasks of a preset (wave t = 1, wave t = 5, Darcy), each with its
    test functions also on the ``transfer_res`` grid; drawn with seed 0."""
    sizes = dict(n_train=P["n_train"], n_val=P["n_val"], n_test=P["n_test"],
                 resolution=P["res"], test_resolutions=[P["transfer_res"]])
    return [wave_data(1.0, **sizes), wave_data(5.0, **sizes),
            darcy_data(**sizes, oversample=P["darcy_oversample"], progress=progress)]


def run_seed(P: Mapping[str, Any], datasets: Sequence[OperatorData], seed: int, *,
             models: Sequence[str] | None = None, epochs: int | None = None,
             scale: str = "", device: torch.device | str | None = None,
             progress: bool = False) -> tuple[list[dict[str, Any]], Any]:
    """Train the preset's models (or the named subset) on ``datasets`` with one
    training seed; returns the :data:`COLUMNS` rows and the
    :class:`~refimpl.operators.benchmark.BenchmarkResults`."""
    configs = {m: P["models"][m] for m in (models or P["models"])}
    epochs = int(epochs or P["epochs"])
    results = train_and_evaluate(model_factories(configs), datasets, epochs=epochs,
                                 batch_size=P["batch_size"], lr=P["lr"], seed=seed,
                                 device=device, progress=progress)
    grid = f"{P['transfer_res']}x{P['transfer_res']}"
    rows = [dict(scale=scale, seed=seed, epochs=epochs, **row)
            for row in results.rows(grid)]
    return [{c: row[c] for c in COLUMNS} for row in rows], results


def run_study(scale: str, *, out: Path | None = None, seeds: Sequence[int] | None = None,
              models: Sequence[str] | None = None,
              double: bool = False, plain: Path | None = None,
              device: torch.device | str | None = None,
              progress: bool = True, command: str = "") -> Path:
    """The whole study at ``scale``: every seed and model, resumable per (seed,
    model) part in ``out/parts``; writes ``out/results.csv`` and ``README.md``.
    With ``double`` the epochs are doubled and, if the plain run's
    ``results.csv`` is in ``plain`` (default: the plain run's default folder),
    the convergence check (:func:`~refimpl.operators.benchmark.convergence_rows`)
    goes to ``out/convergence.csv`` and the README. ``models`` (default: every
    model of the preset) restricts the run to some models, so that two processes
    can share one study's parts (e.g. one per CPU core); a last call without it
    assembles every part. Returns the CSV's path."""
    from refimpl.results import resumable_part, study_folder, write_run

    P = refimpl.preset(PRESETS, scale)
    seeds = tuple(P["seeds"] if seeds is None else seeds)
    names = study_models(models, P["models"])
    epochs = P["epochs"] * (2 if double else 1)
    out, parts = study_folder(TOPIC, scale, out, double)
    device = torch.device(device) if device is not None else refimpl.device()
    start = time.perf_counter()
    datasets = None
    rows: list[dict[str, Any]] = []

    def train(seed: int, model: str) -> list[dict[str, Any]]:
        nonlocal datasets
        if datasets is None:
            datasets = make_datasets(P, progress=progress)
        new, _ = run_seed(P, datasets, seed, models=[model], epochs=epochs,
                          scale=scale, device=device, progress=progress)
        tests = ", ".join(f"{r['dataset']}: {r['test']:.4f}" for r in new)
        print(f"seed {seed} {model}: {tests}", flush=True)
        return new

    for seed in seeds:
        for model in names:
            rows += resumable_part(parts / f"seed{seed}_{model}.csv",
                                   partial(train, seed, model), COLUMNS,
                                   label=f"seed {seed} {model}")
    wall = time.perf_counter() - start
    train_min = sum(float(r["train_seconds"]) for r in rows) / 60
    notes = (f"Scale `{scale}`, seeds {list(seeds)}, models {names}, {epochs} epochs"
             f"{' (doubled: the convergence check)' if double else ''}. Rows kept "
             f"from earlier (resumed) parts are included; the wall time counts "
             f"only this invocation. Training time summed over all rows: "
             f"{train_min:.1f} min.")
    if double:
        plain_csv = Path(plain if plain is not None
                         else refimpl.cache_dir(TOPIC, scale)) / "results.csv"
        if plain_csv.is_file():
            conv = convergence_rows(read_csv(plain_csv), rows)
            write_csv(conv, out / "convergence.csv")
            ok = sum(c["converged"] for c in conv)
            notes += (f"\n\nConvergence against `{plain_csv}` (seed-mean test error, "
                      f"tolerance 10 %): {ok} of {len(conv)} converged.\n\n"
                      + markdown_table(conv))
        else:
            notes += (f"\n\nNo plain run at `{plain_csv}`: no convergence check "
                      "(pass --plain DIR).")
    return write_run(rows, out, command=command or f"--scale {scale}",
                     wall_seconds=wall, device=device, columns=COLUMNS, notes=notes)


def caveats(P: Mapping[str, Any],
            convergence: Sequence[Mapping[str, Any]] | None = None,
            rtol: float = 0.10) -> list[str]:
    """What the committed study's verdicts do not establish, as Markdown list
    items for the chapter's summary: the shared, untuned learning rate of preset
    ``P``, and the convergence check (the ``convergence.csv`` rows written by
    ``--double``, or :obj:`None` when it has not been run): which (dataset,
    model) pairs moved by more than ``rtol`` with twice the epochs and which
    models it did not cover."""
    lines = [f"- Tuning: every model trains with the same learning rate "
             f"({P['lr']:g}), batch size and epochs; no model's rate was tuned on "
             f"validation data, so a ranking can reflect how well that one "
             f"setting suits each architecture (chapter 3's sweep shows how much "
             f"the rate can matter)."]
    if not convergence:
        lines.append(f"- Convergence: the check with twice the epochs (`--double`) "
                     f"has not been run for this study, so it is not established "
                     f"that {P['epochs']} epochs are enough; the verdicts hold for "
                     f"this training budget.")
        return lines
    change = {(c["dataset"], c["model"]): float(c["long"]) / float(c["short"]) - 1
              for c in convergence}
    moved = [f"{d} / {m} ({100 * x:+.0f} %)" for (d, m), x in change.items()
             if abs(x) > rtol]
    unchecked = [m for m in P["models"] if m not in {c["model"] for c in convergence}]
    checked = len(convergence)
    if moved:
        text = (f"- Convergence: with twice the epochs the mean test error moves by "
                f"more than {100 * rtol:.0f} % for {', '.join(moved)} ("
                f"{checked - len(moved)} of {checked} checked pairs move less); "
                f"verdicts involving them hold for the preset's {P['epochs']} "
                f"epochs, not for converged models.")
    else:
        text = (f"- Convergence: with twice the epochs every checked model's mean "
                f"test error moves by at most {100 * rtol:.0f} % ({checked} "
                f"dataset–model pairs).")
    if unchecked:
        text += f" Not checked: {', '.join(unchecked)}."
    lines.append(text)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m refimpl.experiments.operator_classification",
        description=__doc__.split("\n\n")[0])
    add_study_arguments(parser, TOPIC)
    parser.add_argument("--plain", type=Path, default=None,
                        help="with --double: the plain run's folder to check "
                             "convergence against (default: its default --out)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    scale = refimpl.scale(args.scale)
    os.environ["REFIMPL_SCALE"] = scale
    path = run_study(scale, out=args.out, seeds=args.seeds, models=args.models,
                     double=args.double,
                     plain=args.plain, device=args.device, progress=not args.no_progress,
                     command=command_line("operator_classification", argv))
    print(f"wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

