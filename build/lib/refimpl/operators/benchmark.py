r"""Train several operators side by side on the same data and tabulate them.

The loops of chapter 1 live here so that the notebook cells stay short:

* :func:`wave_data` and :func:`darcy_data` build train/validation/test splits (plus
  test sets of the *same functions* at other resolutions) from :mod:`refimpl.pde`;
* :func:`train_and_evaluate` trains every model on every dataset with
  :func:`refimpl.training.fit` (same epochs, batch, optimiser and seed), selects the
  weights on the validation set, and scores the test sets;
* :class:`BenchmarkResults` renders the Markdown tables and
  :func:`plot_predictions` the prediction-versus-truth figure.

Metric: the relative :math:`L^2` error per test sample, averaged over the test set
(:func:`refimpl.operators.losses.relative_l2`), on decoded (physical-unit) fields.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from .losses import relative_l2
from .normalized import NormalizedOperator

__all__ = ["OperatorData", "wave_data", "darcy_data", "RunResult", "BenchmarkResults",
           "model_factories", "model_table", "train_and_evaluate", "evaluate_operator",
           "input_resampling_error", "summary_rows", "paired_rows", "convergence_rows",
           "predict", "plot_predictions", "plot_transfer", "maybe_compile"]


# --------------------------------------------------------------------------- data
@dataclass
class OperatorData:
    """Input/target fields ``(N, C, H, W)`` of one operator-learning task.

    The test rows come *first* in the seeded draw of :mod:`refimpl.pde`, whose
    draws are prefix-stable, so ``extra_tests`` (keyed by a label such as
    ``"65x65"``) hold the same test functions sampled on other grids.
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    extra_tests: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)

    @property
    def resolution(self) -> tuple[int, int]:
        return tuple(self.x_train.shape[-2:])

    @property
    def label(self) -> str:
        return "x".join(map(str, self.resolution))

    def __repr__(self) -> str:
        extra = ", ".join(self.extra_tests) or "none"
        return (f"OperatorData({self.name!r}, train={len(self.x_train)}, "
                f"val={len(self.x_val)}, test={len(self.x_test)}, grid={self.label}, "
                f"extra tests: {extra})")


def _check_split(n_train: int, n_val: int, n_test: int) -> None:
    for name, n in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")


def _split(name: str, x: Tensor, y: Tensor, n_val: int, n_test: int) -> OperatorData:
    x, y = x.unsqueeze(1), y.unsqueeze(1)
    v = n_test + n_val
    return OperatorData(name, x[v:], y[v:], x[n_test:v], y[n_test:v], x[:n_test],
                        y[:n_test])


def wave_data(t: float, n_train: int, n_val: int, n_test: int, resolution: int = 64,
              test_resolutions: Iterable[int] = (), seed: int = 0, **kwargs: Any
              ) -> OperatorData:
    r"""The wave benchmark :math:`u_0\mapsto u(\cdot,t)`
    (:func:`refimpl.pde.wave.sample`).

    Args:
        t: horizon.
        n_train, n_val, n_test: split sizes.
        resolution: grid of the train/validation/test sets.
        test_resolutions: further grids on which the test functions are sampled
            (``extra_tests``), for zero-shot discretisation transfer.
        seed: seed of the coefficient draw.
        **kwargs: ``K``, ``c``, ``r`` of :func:`refimpl.pde.wave.sample`.
    """
    from refimpl.pde import wave

    _check_split(n_train, n_val, n_test)
    n = n_train + n_val + n_test
    u0, ut = wave.sample(n, t, resolution=resolution, seed=seed, **kwargs)
    data = _split(f"wave t={t:g}", u0, ut, n_val, n_test)
    for res in test_resolutions:
        a, b = wave.sample(n_test, t, resolution=res, seed=seed, **kwargs)
        data.extra_tests[f"{res}x{res}"] = (a.unsqueeze(1), b.unsqueeze(1))
    return data


