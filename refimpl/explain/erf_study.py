r"""The effective-receptive-field study of chapter 2: train operators on a linear
PDE whose Green's function is known, compute their learned spatial dependencies
(:func:`~refimpl.explain.spatial_dependency`) and score them against the analytic
maps (:func:`~refimpl.explain.compare_maps`).

Every map is scored by :func:`score_map`: Pearson :math:`r` and the relative L2
distance of the magnitude maps (:func:`~refimpl.explain.compare_maps`), the
projected signed correlation :math:`r_\text{proj}` and the off-span fraction
:math:`\phi` of spec §5.5 (:func:`~refimpl.explain.projected_scores`), and the
ring-radius error. Two null controls give the scores a meaning: the featureless
blob of :func:`blob_control` and a model trained on shuffled targets
(``erf_study(..., shuffle_targets=True)``); :func:`verdicts` and
:func:`paired_comparisons` turn the scores into computed statements.

The loops over models, horizons and probes live here so that a chapter cell is one
call; every size is an argument, so the same code runs at the ``smoke``, ``book``
and ``paper`` scales. The recipe follows Gao et al. (arXiv:2510.02683) with the
project's corrections: a train/validation/test split (never selecting on the test
set), point-wise Gaussian normalisation fitted on the training split, the loss and
the metric on decoded (physical) fields, and maps taken with respect to the raw
input through the normaliser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from refimpl import stats
from refimpl.operators.losses import relative_l2
from refimpl.pde.normalizer import UnitGaussianNormalizer
from refimpl.training import fit

from .spatial_dependency import compare_maps, projected_scores, spatial_dependency

__all__ = ["TrainedOperator", "ERFRecord", "train_operator", "erf_study",
           "blob_control", "score_map", "record_rows", "summary_rows", "per_seed",
           "SCORE_COLUMNS", "paired_comparisons",
           "METRICS", "analytic_maps", "interior_mask", "score_table",
           "linearization_gap", "ring_radius", "gaussian_bump", "verdicts",
           "study_verdicts",
           "plot_maps", "plot_records"]

#: Map scores per probe: name -> (column label, higher is better).
METRICS: dict[str, tuple[str, bool]] = {
    "pearson": ("Pearson r", True), "rel_l2": ("map rel. L2", False),
    "r_proj": ("r_proj", True), "phi": ("φ (off-span)", False),
    "ring_error": ("ring-radius error", False)}


@dataclass
class TrainedOperator:
    """A model with the normalisers it was trained with and its scores.

    Attributes:
        model: the trained network (eval mode), mapping normalised inputs to
            normalised outputs.
        input_normalizer, output_normalizer: fitted on the training split.
        test_error: mean relative L2 error on the test split, physical units.
        history: per-epoch records of :func:`refimpl.training.fit`.
    """

    model: nn.Module
    input_normalizer: UnitGaussianNormalizer
    output_normalizer: UnitGaussianNormalizer
    test_error: float
    history: list = field(default_factory=list)

    @property
    def normalizer(self) -> tuple[UnitGaussianNormalizer, UnitGaussianNormalizer]:
        """``(input, output)``, the form :func:`spatial_dependency` takes."""
        return self.input_normalizer, self.output_normalizer

    @torch.no_grad()
    def predict(self, u: Tensor) -> Tensor:
        """Physical prediction for raw inputs ``(B, C, H, W)``."""
        dev = self.input_normalizer.mean.device
        x = self.input_normalizer.encode(u.to(dev))
        return self.output_normalizer.decode(self.model(x))


@dataclass
class ERFRecord:
    """One (model, horizon) cell of the study.

    Attributes:
        name, family: the model's label and family (``"spatial"``, ...).
        t: the horizon.
        test_error: relative L2 test error (physical units).
        maps: probe name -> learned map ``(H, W)`` (CPU).
        analytic: probe name -> analytic map ``(H, W)`` (CPU).
        scores: probe name -> :func:`score_map` dict (``pearson``, ``rel_l2``,
            ``cosine``, ``r_proj``, ``phi``, ``ring_error``; ``nan`` where a score
            is not defined).
        n_params: trainable parameters.
        trained: the :class:`TrainedOperator` (model and normalisers).
        signed: probe name -> signed learned map (for :func:`projected_scores`).
    """

    name: str
    family: str
    t: float
    test_error: float
    maps: dict[str, Tensor]
    analytic: dict[str, Tensor]
    scores: dict[str, dict[str, float]]
    n_params: int = 0
    trained: Optional[TrainedOperator] = None
    signed: dict[str, Tensor] = field(default_factory=dict)

    def mean(self, metric: str) -> float:
        """``metric`` averaged over the probes where it is defined (``nan`` if
        nowhere)."""
        return _nanmean([s.get(metric, float("nan")) for s in self.scores.values()])

    @property
    def pearson(self) -> float:
        """Pearson correlation with the analytic map, averaged over probes."""
        return self.mean("pearson")

    @property
    def r_proj(self) -> float:
        r"""Projected signed correlation :math:`r_\text{proj}`, averaged over
        probes."""
        return self.mean("r_proj")


def _nanmean(values: Sequence[Any]) -> float:
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return sum(vals) / len(vals) if vals else float("nan")


def interior_mask(resolution: int, width: int = 1,
                  device: Optional[torch.device] = None) -> Tensor:
    """Boolean ``(resolution, resolution)`` map that drops ``width`` wall rows and
    columns on each side (where Dirichlet inputs never vary)."""
    if not isinstance(resolution, int) or resolution < 2 * width + 1 or width < 0:
        raise ValueError(f"need an integer resolution > 2*width, got resolution="
                         f"{resolution!r}, width={width!r}")
    mask = torch.zeros(resolution, resolution, dtype=torch.bool, device=device)
    mask[width:resolution - width, width:resolution - width] = True
    return mask


def _channels(x: Tensor) -> Tensor:
    return x.unsqueeze(1) if x.dim() == 3 else x


def train_operator(model: nn.Module, u_in: Tensor, u_out: Tensor, *, n_train: int,
                   n_val: int, epochs: int, batch_size: int = 32, lr: float = 1e-3,
                   weight_decay: float = 0.0, seed: int = 0,
                   device: Optional[torch.device] = None,
                   progress: bool | None = None) -> TrainedOperator:
    r"""Fit ``model`` on the first ``n_train`` pairs, validate on the next ``n_val``
    and report the relative L2 error on the rest.

    Inputs and targets get point-wise Gaussian normalisers fitted on the training
    split; the model maps normalised inputs to normalised targets and the loss
    :math:`\|\hat y-y\|_2/\|y\|_2` is computed after decoding (Adam, cosine
    schedule; :func:`refimpl.training.fit`). The returned model is the one after the
    last epoch (the validation loss is recorded in ``history``).

    Args:
        model: a ``(B, C, H, W) -> (B, C', H, W)`` operator.
        u_in, u_out: raw fields ``(N, H, W)`` or ``(N, C, H, W)``.
        n_train, n_val: split sizes; the test split is the remaining rows.
        epochs, batch_size, lr, weight_decay, seed, device, progress: passed to
            :func:`refimpl.training.fit`.
    """
    u_in, u_out = _channels(u_in), _channels(u_out)
    n = u_in.shape[0]
    if u_out.shape[0] != n:
        raise ValueError(f"u_in and u_out must have the same number of samples, got "
                         f"{n} and {u_out.shape[0]}")
    for name, v in (("n_train", n_train), ("n_val", n_val)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if n_train + n_val >= n:
        raise ValueError(f"n_train + n_val = {n_train + n_val} leaves no test samples "
                         f"out of {n}")
    import refimpl

    dev = torch.device(device) if device is not None else refimpl.device()
    nin = UnitGaussianNormalizer().fit(u_in[:n_train])
    nout = UnitGaussianNormalizer().fit(u_out[:n_train])
    train = TensorDataset(nin.encode(u_in[:n_train]), u_out[:n_train])
    val = TensorDataset(nin.encode(u_in[n_train:n_train + n_val]),
                        u_out[n_train:n_train + n_val])

    def loss_fn(pred: Tensor, y: Tensor) -> Tensor:
        return relative_l2(nout.decode(pred), y)

    nout.to(dev)
    result = fit(model, train, epochs=epochs, batch_size=batch_size, loss_fn=loss_fn,
                 val_set=val, lr=lr, weight_decay=weight_decay, seed=seed,
                 device=dev, progress=progress)
    model = result.model.eval()
    nin.to(next(model.parameters()).device)
    nout.to(next(model.parameters()).device)
    trained = TrainedOperator(model, nin, nout, float("nan"), result.history)
    test_in, test_out = u_in[n_train + n_val:], u_out[n_train + n_val:]
    errs = [relative_l2(trained.predict(a), b.to(nin.mean.device), reduction="sum")
            for a, b in zip(test_in.split(batch_size), test_out.split(batch_size))]
    trained.test_error = float(sum(e.item() for e in errs) / test_in.shape[0])
    return trained


def _wall_distance(probe: tuple[int, int], resolution: int, spacing: float) -> float:
    p, q = probe
    return spacing * min(p, q, resolution - 1 - p, resolution - 1 - q)


def score_map(display: Tensor, signed: Optional[Tensor], analytic: Tensor,
              analytic_signed: Optional[Tensor], *, probe: tuple[int, int], t: float,
              basis: Optional[Tensor] = None, ring_speed: Optional[float] = None,
              spacing: Optional[float] = None, ring_margin: float = 0.05
              ) -> dict[str, float]:
    r"""Every score of one learned map against the analytic one.

    * :func:`compare_maps` of the display map with :math:`|G_t|`: ``pearson``,
      ``rel_l2``, ``cosine``;
    * :func:`projected_scores` of the signed map with :math:`G_t` on ``basis``:
      ``r_proj`` and ``phi`` (``nan`` without a basis or a signed map);
    * ``ring_error`` :math:`|\rho^\star - ct|`, the distance of the brightest
      annulus (:func:`ring_radius`) from the wavefront, when ``ring_speed``
      :math:`c` is given and the ring has not reached a wall
      (:math:`ct\,+` ``ring_margin`` below the probe's distance to the nearest
      wall, and :math:`ct > 0.05`); ``nan`` otherwise.

    Args:
        display: the non-negative learned map ``(n, n)``.
        signed: the signed learned map, or ``None``.
        analytic, analytic_signed: :math:`|G_t(x_0,\cdot)|` and
            :math:`G_t(x_0,\cdot)`.
        probe: grid indices of :math:`x_0`.
        t: the horizon.
        basis: ``(n, K)`` basis of the inputs' span (e.g. the sine modes).
        ring_speed: the wave speed :math:`c` (``None``: no ring, e.g. heat).
        spacing: grid spacing (default :math:`1/(n-1)`).
        ring_margin: how far inside the walls the ring must stay.
    """
    n = display.shape[-1]
    spacing = 1.0 / (n - 1) if spacing is None else spacing
    out = dict(compare_maps(display, analytic))
    if basis is not None and signed is not None and analytic_signed is not None:
        out.update(projected_scores(signed, analytic_signed, basis))
    else:
        out.update(r_proj=float("nan"), phi=float("nan"))
    out["ring_error"] = float("nan")
    if ring_speed is not None:
        ct = ring_speed * t
        if 0.05 < ct and ct + ring_margin < _wall_distance(probe, n, spacing):
            out["ring_error"] = abs(ring_radius(display, probe, spacing) - ct)
    return out


def erf_study(models: Mapping[str, Callable[[], nn.Module]], times: Sequence[float],
              *, sample: Callable[..., tuple[Tensor, Tensor]],
              dependency_map: Callable[..., Tensor],
              probes: Mapping[str, tuple[int, int]], n_train: int, n_val: int,
              n_test: int, epochs: int, batch_size: int = 32, lr: float = 1e-3,
              weight_decay: float = 0.0, n_explain: int = 16, resolution: int = 64,
              seed: int = 0, device: Optional[torch.device] = None,
              progress: bool | None = None,
              on_record: Optional[Callable[[ERFRecord], Any]] = None,
              basis: Optional[Tensor] = None, ring_speed: Optional[float] = None,
              shuffle_targets: bool = False
              ) -> list[ERFRecord]:
    r"""Train every model at every horizon and score its spatial dependencies.

    For each horizon :math:`t`: draw ``n_train + n_val + n_test`` pairs with
    ``sample(n, t, resolution=..., seed=seed)``; for each model (built by its factory
    after ``torch.manual_seed(seed)``): :func:`train_operator`, then for each probe
    the learned map :func:`spatial_dependency` over the first ``n_explain`` test
    inputs (raw input, through the normalisers, walls masked), signed and as a
    magnitude, the analytic map ``dependency_map(t, probe, resolution=...)``
    (and its signed kernel, ``signed=True``) and their :func:`score_map`.

    **Shuffled-target control.** With ``shuffle_targets=True`` the training and
    validation targets are permuted across samples (a seeded permutation), so
    the inputs carry no information about the targets; the test error is still
    measured against the true targets. A map learned this way shows what a
    score means when nothing was learned (the record is named
    ``"<name> (shuffled)"``, family ``"control"``).

    Args:
        models: name -> factory of a fresh ``(B, 1, H, W) -> (B, 1, H, W)`` model.
        times: horizons.
        sample: e.g. :func:`refimpl.pde.wave.sample` or
            :func:`refimpl.pde.heat.sample`.
        dependency_map: the matching analytic map, e.g.
            :func:`refimpl.pde.wave.dependency_map`.
        probes: probe name -> grid indices.
        n_train, n_val, n_test: split sizes.
        epochs, batch_size, lr, weight_decay: training (see :func:`train_operator`).
        n_explain (int): test inputs averaged in each map.
        resolution (int): grid size.
        seed (int): data and initialisation seed.
        device: where to train (default :func:`refimpl.device`).
        progress (bool): training progress bars.
        on_record: called with each :class:`ERFRecord` as soon as it is ready
            (e.g. to print a line).
        basis: ``(resolution, K)`` basis of the inputs' span for the projected
            scores (e.g. ``sine_basis(resolution, 24)``); ``None`` leaves
            ``r_proj`` and ``phi`` undefined.
        ring_speed: wave speed for the ring-radius error (``None``: no ring).
        shuffle_targets: train on targets permuted across samples (a control).

    Returns:
        list of :class:`ERFRecord`, horizons outer, models inner.
    """
    import refimpl

    if not models:
        raise ValueError("models is empty")
    if not probes:
        raise ValueError("probes is empty")
    if not isinstance(n_explain, int) or not 1 <= n_explain <= n_test:
        raise ValueError(f"n_explain must be an integer in [1, n_test={n_test}], got "
                         f"{n_explain!r}")
    device = torch.device(device) if device is not None else refimpl.device()
    records = []
    for t in times:
        u0, ut = sample(n_train + n_val + n_test, t, resolution=resolution, seed=seed)
        if shuffle_targets:
            fit_rows = n_train + n_val
            gen = torch.Generator().manual_seed(seed)
            perm = torch.randperm(fit_rows, generator=gen)
            ut = torch.cat([ut[:fit_rows][perm], ut[fit_rows:]])
        explain = _channels(u0[n_train + n_val:][:n_explain])
        mask = interior_mask(resolution).to(device)
        analytic = {k: dependency_map(t, p, resolution=resolution).detach().cpu()
                    for k, p in probes.items()}
        exact = {k: dependency_map(t, p, resolution=resolution, signed=True)
                 .detach().cpu() for k, p in probes.items()}
        for name, factory in models.items():
            torch.manual_seed(seed)
            model = factory()
            trained = train_operator(model, u0, ut, n_train=n_train, n_val=n_val,
                                     epochs=epochs, batch_size=batch_size, lr=lr,
                                     weight_decay=weight_decay, seed=seed,
                                     device=device, progress=progress)
            maps, signed, scores = {}, {}, {}
            for k, p in probes.items():
                for out, sgn in ((maps, False), (signed, True)):
                    out[k] = spatial_dependency(
                        trained.model, explain, p, trained.normalizer, mask=mask,
                        signed=sgn).detach().cpu().float()
                scores[k] = score_map(maps[k], signed[k], analytic[k], exact[k],
                                      probe=p, t=float(t), basis=basis,
                                      ring_speed=ring_speed)
            family = getattr(model, "family", "?")
            if shuffle_targets:
                name, family = f"{name} (shuffled)", "control"
            rec = ERFRecord(name, family, float(t), trained.test_error, maps,
                            analytic, scores,
                            sum(q.numel() for q in model.parameters()
                                if q.requires_grad), trained, signed)
            records.append(rec)
            if on_record is not None:
                on_record(rec)
    return records


def analytic_maps(dependency_map: Callable[..., Tensor], times: Sequence[float],
                  probes: Mapping[str, tuple[int, int]], **kwargs: Any) -> Tensor:
    """Stack ``dependency_map(t, probe, **kwargs)`` into
    ``(n_probes, n_times, H, W)``."""
    return torch.stack([torch.stack([dependency_map(t, p, **kwargs) for t in times])
                        for p in probes.values()])


def blob_control(times: Sequence[float], *, probes: Mapping[str, tuple[int, int]],
                 dependency_map: Callable[..., Tensor], resolution: int,
                 width: Union[float, Callable[[float], float]],
                 basis: Optional[Tensor] = None, ring_speed: Optional[float] = None,
                 name: str = "blob (null)") -> list[ERFRecord]:
    r"""The featureless null control: a positive Gaussian blob
    :math:`e^{-|\xi-x_0|^2/(2w^2)}` centred on each probe, scored against the
    analytic map exactly like a trained model (:func:`score_map`, with the blob as
    both its display and its signed map).

    For the wave maps use :math:`w = ct`: a blob as wide as the ring, with no
    ring. A score that the blob reaches says nothing about whether a model learned
    the wavefront: a Pearson correlation of magnitudes rewards the blob for being
    centred on the right place; the signed :math:`r_\text{proj}` does not.

    Args:
        times: horizons.
        probes, dependency_map, resolution: as in :func:`erf_study`.
        width: the blob's standard deviation in physical units, or a function of
            :math:`t` returning it (e.g. ``lambda t: 0.1 * t``).
        basis, ring_speed: as in :func:`erf_study`.
        name: the records' name (family ``"control"``).

    Returns:
        one :class:`ERFRecord` per horizon (``test_error`` is ``nan``).
    """
    if not probes:
        raise ValueError("probes is empty")
    h = 1.0 / (resolution - 1)
    out = []
    for t in times:
        w = width(t) if callable(width) else width
        if not w > 0:
            raise ValueError(f"the blob width must be positive, got {w!r} at t = {t}")
        maps, scores, analytic = {}, {}, {}
        for k, p in probes.items():
            m = gaussian_bump(resolution, p, w / h).view(resolution, resolution)
            maps[k] = m
            analytic[k] = dependency_map(t, p, resolution=resolution).detach().cpu()
            exact = dependency_map(t, p, resolution=resolution, signed=True).cpu()
            scores[k] = score_map(m, m, analytic[k], exact, probe=p, t=float(t),
                                  basis=basis, ring_speed=ring_speed)
        out.append(ERFRecord(name, "control", float(t), float("nan"), maps,
                             analytic, scores, 0, None, dict(maps)))
    return out


#: The score columns of :func:`record_rows`.
SCORE_COLUMNS = ("pearson", "rel_l2", "cosine", "r_proj", "phi", "ring_error")


def record_rows(records: Sequence[ERFRecord], **extra: Any) -> list[dict[str, Any]]:
    """One flat row per (record, probe): ``extra`` (e.g. ``seed=0``), ``model``,
    ``family``, ``t``, ``probe``, ``n_params``, ``test_error`` and every score of
    :func:`score_map` (for :func:`refimpl.stats.write_csv`)."""
    rows = []
    for rec in records:
        for k, sc in rec.scores.items():
            rows.append({**extra, "model": rec.name, "family": rec.family, "t": rec.t,
                         "probe": k, "n_params": rec.n_params,
                         "test_error": rec.test_error,
                         **{m: sc.get(m, float("nan")) for m in SCORE_COLUMNS}})
    return rows


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def per_seed(rows: Sequence[Mapping[str, Any]], metric: str
             ) -> dict[tuple[str, float], dict[Any, float]]:
    """``{(model, t): {seed: metric averaged over probes}}`` from
    :func:`record_rows` (rows without ``seed`` count as seed 0; ``nan`` where the
    metric is undefined at every probe)."""
    acc: dict[tuple[str, float], dict[Any, list]] = {}
    for r in rows:
        key = (str(r["model"]), float(r["t"]))
        acc.setdefault(key, {}).setdefault(r.get("seed", 0), []).append(
            _num(r.get(metric)))
    return {k: {s: _nanmean(v) for s, v in d.items()} for k, d in acc.items()}


def summary_rows(rows: Sequence[Mapping[str, Any]],
                 metrics: Sequence[str] = ("test_error",) + tuple(METRICS)
                 ) -> list[dict[str, Any]]:
    """Average :func:`record_rows` over probes within each (seed, model, t), then
    summarise over seeds (:func:`refimpl.stats.summarize`): one row per
    (model, t), in first-seen order, with ``model``, ``family``, ``t``, ``seeds``
    and, per metric, a :class:`~refimpl.stats.Summary` (``None`` where the metric
    is undefined)."""
    family = {}
    for r in rows:
        family.setdefault((str(r["model"]), float(r["t"])), r.get("family", ""))
    tables = {m: per_seed(rows, m) for m in metrics}
    out = []
    for key, fam in family.items():
        seeds = tables[metrics[0]][key] if metrics else {}
        row: dict[str, Any] = {"model": key[0], "family": fam, "t": key[1],
                               "seeds": len(seeds)}
        for m in metrics:
            vals = [v for v in tables[m][key].values() if not math.isnan(v)]
            row[m] = stats.summarize(vals) if vals else None
        out.append(row)
    return out


def score_table(records_or_rows: Sequence[Union[ERFRecord, Mapping[str, Any]]]
                ) -> str:
    """A Markdown table, one row per (model, horizon), sorted by horizon: the
    relative L2 test error of the prediction beside the map scores of
    :data:`METRICS` (each averaged over the probes where it is defined; ``–``
    where it is not, e.g. the ring-radius error once the ring has reached a
    wall). Takes :class:`ERFRecord` objects or :func:`record_rows`; with several
    seeds a cell is mean ± sd over seeds (:func:`summary_rows`)."""
    if not records_or_rows:
        raise ValueError("no records")
    rows = list(records_or_rows)
    if isinstance(rows[0], ERFRecord):
        rows = record_rows(rows)
    summ = sorted(summary_rows(rows), key=lambda r: r["t"])
    many = max(r["seeds"] for r in summ) > 1
    head = ["model", "family", "t"] + (["seeds"] if many else []) \
        + ["test rel. L2"] + [METRICS[m][0] for m in METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summ:
        cells = [str(r["model"]), str(r["family"]), f"{r['t']:g}"]
        if many:
            cells.append(str(r["seeds"]))
        for m in ("test_error",) + tuple(METRICS):
            v = r[m]
            digits = 3 if m == "test_error" else 2
            if v is None:
                cells.append("–")
            elif v.n > 1:
                cells.append(f"{v.mean:.{digits}f} ± {v.sd:.{digits}f}")
            else:
                cells.append(f"{v.mean:.{digits}f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ring_radius(m: Tensor, probe: tuple[int, int], spacing: float,
                bin_width: float = 0.02, r_min: float = 0.05) -> float:
    r"""Radius of the brightest ring of a map around its probe.

    The map is averaged over annuli :math:`|\xi - x_0| \in [k\,\delta, (k+1)\,\delta)`
    (:math:`\delta` = ``bin_width``, physical units) and the centre of the annulus
    with the largest mean is returned, ignoring radii below ``r_min`` (the bright
    spot at the probe). For a wave map it should be :math:`c\,t` until the ring
    reaches a wall.

    Args:
        m (Tensor): map ``(H, W)``.
        probe: grid indices of :math:`x_0`.
        spacing (float): grid spacing :math:`h`.
        bin_width, r_min (float): annulus width and smallest radius.
    """
    if m.dim() != 2:
        raise ValueError(f"m must be a 2-D map, got shape {tuple(m.shape)}")
    if spacing <= 0 or bin_width <= 0:
        raise ValueError("spacing and bin_width must be positive")
    m = m.detach().to("cpu", torch.float64)
    i = torch.arange(m.shape[0], dtype=torch.float64)[:, None]
    j = torch.arange(m.shape[1], dtype=torch.float64)[None, :]
    rho = spacing * torch.sqrt((i - probe[0]) ** 2 + (j - probe[1]) ** 2)
    k = torch.floor(rho / bin_width).long().flatten()
    n_bins = int(k.max()) + 1
    total = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, k, m.flatten())
    count = torch.zeros(n_bins, dtype=torch.float64).index_add_(
        0, k, torch.ones_like(m).flatten())
    centre = (torch.arange(n_bins, dtype=torch.float64) + 0.5) * bin_width
    mean = torch.where((count > 0) & (centre >= r_min), total / count.clamp(min=1),
                       torch.tensor(-1.0, dtype=torch.float64))
    return float(centre[int(mean.argmax())])


def _rank_line(label: str, means: Mapping[str, float], higher: bool) -> str:
    named = {k: v for k, v in means.items() if not math.isnan(v)}
    if not named:
        return f"{label}: undefined"
    best = (max if higher else min)(named, key=named.get)
    return f"{label}: {best} ({named[best]:.2f})"


def verdicts(records: Sequence[ERFRecord], threshold: float = 0.8, *,
             tolerance: float = 0.02) -> list[str]:
    r"""Computed verdicts: one line per trained model and horizon, then one line
    per horizon saying which map each score ranks closest.

    A model **recovers** the analytic kernel at a horizon when its projected
    signed correlation :math:`r_\text{proj}` (averaged over probes) is at least
    ``threshold``, is above that of every null control at the same horizon
    (records of family ``"control"``: the blob of :func:`blob_control`, a
    shuffled-target model), and its ring-radius error, where defined, is within
    ``tolerance``. :math:`r_\text{proj}` is the criterion because it is signed
    and restricted to what the data identify: a featureless blob centred on the
    probe scores a high Pearson :math:`r` of magnitudes but a near-zero
    :math:`r_\text{proj}`. Records without projected scores fall back to Pearson
    :math:`r`.

    The per-horizon lines name the closest map by each score (Pearson :math:`r`,
    map relative L2, :math:`r_\text{proj}`), so a text can say whether the scores
    agree rather than assert it.
    """
    if not records:
        raise ValueError("no records")
    lines = []
    times = sorted({rec.t for rec in records})
    for t in times:
        at_t = [rec for rec in records if rec.t == t]
        controls = [rec for rec in at_t if rec.family == "control"]
        models = [rec for rec in at_t if rec.family != "control"]
        for rec in models:
            metric = "r_proj" if not math.isnan(rec.r_proj) else "pearson"
            score = rec.mean(metric)
            floor = max((c.mean(metric) for c in controls
                         if not math.isnan(c.mean(metric))), default=float("-inf"))
            ring = rec.mean("ring_error")
            ok = score >= threshold and score > floor and \
                (math.isnan(ring) or ring <= tolerance)
            word = "recovers" if ok else "does not recover"
            extra = f", φ = {rec.mean('phi'):.2f}" if metric == "r_proj" else ""
            if controls:
                extra += " (null controls: " + ", ".join(
                    f"{c.name} {c.mean(metric):.2f}" for c in controls) + ")"
            if not math.isnan(ring):
                extra += f", ring-radius error {ring:.3f}"
            lines.append(f"{rec.name} ({rec.family}) at t = {t:g} {word} the "
                         f"analytic kernel: {metric} = {score:.2f}{extra}, test "
                         f"error {rec.test_error:.3f}")
        if models:
            ranks = [_rank_line(f"by {METRICS[m][0]}",
                                {rec.name: rec.mean(m) for rec in models},
                                METRICS[m][1])
                     for m in ("r_proj", "pearson", "rel_l2")]
            bests = {ln.split(": ", 1)[1].split(" (")[0] for ln in ranks
                     if not ln.endswith("undefined")}
            agree = "the scores agree" if len(bests) == 1 else \
                "the scores disagree"
            lines.append(f"closest map at t = {t:g}: " + "; ".join(ranks)
                         + f" ({agree})")
    return lines


def study_verdicts(rows: Sequence[Mapping[str, Any]], threshold: float = 0.8, *,
                   tolerance: float = 0.02) -> list[str]:
    r"""The criterion of :func:`verdicts` over several seeds: one Markdown line per
    horizon and trained model of :func:`record_rows`. A model **recovers** the
    analytic kernel at a horizon when its seed-mean :math:`r_\text{proj}`
    (probe-averaged) is at least ``threshold``, the paired difference from every
    null control (rows of family ``"control"``; :func:`refimpl.stats.paired` over
    the common seeds) has a 95 % interval above zero, and its seed-mean
    ring-radius error, where defined, is within ``tolerance``. Each line gives the
    :math:`r_\text{proj}` (mean ± sd over seeds), the test error and, when the
    model does not recover the kernel, which condition failed; a last line per
    horizon names the model with the highest :math:`r_\text{proj}` and the models
    it is not resolved against (:func:`paired_comparisons`)."""
    if not rows:
        raise ValueError("no rows")
    r_proj, ring, test = (per_seed(rows, m) for m in ("r_proj", "ring_error",
                                                      "test_error"))
    family = {(str(r["model"]), float(r["t"])): r.get("family", "") for r in rows}
    lines = []
    for t in sorted({t for _, t in family}):
        controls = [m for (m, tt), f in family.items() if tt == t and f == "control"]
        for (m, tt), f in family.items():
            if tt != t or f == "control":
                continue
            vals = r_proj[(m, t)]
            score = stats.summarize(list(vals.values()))
            failed = []
            if not score.mean >= threshold:
                failed.append(f"r_proj below {threshold:g}")
            for c in controls:
                seeds = sorted(set(vals) & set(r_proj[(c, t)]), key=str)
                pr = stats.paired([vals[s_] for s_ in seeds],
                                  [r_proj[(c, t)][s_] for s_ in seeds])
                if not (pr.n >= 2 and pr.low > 0):
                    failed.append(f"not resolved above {c} "
                                  f"(difference {pr.diff:+.2f})")
            ring_err = _nanmean(list(ring[(m, t)].values()))
            if not math.isnan(ring_err) and ring_err > tolerance:
                failed.append(f"ring-radius error {ring_err:.3f} > {tolerance:g}")
            word = "recovers" if not failed else "does not recover"
            err = stats.summarize(list(test[(m, t)].values()))
            why = f"; {', '.join(failed)}" if failed else ""
            lines.append(f"- t = {t:g}: {m} {word} the kernel: r_proj {score} "
                         f"over {score.n} seeds, test error {err}{why}")
        trained = [r for r in rows if float(r["t"]) == t
                   and r.get("family", "") != "control"]
        comps = paired_comparisons(trained, "r_proj")
        if comps:
            best = comps[0]["reference"]
            open_ = [c["model"] for c in comps if not c["paired"].resolved]
            lines.append(f"- t = {t:g}: the highest r_proj is {best}'s; "
                         + (f"not resolved against {', '.join(open_)}" if open_
                            else "above every other model (paired intervals)"))
    return lines


def paired_comparisons(rows: Sequence[Mapping[str, Any]], metric: str = "r_proj",
                       reference: Optional[str] = None) -> list[dict[str, Any]]:
    r"""Paired comparisons over seeds (:func:`refimpl.stats.paired`) of
    :func:`record_rows` from several seeds, per horizon: every model against
    ``reference`` (default: the model with the best mean ``metric`` at that
    horizon), on ``metric`` averaged over probes.

    Returns:
        one dict per (horizon, model): ``t``, ``model``, ``reference``,
        ``paired`` (:class:`~refimpl.stats.Paired`, ``model - reference``) and
        ``verdict`` (:meth:`~refimpl.stats.Paired.verdict`, honouring whether
        ``metric`` is better high or low).
    """
    higher = METRICS.get(metric, (metric, False))[1] if metric != "test_error" \
        else False
    table = per_seed(rows, metric)
    out = []
    for t in sorted({key[1] for key in table}):
        at_t = {m: v for (m, tt), v in table.items() if tt == t
                and not all(math.isnan(x) for x in v.values())}
        if not at_t:
            continue
        ref = reference
        if ref is None:
            means = {m: _nanmean(list(v.values())) for m, v in at_t.items()}
            ref = (max if higher else min)(means, key=means.get)
        if ref not in at_t:
            continue
        for m, vals in at_t.items():
            if m == ref:
                continue
            seeds = sorted(set(vals) & set(at_t[ref]), key=str)
            a = [vals[s_] for s_ in seeds]
            b = [at_t[ref][s_] for s_ in seeds]
            if not seeds or any(math.isnan(x) for x in a + b):
                continue
            pr = stats.paired(a, b)
            out.append({"t": t, "model": m, "reference": ref, "paired": pr,
                        "verdict": pr.verdict(m, ref, lower_is_better=not higher)})
    return out


def gaussian_bump(resolution: int, centre: tuple[int, int], width: float,
                  amplitude: float = 1.0) -> Tensor:
    r"""A bump :math:`A\,e^{-|k-k_0|^2/(2w^2)}` on a ``resolution`` grid (``width``
    :math:`w` in grid cells), shape ``(1, 1, resolution, resolution)``: a smooth,
    localised perturbation direction for :func:`linearization_gap`."""
    if width <= 0:
        raise ValueError(f"width must be positive, got {width!r}")
    k = torch.arange(resolution, dtype=torch.float32)
    d2 = (k[:, None] - centre[0]) ** 2 + (k[None, :] - centre[1]) ** 2
    return (amplitude * torch.exp(-d2 / (2 * width**2))).view(1, 1, resolution,
                                                             resolution)


def linearization_gap(model: Callable[[Tensor], Tensor], u: Tensor,
                      probe: tuple[int, int], direction: Tensor,
                      eps: Sequence[float]) -> Tensor:
    r"""How far the first-order (gradient) prediction misses a finite perturbation.

    For :math:`f(u) = ` ``model(u)`` at the probe and a perturbation
    :math:`\epsilon d`,

    .. math::
        \mathrm{gap}(\epsilon) = \frac{|f(u+\epsilon d) - f(u) - \epsilon\,
        \nabla f(u)\cdot d|}{|f(u+\epsilon d) - f(u)|},

    zero for every :math:`\epsilon` when the model is linear, growing with
    :math:`\epsilon` when it is not: a gradient map is a local, first-order
    statement about one input.

    Args:
        model: ``(1, C, H, W) -> (1, C', H, W)``.
        u (Tensor): one input ``(1, C, H, W)`` or ``(C, H, W)``.
        probe: output grid indices (channel 0).
        direction (Tensor): the perturbation shape :math:`d`, same shape as ``u``.
        eps: perturbation sizes.

    Returns:
        Tensor of shape ``(len(eps),)``.
    """
    if u.dim() == 3:
        u = u.unsqueeze(0)
    direction = direction.reshape(u.shape).to(u)
    p, q = probe
    u = u.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        f0 = model(u)[0, 0, p, q]
        (g,) = torch.autograd.grad(f0, u)
    slope = float((g * direction).sum())
    out = []
    with torch.no_grad():
        for e in eps:
            df = float(model(u + e * direction)[0, 0, p, q] - f0)
            if df == 0.0:
                raise ValueError(f"the perturbation eps={e} does not change the output")
            out.append(abs(df - e * slope) / abs(df))
    return torch.tensor(out, dtype=torch.float64)


def plot_maps(maps: Sequence[Sequence[Tensor]], row_labels: Sequence[str],
              col_labels: Sequence[str], *, title: Optional[str] = None,
              size: float = 1.6, quantile: float = 1.0):
    """A grid of dependency maps on a grey colour scale (as in the paper), each
    divided by its own maximum, or by its ``quantile`` (values above saturate).

    Args:
        maps: ``maps[i][j]`` a ``(H, W)`` map for row ``i`` and column ``j``
            (``None`` leaves a panel blank).
        row_labels, col_labels: axis labels.
        title (str, optional): figure title.
        size (float): panel size in inches.
        quantile (float): the value mapped to white, as a quantile of each map
            (default 1, the maximum). Below 1 a few bright pixels (e.g. a spike
            at the probe) no longer hide the rest of the map.

    Returns:
        the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    from refimpl.plotting import PAGE_WIDTH_IN

    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile!r}")
    n_rows, n_cols = len(maps), max(len(r) for r in maps)
    size = min(size, PAGE_WIDTH_IN / n_cols)  # readable labels on the book page
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(size * n_cols, size * n_rows),
                             squeeze=False)
    for i, row in enumerate(maps):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            m = row[j] if j < len(row) else None
            if m is None:
                ax.axis("off")
                continue
            m = torch.as_tensor(m).detach().cpu().float().abs()
            top = float(torch.quantile(m.flatten(), quantile)) if quantile < 1 \
                else float(m.max())
            if top <= 0:
                top = float(m.max()) or 1.0
            ax.imshow((m / top).clamp(max=1).numpy(), cmap="gray", vmin=0, vmax=1)
            if i == 0:
                ax.set_title(col_labels[j], fontsize=9)
            if j == 0:
                ax.set_ylabel(row_labels[i], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_records(records: Sequence[ERFRecord], probes: Sequence[str], *,
                 title: Optional[str] = None, quantile: float = 0.995):
    """The analytic maps (first row, from ``records[0]``) above each record's
    learned maps, one column per probe: :func:`plot_maps` for a study's records."""
    if not records:
        raise ValueError("records is empty")
    rows = [[records[0].analytic[k] for k in probes]] + [
        [rec.maps[k] for k in probes] for rec in records]
    return plot_maps(rows, ["analytic"] + [rec.name for rec in records],
                     list(probes), title=title, quantile=quantile)
