r"""The effective-receptive-field study of chapter 2: train operators on a linear
PDE whose Green's function is known, compute their learned spatial dependencies
(:func:`~refimpl.explain.spatial_dependency`) and score them against the analytic
maps (:func:`~refimpl.explain.compare_maps`).

The loops over models, horizons and probes live here so that a chapter cell is one
call; every size is an argument, so the same code runs at the ``smoke``, ``book``
and ``paper`` scales. The recipe follows Gao et al. (arXiv:2510.02683) with the
project's corrections: a train/validation/test split (never selecting on the test
set), point-wise Gaussian normalisation fitted on the training split, the loss and
the metric on decoded (physical) fields, and maps taken with respect to the raw
input through the normaliser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from refimpl.operators.losses import relative_l2
from refimpl.pde.normalizer import UnitGaussianNormalizer
from refimpl.training import fit

from .spatial_dependency import compare_maps, spatial_dependency

__all__ = ["TrainedOperator", "ERFRecord", "train_operator", "erf_study",
           "analytic_maps", "interior_mask", "score_table", "linearization_gap",
           "ring_radius", "gaussian_bump", "verdicts", "plot_maps", "plot_records"]


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
        scores: probe name -> :func:`compare_maps` dict.
        n_params: trainable parameters.
        trained: the :class:`TrainedOperator` (model and normalisers).
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

    @property
    def pearson(self) -> float:
        """Pearson correlation with the analytic map, averaged over probes."""
        return sum(s["pearson"] for s in self.scores.values()) / len(self.scores)


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


def erf_study(models: Mapping[str, Callable[[], nn.Module]], times: Sequence[float],
              *, sample: Callable[..., tuple[Tensor, Tensor]],
              dependency_map: Callable[..., Tensor],
              probes: Mapping[str, tuple[int, int]], n_train: int, n_val: int,
              n_test: int, epochs: int, batch_size: int = 32, lr: float = 1e-3,
              weight_decay: float = 0.0, n_explain: int = 16, resolution: int = 64,
              seed: int = 0, device: Optional[torch.device] = None,
              progress: bool | None = None,
              on_record: Optional[Callable[[ERFRecord], Any]] = None
              ) -> list[ERFRecord]:
    r"""Train every model at every horizon and score its spatial dependencies.

    For each horizon :math:`t`: draw ``n_train + n_val + n_test`` pairs with
    ``sample(n, t, resolution=..., seed=seed)``; for each model (built by its factory
    after ``torch.manual_seed(seed)``): :func:`train_operator`, then for each probe
    the learned map :func:`spatial_dependency` over the first ``n_explain`` test
    inputs (raw input, through the normalisers, walls masked), the analytic map
    ``dependency_map(t, probe, resolution=...)`` and their :func:`compare_maps`.

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
        explain = _channels(u0[n_train + n_val:][:n_explain])
        mask = interior_mask(resolution)
        analytic = {k: dependency_map(t, p, resolution=resolution).detach().cpu()
                    for k, p in probes.items()}
        for name, factory in models.items():
            torch.manual_seed(seed)
            model = factory()
            trained = train_operator(model, u0, ut, n_train=n_train, n_val=n_val,
                                     epochs=epochs, batch_size=batch_size, lr=lr,
                                     weight_decay=weight_decay, seed=seed,
                                     device=device, progress=progress)
            maps, scores = {}, {}
            for k, p in probes.items():
                m = spatial_dependency(trained.model, explain, p, trained.normalizer,
                                       mask=mask.to(device))
                maps[k] = m.detach().cpu().float()
                scores[k] = compare_maps(maps[k], analytic[k])
            rec = ERFRecord(name, getattr(model, "family", "?"), float(t),
                            trained.test_error, maps, analytic, scores,
                            sum(q.numel() for q in model.parameters()
                                if q.requires_grad), trained)
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


def score_table(records: Sequence[ERFRecord]) -> str:
    """A Markdown table with one row per (model, horizon): the Pearson correlation
    and the relative L2 distance of the learned map to the analytic one (both
    averaged over the probes, see :func:`compare_maps`) beside the relative L2
    test error of the prediction."""
    if not records:
        raise ValueError("no records")
    rows = ["| model | family | t | map Pearson r | map rel. L2 | test rel. L2 |",
            "|---|---|---|---|---|---|"]
    for r in sorted(records, key=lambda rec: rec.t):
        d = sum(s["rel_l2"] for s in r.scores.values()) / len(r.scores)
        rows.append(f"| {r.name} | {r.family} | {r.t:g} | {r.pearson:.2f} | "
                    f"{d:.2f} | {r.test_error:.3f} |")
    return "\n".join(rows)


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


def verdicts(records: Sequence[ERFRecord], threshold: float = 0.7, *,
             ring: Optional[tuple[str, tuple[int, int], float, float]] = None,
             tolerance: float = 0.02) -> list[str]:
    r"""One line per record saying whether its map recovers the analytic one.

    A map *recovers* the physics when its Pearson correlation with the analytic
    map, averaged over probes, is at least ``threshold``. Pearson alone rewards a
    broad blob centred on the right place, so for wave maps pass
    ``ring=(probe_name, probe, spacing, c)``: the map must then also have its
    brightest annulus (:func:`ring_radius`) within ``tolerance`` of :math:`ct`
    (use a probe whose ring has not reached a wall).

    Returns:
        the lines, best correlation last, prefixed ``"closest map: "``.
    """
    if not records:
        raise ValueError("no records")
    lines = []
    for rec in records:
        ok = rec.pearson >= threshold
        extra = ""
        if ring is not None:
            name, probe, spacing, c = ring
            rad = ring_radius(rec.maps[name], probe, spacing)
            ok = ok and abs(rad - c * rec.t) <= tolerance
            extra = f", ring radius {rad:.2f} vs c t = {c * rec.t:.2f}"
        word = "recovers" if ok else "does not recover"
        lines.append(f"{rec.name} ({rec.family}) at t = {rec.t:g} {word} the "
                     f"analytic map: r = {rec.pearson:.2f}{extra}, test error "
                     f"{rec.test_error:.3f}")
    best = max(records, key=lambda rec: rec.pearson)
    lines.append(f"closest map: {best.name} ({best.family}) at t = {best.t:g}, "
                 f"r = {best.pearson:.2f}")
    return lines


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