def darcy_data(n_train: int, n_val: int, n_test: int, resolution: int = 33,
               test_resolutions: Iterable[int] = (), seed: int = 0,
               oversample: int = 1, progress: bool | None = None, **kwargs: Any
               ) -> OperatorData:
    r"""Darcy flow :math:`a\mapsto u` (:func:`refimpl.pde.darcy.sample`).

    The coefficient field of a seed is the same continuous field at every grid; a
    test set at another resolution is solved on the same fine grid as the training
    set whenever the two nest (e.g. 33 with ``oversample=2`` and 65), so that the
    targets differ only by sub-sampling, not by discretisation error.

    Args:
        n_train, n_val, n_test: split sizes.
        resolution: nodes per side (walls included).
        test_resolutions: further grids for ``extra_tests``.
        seed: seed of the Gaussian random field.
        oversample: solve on the ``(resolution-1)*oversample+1`` grid and sub-sample.
        progress: progress bar over the solves.
        **kwargs: further arguments of :func:`refimpl.pde.darcy.sample`.
    """
    from refimpl.pde import darcy

    _check_split(n_train, n_val, n_test)
    n = n_train + n_val + n_test
    a, u = darcy.sample(n, resolution, seed=seed, oversample=oversample,
                        progress=progress, **kwargs)
    data = _split("Darcy", a, u, n_val, n_test)
    fine = (resolution - 1) * oversample
    for res in test_resolutions:
        factor = fine // (res - 1) if fine % (res - 1) == 0 else 1
        a2, u2 = darcy.sample(n_test, res, seed=seed, oversample=max(factor, 1),
                              progress=progress, **kwargs)
        data.extra_tests[f"{res}x{res}"] = (a2.unsqueeze(1), u2.unsqueeze(1))
    return data


# --------------------------------------------------------------------- evaluation
@torch.no_grad()
def predict(model: nn.Module, x: Tensor, batch_size: int = 64,
            device: torch.device | str | None = None, **kwargs: Any) -> Tensor:
    """Evaluate ``model`` on ``x`` in eval mode, batch by batch; returns CPU tensors.
    Keyword arguments (e.g. ``output_shape``) go to the model."""
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = [model(x[i:i + batch_size].to(device), **kwargs).float().cpu()
           for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(out)


def evaluate_operator(model: nn.Module, x: Tensor, y: Tensor,
                      batch_size: int = 64, **kwargs: Any) -> Tensor:
    """Per-sample relative L2 errors of ``model`` on ``(x, y)``, shape ``(N,)``
    (keyword arguments go to the model)."""
    return relative_l2(predict(model, x, batch_size, **kwargs), y.float(),
                       reduction="none")


def input_resampling_error(operator: nn.Module, x_other: Tensor,
                           x_exact: Tensor) -> float:
    r"""How much a model's own resampling changes its input: the mean relative
    :math:`L^2` difference between ``operator.resample_input(x_other)`` (the
    input on another grid, resampled to the model's fixed input grid) and
    ``x_exact``, the same functions sampled exactly on that grid. ``nan`` for a
    model without a fixed input grid. Resampling is linear and its weights sum to
    one, so raw and standardised inputs give the same number."""
    resample = getattr(operator, "resample_input", None)
    if getattr(operator, "fixed_input_grid", None) is None or resample is None:
        return math.nan
    with torch.no_grad():
        return relative_l2(resample(x_other.float()), x_exact.float()).item()


# ------------------------------------------------------------------------ results
@dataclass
class RunResult:
    """One trained model on one dataset."""

    model: str
    dataset: str
    family: str
    n_params: int
    val: float
    test: float
    extra: dict[str, float]
    seconds: float
    history: list[dict[str, float]]
    net: nn.Module = field(repr=False)
    #: zero-shot error on each extra grid when the model is given the *exact*
    #: samples of the test functions on its fixed input grid (the training grid)
    #: instead of resampling the extra grid's input: only models with a fixed
    #: input grid (CNO's latent grid, DeepONet's sensors) have entries.
    exact: dict[str, float] = field(default_factory=dict)
    #: relative change of the input by the model's own resampling, per extra grid
    #: (:func:`input_resampling_error`), for the same models.
    resampling: dict[str, float] = field(default_factory=dict)


def _fmt(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.4f}"


@dataclass
class BenchmarkResults:
    """The runs of :func:`train_and_evaluate`, with table renderers."""

    runs: list[RunResult]

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(r.model for r in self.runs))

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(r.dataset for r in self.runs))

    def get(self, model: str, dataset: str) -> RunResult:
        for run in self.runs:
            if run.model == model and run.dataset == dataset:
                return run
        raise KeyError(f"no run of model {model!r} on dataset {dataset!r}")

    def table(self, seconds: bool = False) -> str:
        """Markdown table: one row per model, test relative L2 per dataset."""
        head = ["model", "family", "parameters"] + [f"{d}" for d in self.datasets]
        if seconds:
            head.append("train s (all)")
        lines = ["| " + " | ".join(head) + " |",
                 "|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + "|"]
        for name in self.models:
            runs = [self.get(name, d) for d in self.datasets]
            row = [name, runs[0].family, f"{runs[0].n_params:,}"]
            row += [_fmt(r.test) for r in runs]
            if seconds:
                row.append(f"{sum(r.seconds for r in runs):.0f}")
            lines.append("| " + " | ".join(row) + " |")
        return "\n".join(lines)

    def rows(self, grid: str | None = None) -> list[dict[str, Any]]:
        """One flat record per run (model, dataset): parameters, validation and
        test error, and for the extra grid ``grid`` (default: the first) the
        zero-shot error, its ratio to the test error, the same with exact inputs
        (models with a fixed input grid; ``nan`` otherwise) and the relative input
        change by the model's own resampling (``nan`` otherwise)."""
        out = []
        for r in self.runs:
            g = grid if grid is not None else next(iter(r.extra), None)
            zero = r.extra.get(g, math.nan) if g is not None else math.nan
            exact = r.exact.get(g, math.nan) if g is not None else math.nan
            out.append(dict(
                dataset=r.dataset, model=r.model, family=r.family,
                n_params=r.n_params, val=r.val, test=r.test, grid=g or "",
                zero_shot=zero, ratio=zero / r.test, zero_shot_exact=exact,
                ratio_exact=exact / r.test,
                input_change=r.resampling.get(g, math.nan) if g else math.nan,
                train_seconds=r.seconds))
        return out

    def verdicts(self, grid: str, threshold: float = 1.5) -> str:
        """One line per model: the worst zero-shot/training-grid error ratio over the
        datasets on ``grid`` and whether it stays below ``threshold``."""
        out = []
        for m in self.models:
            runs = [self.get(m, d) for d in self.datasets]
            worst = max(r.extra[grid] / r.test for r in runs)
            verdict = "transfers" if worst < threshold else "degrades"
            out.append(f"{m:10s} ({runs[0].family:10s}) worst ratio {worst:6.2f} "
                       f"-> {verdict}")
        return "\n".join(out)

    def transfer_table(self, dataset: str) -> str:
        """Markdown table of the zero-shot errors on the other grids of ``dataset``
        next to the error on the training grid, with their ratio; for models with a
        fixed input grid also the ratio with exact input samples and the relative
        change of the input by the model's own resampling."""
        runs = [self.get(m, dataset) for m in self.models]
        labels = list(runs[0].extra)
        if not labels:
            raise ValueError(f"dataset {dataset!r} has no test sets on other grids")
        exact = any(r.exact for r in runs)
        head = ["model", "family", "train grid"] + labels + \
            [f"ratio {lab}" for lab in labels]
        if exact:
            head += [f"ratio {lab}, exact input" for lab in labels]
            head += [f"input change {lab}" for lab in labels]
        lines = ["| " + " | ".join(head) + " |",
                 "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
        for r in runs:
            row = [r.model, r.family, _fmt(r.test)]
            row += [_fmt(r.extra[lab]) for lab in labels]
            row += [f"{r.extra[lab] / r.test:.2f}" for lab in labels]
            if exact:
                row += [f"{r.exact[lab] / r.test:.2f}" if lab in r.exact else "—"
                        for lab in labels]
                row += [f"{100 * r.resampling[lab]:.1f} %" if lab in r.resampling
                        else "—" for lab in labels]
            lines.append("| " + " | ".join(row) + " |")
        return "\n".join(lines)


# ------------------------------------------------------------ over seeds (rows)
def _groups(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], list]:
    groups: dict[tuple[str, str], list] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["model"]), []).append(row)
    return groups


def summary_rows(rows: Iterable[Mapping[str, Any]],
                 metrics: Sequence[str] = ("test", "ratio", "ratio_exact")
                 ) -> list[dict[str, Any]]:
    """Per dataset and model: parameters, seeds and a
    :func:`refimpl.stats.summarize` (mean ± sd, *t* interval) of each metric
    over the seeds, from the flat rows of :meth:`BenchmarkResults.rows` (plus a
    ``seed`` column). Metrics that are ``nan`` for a model are left out of its
    record."""
    from refimpl.stats import summarize

    out = []
    for (dataset, model), group in _groups(rows).items():
        rec: dict[str, Any] = dict(dataset=dataset, model=model,
                                   family=group[0]["family"],
                                   n_params=group[0]["n_params"], seeds=len(group))
        for m in metrics:
            values = [float(g[m]) for g in group]
            if all(math.isfinite(v) for v in values):
                rec[m] = summarize(values)
        out.append(rec)
    return out


def paired_rows(rows: Iterable[Mapping[str, Any]], reference: str | None = None,
                metric: str = "test") -> list[dict[str, Any]]:
    """Paired comparisons over seeds (:func:`refimpl.stats.paired`) of every model
    against a reference on each dataset: the mean difference of ``metric`` with its
    *t* interval, the Wilcoxon *p*-value, the ratio of means and a verdict.

    Args:
        rows: flat rows with ``seed``, ``dataset``, ``model`` and ``metric``.
        reference: the model compared against; default: on each dataset, the
            model with the lowest mean ``metric``.
        metric: the column compared (lower is better).
    """
    from refimpl.stats import paired

    groups = _groups(rows)
    out = []
    for dataset in dict.fromkeys(d for d, _ in groups):
        models = [m for d, m in groups if d == dataset]

        def by_seed(model: str) -> dict[Any, float]:
            return {g["seed"]: float(g[metric]) for g in groups[(dataset, model)]}

        ref = reference or min(models, key=lambda m: sum(by_seed(m).values())
                               / len(by_seed(m)))
        if ref not in models:
            raise ValueError(f"reference model {ref!r} has no rows on {dataset!r}; "
                             f"models: {models}")
        base = by_seed(ref)
        for model in models:
            if model == ref:
                continue
            this = by_seed(model)
            seeds = sorted(set(this) & set(base))
            if not seeds:
                continue
            cmp = paired([this[s] for s in seeds], [base[s] for s in seeds])
            out.append(dict(dataset=dataset, model=model, reference=ref,
                            n=cmp.n, difference=cmp, ratio=cmp.ratio,
                            verdict=cmp.verdict(model, ref)))
    return out


def convergence_rows(short: Iterable[Mapping[str, Any]],
                     long: Iterable[Mapping[str, Any]], metric: str = "test",
                     rtol: float = 0.10) -> list[dict[str, Any]]:
    """The convergence check of a study: for every (dataset, model) present in both
    runs, :func:`refimpl.stats.convergence` of the seed-mean ``metric`` at the
    configured training (``short``) and at twice the training (``long``)."""
    from refimpl.stats import convergence

    a, b = _groups(short), _groups(long)
    out = []
    for key in a:
        if key not in b:
            continue
        c = convergence([float(r[metric]) for r in a[key]],
                        [float(r[metric]) for r in b[key]], rtol=rtol)
        out.append(dict(dataset=key[0], model=key[1], short=c.short, long=c.long,
                        rel_change=c.rel_change, converged=c.converged))
    return out


def model_factories(configs: Mapping[str, Mapping[str, Any]], in_channels: int = 1,
                    out_channels: int = 1) -> dict[str, Callable[[], nn.Module]]:
    """Zero-argument factories for :func:`train_and_evaluate` from a table
    ``{class name: constructor kwargs}``, e.g. ``{"FNO": dict(modes=8, width=16,
    n_layers=4)}``; the class names are those of :mod:`refimpl.operators.models`."""
    from . import models as zoo

    known = {n: getattr(zoo, n) for n in zoo.__all__
             if isinstance(getattr(zoo, n), type) and n != "NeuralOperator"
             and issubclass(getattr(zoo, n), zoo.NeuralOperator)}
    out: dict[str, Callable[[], nn.Module]] = {}
    for name, kwargs in configs.items():
        if name not in known:
            raise ValueError(f"unknown model {name!r}; known: {sorted(known)}")
        out[name] = (lambda c=known[name], k=dict(kwargs):
                     c(in_channels, out_channels, **k))
    return out


def model_table(factories: Mapping[str, Callable[[], nn.Module]]) -> str:
    """Markdown table of the models a set of factories builds: name, family (read
    from the ``family`` attribute), parameter count and the docstring's first line."""
    lines = ["| model | family | parameters | what it is |", "|---|---|---:|---|"]
    for name, factory in factories.items():
        model = factory()
        doc = (type(model).__doc__ or "").strip().splitlines()[0].rstrip(",:")
        lines.append(f"| {name} | {getattr(model, 'family', '?')} | "
                     f"{sum(p.numel() for p in model.parameters()):,} | {doc} |")
    return "\n".join(lines)


def train_and_evaluate(
    models: Mapping[str, Callable[[], nn.Module]],
    datasets: Sequence[OperatorData],
    *,
    epochs: int,
    batch_size: int,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool | None = None,
    compile: bool = False,
) -> BenchmarkResults:
    r"""Train every model on every dataset under one protocol and score it.

    For each pair: seed, build a fresh model from its factory, wrap it in a
    :class:`NormalizedOperator` fitted on the training split, train with
    :func:`refimpl.training.fit` (Adam, cosine schedule, relative-L2 loss on decoded
    fields, the same ``epochs``, ``batch_size``, ``lr`` and ``seed`` for all),
    restore the weights of the epoch with the lowest **validation** error (the test
    set is never used for selection), then compute the mean relative L2 error on the
    test set and on every ``extra_tests`` grid (zero-shot). For a model with a
    fixed input grid equal to the training grid (``fixed_input_grid``: CNO's latent
    grid, DeepONet's sensors) it also scores the extra grids with the *exact*
    training-grid samples as input (:attr:`RunResult.exact`) and records how much
    its own resampling changes the input (:attr:`RunResult.resampling`), which
    separates the model's part of the transfer ratio from the resampling's.

    Args:
        models: name -> zero-argument factory returning a fresh ``nn.Module``
            ``(B, C_in, H, W) -> (B, C_out, H, W)``.
        datasets: the tasks.
        epochs, batch_size, lr, weight_decay, seed: the shared protocol.
        device: default :func:`refimpl.device`.
        progress: tqdm bars of :func:`~refimpl.training.fit`.
        compile: try :func:`torch.compile` on each model (see :func:`maybe_compile`).

    Returns:
        :class:`BenchmarkResults`.
    """
    import refimpl
    from refimpl.training import fit

    if not models:
        raise ValueError("models is empty")
    if not datasets:
        raise ValueError("datasets is empty")
    device = torch.device(device) if device is not None else refimpl.device()
    runs: list[RunResult] = []
    for data in datasets:
        train = TensorDataset(data.x_train, data.y_train)
        val = TensorDataset(data.x_val, data.y_val)
        for name, factory in models.items():
            refimpl.seed_everything(seed)
            operator = factory()
            net = NormalizedOperator.fit(operator, data.x_train, data.y_train)
            trained = maybe_compile(net, data.x_train[:1]) if compile else net
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                result = fit(trained, train, epochs=epochs, batch_size=batch_size,
                             loss_fn=relative_l2, val_set=val, lr=lr,
                             weight_decay=weight_decay, seed=seed, device=device,
                             progress=progress, checkpoint_dir=tmp, resume=False)
                best = Path(tmp) / "best.pt"
                if best.exists():
                    state = torch.load(best, map_location=device, weights_only=True)
                    net.load_state_dict(state)
            seconds = time.perf_counter() - start
            net.eval()
            extra = {label: evaluate_operator(net, x, y).mean().item()
                     for label, (x, y) in data.extra_tests.items()}
            exact, resampling = {}, {}
            if getattr(operator, "fixed_input_grid", None) == data.resolution:
                # The test functions on the training grid are exact samples of the
                # extra grids' functions (prefix-stable draws): feed those, and ask
                # for the output on the extra grid.
                for label, (x, y) in data.extra_tests.items():
                    exact[label] = evaluate_operator(
                        net, data.x_test, y,
                        output_shape=tuple(y.shape[-2:])).mean().item()
                    resampling[label] = input_resampling_error(operator, x,
                                                               data.x_test)
            runs.append(RunResult(
                model=name, dataset=data.name, family=getattr(operator, "family", "?"),
                n_params=sum(p.numel() for p in operator.parameters()),
                val=float(result.best_val) if result.best_val is not None else math.nan,
                test=evaluate_operator(net, data.x_test, data.y_test).mean().item(),
                extra=extra, seconds=seconds, history=result.history, net=net,
                exact=exact, resampling=resampling))
    return BenchmarkResults(runs)


def maybe_compile(model: nn.Module, example: Tensor) -> nn.Module:
    """``torch.compile(model)`` if it compiles and runs on ``example`` here (a C++
    toolchain on CPU, Triton on GPU), else ``model`` unchanged. Compilation happens
    on the first call, so a failure is caught there, once."""
    try:
        compiled = torch.compile(model)
        device = next(model.parameters()).device
        compiled(example.to(device)).sum().backward()
        model.zero_grad(set_to_none=True)
        return compiled
    except Exception:  # noqa: BLE001 - any backend failure means "run eagerly"
        model.zero_grad(set_to_none=True)
        return model


# ----------------------------------------------------------------------- figures
def plot_predictions(results: BenchmarkResults, data: OperatorData, sample: int = 0,
                     models: Sequence[str] | None = None, grid: str | None = None,
                     cmap: str = "RdBu_r"):
    """Input, truth, and each model's prediction and error for one test sample.

    Args:
        results: the trained runs.
        data: the dataset (its ``name`` selects the runs).
        sample: index of the test sample.
        models: the models to show (default: all).
        grid: a key of ``data.extra_tests`` to show the zero-shot predictions on
            that grid instead of the training grid.

    Returns the matplotlib figure: the truth and the predictions (with the
    truth's colour range) in the top row, the input and the absolute errors
    (with a shared range) below.
    """
    import matplotlib.pyplot as plt

    names = list(models) if models is not None else results.models
    xs, ys = (data.x_test, data.y_test) if grid is None else data.extra_tests[grid]
    x, y = xs[sample:sample + 1], ys[sample, 0]
    preds = {m: predict(results.get(m, data.name).net, x)[0, 0] for m in names}
    lim = float(y.abs().max())
    err_max = max(float((p - y).abs().max()) for p in preds.values()) or 1.0
    from refimpl.plotting import PAGE_WIDTH_IN

    # no wider than the book's text column, so that its labels stay readable
    cols = 1 + len(names)
    fig, axes = plt.subplots(2, cols, figsize=(min(PAGE_WIDTH_IN, 1.4 * cols), 3.6),
                             squeeze=False)
    axes[0, 0].imshow(y.numpy(), cmap=cmap, vmin=-lim, vmax=lim)
    axes[0, 0].set_title("truth", fontsize=9)
    axes[1, 0].imshow(x[0, 0].numpy(), cmap="viridis")
    axes[1, 0].set_title("input", fontsize=9)
    for j, m in enumerate(names, start=1):
        axes[0, j].imshow(preds[m].numpy(), cmap=cmap, vmin=-lim, vmax=lim)
        err = relative_l2(preds[m][None], y[None]).item()
        axes[0, j].set_title(f"{m}\nrel. L2 {err:.3f}", fontsize=9)
        im = axes[1, j].imshow((preds[m] - y).abs().numpy(), cmap="magma", vmin=0,
                               vmax=err_max)
        axes[1, j].set_title("|error|", fontsize=9)
    fig.colorbar(im, ax=axes[1, -1], fraction=0.046)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    label = data.label if grid is None else f"{grid} (zero-shot)"
    fig.suptitle(f"{data.name}, test sample {sample}, {label} grid")
    fig.tight_layout()
    return fig


_FAMILY_HATCH = {"spatial": "//", "functional": "", "dual": ".."}


def plot_transfer(results: BenchmarkResults, grid: str, ax=None,
                  title: str | None = None):
    """Bar chart of zero-shot error on ``grid`` divided by the error on the training
    grid, per model and dataset (groups); spatial-domain models are hatched. A ratio
    near 1 means the model defines the same operator on both grids."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    from refimpl.plotting import PAGE_WIDTH_IN

    if ax is None:
        _, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 3.6))
    models, datasets = results.models, results.datasets
    step = 1.0 / (len(models) + 1)
    all_ratios = []
    for i, m in enumerate(models):
        runs = [results.get(m, d) for d in datasets]
        ratios = [r.extra[grid] / r.test for r in runs]
        all_ratios += ratios
        xs = [j + (i - (len(models) - 1) / 2) * step for j in range(len(datasets))]
        ax.bar(xs, ratios, width=0.9 * step, label=f"{m} ({runs[0].family})",
               color=f"C{i}", hatch=_FAMILY_HATCH.get(runs[0].family, ""),
               edgecolor="black")
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    ax.set_xticks(range(len(datasets)), datasets)
    ax.set_yscale("log")
    lo, hi = min(0.5, 0.8 * min(all_ratios)), max(2.0, 1.3 * max(all_ratios))
    ax.set_ylim(lo, hi)
    ax.set_yticks([t for t in (0.25, 0.5, 1, 2, 5, 10, 20, 50, 100) if lo <= t <= hi])
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    if title is not None:
        ax.set_title(title)
    ax.set_ylabel(f"error on {grid}\n/ error on training grid")
    ax.legend(fontsize=8, ncol=3, loc="upper left")
    ax.figure.tight_layout()
    return ax
