r"""Chapter 5 experiments: RISE explanations of SchNet on QM9.

Two SchNet models are trained on QM9 geometries:

* ``"U0"``, the internal energy at 0 K (eV), minus a per-element linear reference
  fitted on the training split. :math:`U_0` is SchNet's reference benchmark; it is
  extensive and, to a good approximation, a sum of local atomic contributions,
  which matches SchNet's sum readout and makes a set of local spheres a natural
  explanation. Its spread is reported as the standard deviation of
  :math:`U_0 - \sum_i a_{z_i}` (the part the network must learn);
* ``"planted"``, the planted label of :mod:`refimpl.explain.planted` (a sum over
  heavy-atom bonds only), on the same geometries, whose true edges are known.

Command line (the book-scale weights and their log are committed in
``book/data/rise/``)::

    python -m refimpl.experiments.rise train --scale book
    python -m refimpl.experiments.rise evaluate --scale book

All sizes are in :data:`PRESETS`; ``paper`` uses the full QM9 training split and
the published SchNet size (PyG's QM9 SchNet: 128 features and filters, 6
interactions, 50 Gaussians, a 10 Å cutoff).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torch_geometric.utils import scatter

import refimpl
from refimpl.checkpoint import load_model, save_model
from refimpl.results import data_path
from refimpl.explain.baselines import (
    gnnexplainer_edge_scores,
    random_edges,
    shortest_edges,
    topk_edges,
    uniform_radius_edges,
)
from refimpl.explain.fidelity import fidelity
from refimpl.explain.planted import (
    PlantedPairModel,
    edge_precision_recall,
    planted_edges,
    planted_target,
)
from refimpl.explain.rise import RISEResult, explain
from refimpl.molecules.graph import edge_lengths, radius_graph
from refimpl.molecules.schnet import SchNetRegressor

__all__ = ["PRESETS", "TARGET", "KINDS", "MoleculeTargets", "collate", "load_data",
           "explain_set", "train_model", "load_or_train", "weights_path",
           "cache_weights_path",
           "edge_density", "fidelity_benchmark", "planted_benchmark",
           "runtime_comparison", "radius_by_element", "plot_fidelity",
           "plot_planted", "plot_radius_histogram", "fidelity_table",
           "planted_table", "molecule_of", "pick_molecule", "kept_bonds",
           "fidelity_goals", "planted_goals", "main"]

#: The QM9 target of the property model.
TARGET = "U0"
#: The two trained models.
KINDS = ("U0", "planted")

_MODEL = dict(hidden_channels=64, num_filters=64, num_interactions=3,
              num_gaussians=25, cutoff=5.0)
_RISE = dict(steps=200, lr=1e-2, tau=100.0)

PRESETS = {
    "smoke": dict(limit=400, epochs=1, batch_size=32, lr=1e-3,
                  model=dict(hidden_channels=16, num_filters=16, num_interactions=2,
                             num_gaussians=10, cutoff=5.0),
                  n_explain=5, rise=dict(steps=30, lr=1e-2, tau=100.0),
                  budgets=(0.2, 0.4), planted_budgets=(0.15, 0.4),
                  gnn_epochs=20, random_draws=3, runtime_molecules=3,
                  density_molecules=50),
    "book": dict(limit=7_000, epochs=25, batch_size=32, lr=1e-3, model=_MODEL,
                 n_explain=24, rise=_RISE, budgets=(0.2, 0.3, 0.4, 0.6),
                 planted_budgets=(0.1, 0.15, 0.2, 0.3, 0.4, 0.6),
                 gnn_epochs=100, random_draws=10, runtime_molecules=12,
                 density_molecules=1000),
    "paper": dict(limit=None, epochs=300, batch_size=64, lr=5e-4,
                  model=dict(hidden_channels=128, num_filters=128, num_interactions=6,
                             num_gaussians=50, cutoff=10.0),
                  n_explain=256, rise=_RISE, budgets=(0.1, 0.15, 0.2, 0.3),
                  planted_budgets=(0.05, 0.075, 0.1, 0.15, 0.2, 0.3),
                  gnn_epochs=100, random_draws=10, runtime_molecules=64,
                  density_molecules=13_083),
}
PRESETS["full"] = PRESETS["book"]  # placeholder until the chapter sizes `full`


# ------------------------------------------------------------------------- data
class MoleculeTargets(Dataset):
    """Molecules ``(z, pos)`` with one scalar target each; items are
    ``(z, pos, y)``, batched by :func:`collate`."""

    def __init__(self, molecules: Sequence[tuple[Tensor, Tensor]], y: Tensor):
        if len(molecules) != len(y):
            raise ValueError(f"{len(molecules)} molecules but {len(y)} targets")
        self.molecules, self.y = list(molecules), torch.as_tensor(y).float()

    def __len__(self) -> int:
        return len(self.molecules)

    def __getitem__(self, i: int):
        z, pos = self.molecules[i]
        return z, pos, self.y[i]


def collate(items) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(z [N], pos [N, 3], batch [N], y [G])`` of a list of ``(z, pos, y)``."""
    zs, ps, ys = zip(*items)
    batch = torch.repeat_interleave(torch.arange(len(zs)),
                                    torch.tensor([len(z) for z in zs]))
    return torch.cat(zs), torch.cat(ps).float(), batch, torch.stack(ys)


def load_data(P: dict, seed: int = 0) -> dict:
    """QM9 (offline) limited to ``P['limit']`` molecules, EDM's split:
    ``{'train', 'val', 'test'}`` views."""
    from refimpl.molecules import load_qm9

    ds = load_qm9(limit=P["limit"], seed=seed, progress=False)
    return {name: ds.split(name) for name in ("train", "val", "test")}


def _targets(kind: str, view) -> Tensor:
    if kind == "U0":
        return view.targets(TARGET)
    if kind == "planted":
        z, pos, batch = view.flat()
        return planted_target(z, pos.double(), batch)
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def _element_reference(view, y: Tensor) -> Tensor:
    """Least-squares per-element reference ``[100]`` with ``y ≈ Σ_i a_{z_i}``."""
    z, _, batch = view.flat()
    counts = torch.zeros(len(view), 100, dtype=torch.float64)
    counts.index_put_((batch, z), torch.ones_like(batch, dtype=torch.float64),
                      accumulate=True)
    used = counts.sum(0) > 0
    sol = torch.linalg.lstsq(counts[:, used], y.double()[:, None]).solution
    ref = torch.zeros(100, dtype=torch.float64)
    ref[used] = sol[:, 0]
    return ref


def explain_set(view, n: int, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """``n`` molecules drawn (seeded, without replacement) from ``view`` as one
    batch ``(z, pos, batch)``; the view's own order follows the GDB index, which is
    sorted by size, so taking its first molecules would favour small ones."""
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(view), size=min(n, len(view)), replace=False))
    return view.subset(pick.tolist()).flat()


# --------------------------------------------------------------------- training
def _training_key(P: dict) -> str:
    """A short hash of the preset entries that determine the trained weights."""
    keys = ("limit", "epochs", "batch_size", "lr", "model")
    text = json.dumps({k: P[k] for k in keys}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def weights_path(kind: str, scale: Optional[str] = None) -> Path:
    """Where the weights of ``kind`` at ``scale`` are read from (without suffix):
    the committed book-scale weights (``book/data/rise/``, shipped as package data)
    when they exist, else :func:`cache_weights_path`."""
    scale = refimpl.scale(scale)
    committed = data_path("rise", f"schnet_{kind}_{scale}")
    if scale == "book" and committed.with_suffix(".pt").is_file():
        return committed
    return cache_weights_path(kind, scale)


def cache_weights_path(kind: str, scale: Optional[str] = None) -> Path:
    """Where weights trained here are written (and then found):
    ``refimpl.cache_dir('rise')``, with a hash of the training settings in the
    name. Nothing is ever written into the committed folder."""
    scale = refimpl.scale(scale)
    name = f"schnet_{kind}_{scale}_" + _training_key(refimpl.preset(PRESETS, scale))
    return refimpl.cache_dir("rise") / name


def _standardised_l1(model, batch) -> Tensor:
    z, pos, b, y = batch
    return ((model(z, pos, b) - y) / model.target_std).abs().mean()


@torch.no_grad()
def _mae(model, view, y: Tensor, batch_size: int = 256) -> float:
    device = next(model.parameters()).device
    data = MoleculeTargets(view.molecules(), y)
    errors = []
    for start in range(0, len(data), batch_size):
        z, pos, b, t = collate([data[i] for i in range(start,
                                                       min(start + batch_size,
                                                           len(data)))])
        pred = model(z.to(device), pos.to(device), b.to(device))
        errors.append((pred.double().cpu() - t.double()).abs())
    return float(torch.cat(errors).mean())


def train_model(kind: str, P: dict, data: Optional[dict] = None,
                log: Callable[[str], None] = print, progress: bool | None = None,
                device: Optional[torch.device] = None
                ) -> tuple[SchNetRegressor, dict]:
    """Train a :class:`SchNetRegressor` on ``kind`` (``"U0"`` or ``"planted"``).

    Loss: L1 on the standardised residual :math:`(f(G) - y)/\\sigma`; Adam with a
    cosine schedule (:func:`refimpl.training.fit`).

    Returns:
        ``(model, info)`` with the test MAE, the target's spread (std of
        :math:`y - \\sum_i a_{z_i}` on the test split, and of :math:`y`), sizes and
        the epoch history.
    """
    from refimpl.training import fit

    data = data if data is not None else load_data(P)
    train, val, test = data["train"], data["val"], data["test"]
    y = {name: _targets(kind, view).double() for name, view in data.items()}
    ref = _element_reference(train, y["train"])

    def residual(view, t):
        z, _, batch = view.flat()
        return t - scatter(ref[z], batch, dim=0, dim_size=len(view), reduce="sum")

    res = residual(train, y["train"])
    refimpl.seed_everything(0)
    model = SchNetRegressor(**P["model"]).set_target_stats(
        float(res.mean()), float(res.std()), ref)
    log(f"[{kind}] {len(train)} train / {len(val)} val / {len(test)} test molecules; "
        f"{model}")
    t0 = time.perf_counter()
    result = fit(model, MoleculeTargets(train.molecules(), y["train"]),
                 epochs=P["epochs"], batch_size=P["batch_size"], lr=P["lr"],
                 step_fn=_standardised_l1,
                 val_set=MoleculeTargets(val.molecules(), y["val"]),
                 collate_fn=collate, amp=False, progress=progress, device=device)
    seconds = time.perf_counter() - t0
    for rec in result.history:
        log(f"[{kind}] epoch {rec['epoch']:3d}  train L1/std {rec['train_loss']:.4f}"
            f"  val L1/std {rec.get('val', float('nan')):.4f}  "
            f"{rec['seconds']:.1f} s")
    model = result.model.eval()
    test_mae = _mae(model, test, y["test"])
    info = dict(kind=kind, target=(TARGET if kind == "U0" else "planted"),
                unit=("eV" if kind == "U0" else "a.u."), test_mae=test_mae,
                residual_std=float(residual(test, y["test"]).std()),
                target_std=float(y["test"].std()), n_train=len(train),
                n_val=len(val), n_test=len(test), epochs=P["epochs"],
                train_seconds=seconds, scale=refimpl.scale())
    log(f"[{kind}] test MAE {test_mae:.4f} {info['unit']} vs std "
        f"{info['residual_std']:.4f} of the target minus its element reference "
        f"(MAE/std = {test_mae / info['residual_std']:.3f}); trained in "
        f"{seconds:.0f} s")
    return model, info


def load_or_train(kind: str, scale: Optional[str] = None, data: Optional[dict] = None,
                  log: Callable[[str], None] = print, device=None
                  ) -> tuple[SchNetRegressor, dict]:
    """Load the weights of ``kind`` for ``scale``, or train them (and cache them)
    if absent. Returns ``(model, info)``."""
    scale = refimpl.scale(scale)
    P = refimpl.preset(PRESETS, scale)
    path = weights_path(kind, scale)
    if path.with_suffix(".pt").exists():
        model, record = load_model(path, map_location=device)
        log(f"[{kind}] loaded {path.name} (trained with "
            f"`{record['meta'].get('command', '?')}`)")
        return model, record["meta"]
    model, info = train_model(kind, P, data, log=log, device=device)
    if scale != "smoke":
        save_model(model, cache_weights_path(kind, scale), **info)
    return model.to(device) if device is not None else model, info


# ------------------------------------------------------------------- evaluation
def _bond_count(z: Tensor, pos: Tensor, batch: Tensor) -> Tensor:
    """Directed chemical bonds per molecule (EDM's distance rule)."""
    from refimpl.molecules.chemistry import bond_order_matrix

    counts = []
    for g in range(int(batch.max()) + 1):
        sel = batch == g
        order = bond_order_matrix(z[sel], pos[sel].double())
        counts.append(int((order > 0).sum()))
    return torch.tensor(counts, dtype=torch.float64)


def edge_density(z: Tensor, pos: Tensor, batch: Tensor,
                 cutoffs: Sequence[float] = (5.0, 10.0)) -> dict:
    """Directed edges per molecule: chemical bonds, radius graphs, complete graph
    (mean and std over the molecules), and the mean atom count."""
    num_graphs = int(batch.max()) + 1
    atoms = torch.bincount(batch, minlength=num_graphs).double()
    rows = {"chemical bonds": _bond_count(z, pos, batch)}
    for c in cutoffs:
        e = radius_graph(pos, c, batch)
        rows[f"radius graph, c = {c:g} Å"] = torch.bincount(
            batch[e[1]], minlength=num_graphs).double()
    rows["complete graph"] = atoms * (atoms - 1)
    return {"atoms": (float(atoms.mean()), float(atoms.std())),
            "edges": {k: (float(v.mean()), float(v.std())) for k, v in rows.items()},
            "molecules": num_graphs}


def _clock(device: torch.device) -> float:
    """``time.perf_counter`` after waiting for queued CUDA work (honest timings)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _summary(values: Tensor) -> tuple[float, float]:
    v = values.double()
    v = v[~torch.isnan(v)]
    if v.numel() == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std()) if v.numel() > 1 else 0.0


def _record(fid) -> dict:
    return {"fid_minus": _summary(fid.fid_minus), "fid_plus": _summary(fid.fid_plus),
            "keep": _summary(fid.keep_ratio), "per_molecule": {
                "fid_minus": fid.fid_minus.cpu(), "fid_plus": fid.fid_plus.cpu(),
                "keep": fid.keep_ratio.cpu()}}


def _random_fidelity(model, z, pos, edge_index, batch, k, draws: int, seed: int,
                     prediction):
    edge_batch = batch[edge_index[1]]
    gen = torch.Generator(device=edge_index.device).manual_seed(seed)
    fm, fp, kr = [], [], []
    for _ in range(draws):
        keep = random_edges(edge_batch, k, k.numel(), generator=gen)
        f = fidelity(model, z, pos, edge_index, keep, batch, prediction)
        fm.append(f.fid_minus), fp.append(f.fid_plus), kr.append(f.keep_ratio)
    mean = lambda xs: torch.stack(xs).mean(0)  # noqa: E731
    return type(f)(fid_minus=mean(fm), fid_plus=mean(fp), keep_ratio=mean(kr),
                   prediction=prediction, kept=f.kept, removed=f.removed)


def fidelity_benchmark(model, z: Tensor, pos: Tensor, batch: Tensor,
                       budgets: Sequence[float], rise: dict, gnn_epochs: int = 100,
                       random_draws: int = 10, seed: int = 0) -> dict:
    """fid⁻, fid⁺ and keep ratio of RISE and every baseline at each budget.

    RISE explains all molecules in one batched optimisation per budget; the
    top-:math:`k` baselines keep RISE's :math:`|S_m|` edges per molecule;
    GNNExplainer runs once per molecule (its scores do not depend on the budget).

    Returns:
        ``{"methods": {name: {budget: record}}, "empty": record,``
        ``"rise": {budget: RISEResult}, "gnn_seconds": s,``
        ``"rise_seconds": {budget: s}}``, where a record holds ``(mean, std)``
        of ``fid_minus``, ``fid_plus`` and ``keep``.
    """
    edge_index = model.edges(pos, batch)
    length = edge_lengths(pos, edge_index)
    edge_batch = batch[edge_index[1]]
    num_graphs = int(batch.max()) + 1
    with torch.no_grad():
        prediction = model(z, pos, batch, edge_index=edge_index)
    t0 = _clock(pos.device)
    gnn = gnnexplainer_edge_scores(model, z, pos, edge_index, batch,
                                   epochs=gnn_epochs, seed=seed)
    gnn_seconds = _clock(pos.device) - t0
    methods = {m: {} for m in ("RISE", "uniform radius", "shortest edges",
                               "random edges", "GNNExplainer")}
    results, rise_seconds = {}, {}
    for budget in budgets:
        t0 = _clock(pos.device)
        r = explain(model, z, pos, batch, budget=budget, edge_index=edge_index, **rise)
        rise_seconds[budget] = _clock(pos.device) - t0
        results[budget] = r
        k = r.num_kept
        masks = {"RISE": r.hard_mask,
                 "uniform radius": uniform_radius_edges(length, budget, model.cutoff),
                 "shortest edges": shortest_edges(length, edge_batch, k, num_graphs),
                 "GNNExplainer": topk_edges(gnn, edge_batch, k, num_graphs)}
        for name, keep in masks.items():
            methods[name][budget] = _record(fidelity(model, z, pos, edge_index, keep,
                                                     batch, prediction))
        methods["random edges"][budget] = _record(_random_fidelity(
            model, z, pos, edge_index, batch, k, random_draws, seed, prediction))
    empty = _record(fidelity(model, z, pos, edge_index,
                             torch.zeros_like(length, dtype=torch.bool), batch,
                             prediction))
    return {"methods": methods, "empty": empty, "rise": results,
            "gnn_seconds": gnn_seconds, "rise_seconds": rise_seconds,
            "budgets": tuple(budgets), "cutoff": model.cutoff,
            "num_molecules": num_graphs}


def _pr(keep, truth, edge_batch, num_graphs) -> dict:
    p, r, f1 = edge_precision_recall(keep, truth, edge_batch, num_graphs)
    return {"precision": _summary(p), "recall": _summary(r), "f1": _summary(f1),
            "keep": _summary(scatter(keep.double(), edge_batch, dim=0,
                                     dim_size=num_graphs, reduce="mean"))}


def planted_benchmark(model, z: Tensor, pos: Tensor, batch: Tensor,
                      budgets: Sequence[float], rise: dict, gnn_epochs: int = 100,
                      random_draws: int = 10, seed: int = 0,
                      oracle: bool = True) -> dict:
    """Edge precision/recall against the planted heavy-atom bonds, per budget.

    Methods: RISE on the trained model; the shortest edges at RISE's keep count
    (one radius for all atoms, tuned to the same keep count); random edges and
    GNNExplainer top-:math:`k` at the same count; the uniform radius :math:`Bc`
    (its own keep count); and, with ``oracle``, RISE on the exact planted rule
    (:class:`~refimpl.explain.planted.PlantedPairModel`). Also the mean radius of the
    atoms in planted pairs and of the others.
    """
    edge_index = model.edges(pos, batch)
    length = edge_lengths(pos, edge_index)
    edge_batch = batch[edge_index[1]]
    num_graphs = int(batch.max()) + 1
    truth = planted_edges(z, edge_index, length)
    in_pair = torch.zeros_like(z, dtype=torch.bool)
    in_pair[edge_index[0, truth]] = True
    gnn = gnnexplainer_edge_scores(model, z, pos, edge_index, batch,
                                   epochs=gnn_epochs, seed=seed)
    exact = PlantedPairModel(cutoff=model.cutoff).to(pos.device, pos.dtype)
    names = ["RISE", "shortest edges", "random edges", "GNNExplainer",
             "uniform radius"] + (["RISE on the exact rule"] if oracle else [])
    out = {m: {} for m in names}
    radii = {}
    for budget in budgets:
        r = explain(model, z, pos, batch, budget=budget, edge_index=edge_index, **rise)
        k = r.num_kept
        out["RISE"][budget] = _pr(r.hard_mask, truth, edge_batch, num_graphs)
        out["shortest edges"][budget] = _pr(
            shortest_edges(length, edge_batch, k, num_graphs), truth, edge_batch,
            num_graphs)
        out["GNNExplainer"][budget] = _pr(topk_edges(gnn, edge_batch, k, num_graphs),
                                          truth, edge_batch, num_graphs)
        out["uniform radius"][budget] = _pr(
            uniform_radius_edges(length, budget, model.cutoff), truth, edge_batch,
            num_graphs)
        gen = torch.Generator(device=edge_index.device).manual_seed(seed)
        draws = [_pr(random_edges(edge_batch, k, num_graphs, generator=gen), truth,
                     edge_batch, num_graphs) for _ in range(random_draws)]
        out["random edges"][budget] = {
            key: (float(np.mean([d[key][0] for d in draws])),
                  float(np.mean([d[key][1] for d in draws]))) for key in draws[0]}
        radii[budget] = {"planted atoms": _summary(r.radius[in_pair]),
                         "other atoms": _summary(r.radius[~in_pair]),
                         "hydrogens": _summary(r.radius[z == 1])}
        if oracle:
            ro = explain(exact, z, pos, batch, budget=budget, edge_index=edge_index,
                         **rise)
            out["RISE on the exact rule"][budget] = _pr(ro.hard_mask, truth,
                                                        edge_batch, num_graphs)
    return {"methods": out, "radii": radii, "budgets": tuple(budgets),
            "true_fraction": _summary(scatter(truth.double(), edge_batch, dim=0,
                                              dim_size=num_graphs, reduce="mean")),
            "cutoff": model.cutoff, "num_molecules": num_graphs}


def runtime_comparison(model, z: Tensor, pos: Tensor, batch: Tensor, budget: float,
                       rise: dict) -> dict:
    """Wall-clock seconds per molecule of RISE, batched vs one molecule at a time,
    and the largest radius difference between the two (they must agree)."""
    num_graphs = int(batch.max()) + 1
    t0 = _clock(pos.device)
    together = explain(model, z, pos, batch, budget=budget, **rise)
    batched = _clock(pos.device) - t0
    radii = []
    t0 = _clock(pos.device)
    for g in range(num_graphs):
        sel = batch == g
        radii.append(explain(model, z[sel], pos[sel], budget=budget, **rise).radius)
    single = _clock(pos.device) - t0
    diff = float((torch.cat(radii) - together.radius).abs().max())
    return {"molecules": num_graphs, "batched": batched / num_graphs,
            "one_at_a_time": single / num_graphs, "speed_up": single / batched,
            "max_radius_difference": diff}


def radius_by_element(result: RISEResult, z: Tensor) -> dict[str, Tensor]:
    """Learned radii (Å) grouped by element symbol."""
    symbols = {1: "H", 6: "C", 7: "N", 8: "O", 9: "F"}
    out = {}
    for number, symbol in symbols.items():
        sel = z == number
        if bool(sel.any()):
            out[symbol] = result.radius[sel].detach().cpu()
    return out


def molecule_of(z: Tensor, pos: Tensor, batch: Tensor, g: int,
                result: Optional[RISEResult] = None) -> dict:
    """Molecule ``g`` of a batch, with its part of a RISE result: ``z``, ``pos``,
    and (with ``result``) ``radius``, local ``edge_index``, ``hard_mask``,
    ``soft_mask``."""
    atoms = (batch == g).nonzero().flatten()
    out = {"z": z[atoms].cpu(), "pos": pos[atoms].detach().cpu()}
    if result is not None:
        edges = (result.edge_batch == g).nonzero().flatten()
        out.update(radius=result.radius[atoms].cpu(),
                   edge_index=(result.edge_index[:, edges] - atoms[0]).cpu(),
                   hard_mask=result.hard_mask[edges].cpu(),
                   soft_mask=result.soft_mask[edges].cpu())
    return out


def pick_molecule(z: Tensor, batch: Tensor, min_heavy: int = 7) -> int:
    """The first molecule of the batch with at least ``min_heavy`` heavy atoms and a
    nitrogen or oxygen (else the one with most heavy atoms): a showcase."""
    num_graphs = int(batch.max()) + 1
    heavy = torch.bincount(batch[z > 1], minlength=num_graphs)
    polar = torch.bincount(batch[(z == 7) | (z == 8)], minlength=num_graphs)
    ok = ((heavy >= min_heavy) & (polar > 0)).nonzero().flatten()
    return int(ok[0]) if ok.numel() else int(heavy.argmax())


def kept_bonds(z: Tensor, pos: Tensor, edge_index: Tensor,
               keep: Tensor) -> list[tuple[int, int]]:
    """Chemical bonds (EDM's distance rule) kept in at least one direction, as
    atom pairs ``(i, j)`` with ``i < j``."""
    from refimpl.molecules.chemistry import bond_order_matrix

    order = bond_order_matrix(z.cpu(), pos.detach().cpu().double())
    pairs = set()
    for j, i in edge_index[:, keep].t().tolist():
        if order[j, i] > 0:
            pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)


def fidelity_goals(bench: dict) -> list[str]:
    """Per budget: is RISE's mean fid⁻ below that of each baseline (at matched keep
    ratio, except the uniform radius)? Ends with the chapter's goals as verdicts:
    RISE below the uniform radius and random edges at every budget, and at or
    below GNNExplainer at most budgets."""
    m, budgets = bench["methods"], bench["budgets"]
    lines, wins = [], {}
    for b in budgets:
        ours = m["RISE"][b]["fid_minus"][0]
        parts = [f"B={b:g}: RISE fid- {ours:.3f}"]
        for name in ("uniform radius", "random edges", "GNNExplainer",
                     "shortest edges"):
            other = m[name][b]["fid_minus"][0]
            wins.setdefault(name, []).append(ours <= other)
            parts.append(f"{name} {other:.3f} "
                         f"({'RISE lower' if ours <= other else 'RISE NOT lower'})")
        lines.append("; ".join(parts))
    yes = {True: "yes", False: "NO"}
    lines.append("goal: RISE fid- below the uniform radius at every budget: "
                 f"{yes[all(wins['uniform radius'])]}; below random edges at "
                 f"every budget: {yes[all(wins['random edges'])]}; at or below "
                 f"GNNExplainer at {sum(wins['GNNExplainer'])} of {len(budgets)} "
                 f"budgets (most: {yes[2 * sum(wins['GNNExplainer']) > len(budgets)]})")
    return lines


def planted_goals(bench: dict) -> list[str]:
    """Per budget: RISE's precision against one radius for all atoms at the same
    keep count (the shortest edges) and against RISE on the exact rule, and the mean
    radius of the atoms in planted pairs against the others."""
    m, lines = bench["methods"], []
    for b in bench["budgets"]:
        ours = m["RISE"][b]["precision"][0]
        one = m["shortest edges"][b]["precision"][0]
        if one > 1e-9:
            ratio = f"ratio {ours / one:.2f}"
        else:
            ratio = "the one radius keeps no true edge"
        radii = bench["radii"][b]
        bigger = radii["planted atoms"][0] > radii["other atoms"][0]
        text = (f"B={b:g}: precision RISE {ours:.2f} vs one radius at the same keep "
                f"count {one:.2f} ({ratio}); recall RISE "
                f"{m['RISE'][b]['recall'][0]:.2f}; mean radius of atoms in planted "
                f"pairs {radii['planted atoms'][0]:.2f} Å vs other atoms "
                f"{radii['other atoms'][0]:.2f} Å "
                f"({'larger' if bigger else 'NOT larger'})")
        if "RISE on the exact rule" in m:
            text += (f"; RISE on the exact rule: precision "
                     f"{m['RISE on the exact rule'][b]['precision'][0]:.2f}")
        lines.append(text)
    b = min(bench["budgets"], key=lambda x: abs(x - 0.15))
    ours, one = m["RISE"][b]["precision"][0], m["shortest edges"][b]["precision"][0]
    radii = bench["radii"][b]
    precision = [m["RISE"][x]["precision"][0] for x in bench["budgets"]]
    peak = int(np.nanargmax(precision))
    yes = {True: "yes", False: "NO"}
    lines.append(
        f"goal at B={b:g}: RISE more precise than one radius at the same keep count: "
        f"{yes[ours > one]}; at least twice as precise: {yes[ours >= 2 * one]}"
        f"{' (the one radius has precision 0)' if one <= 1e-9 else ''}; atoms of "
        f"planted pairs get larger radii: "
        f"{yes[radii['planted atoms'][0] > radii['other atoms'][0]]}; RISE's "
        f"precision peaks at B={bench['budgets'][peak]:g} and falls for larger "
        f"budgets: {yes[all(np.diff(precision[peak:]) <= 0)]}")
    return lines


# ---------------------------------------------------------------------- figures
_STYLE = {"RISE": ("tab:red", "o"), "uniform radius": ("tab:gray", "s"),
          "shortest edges": ("tab:blue", "^"), "random edges": ("tab:green", "v"),
          "GNNExplainer": ("tab:purple", "D"),
          "RISE on the exact rule": ("tab:orange", "*")}


def plot_fidelity(bench: dict, unit: str = "eV", axes=None):
    """fid⁻ and fid⁺ (mean ± std over molecules) against the keep ratio."""
    import matplotlib.pyplot as plt

    from refimpl.plotting import PAGE_WIDTH_IN

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, 3.6))
    for ax, key, title in zip(axes, ("fid_minus", "fid_plus"),
                              ("fid⁻ = |f(G_S) − f(G)|  (lower is better)",
                               "fid⁺ = |f(G∖S) − f(G)|  (higher is better)")):
        for name, per_budget in bench["methods"].items():
            color, marker = _STYLE[name]
            x = [per_budget[b]["keep"][0] for b in bench["budgets"]]
            y = np.array([per_budget[b][key] for b in bench["budgets"]])
            ax.errorbar(x, y[:, 0], yerr=y[:, 1], color=color, marker=marker,
                        capsize=3, label=name, alpha=0.9)
        e = bench["empty"][key][0]
        ax.axhline(e, color="k", lw=0.8, ls=":", label="empty graph")
        ax.set_xlabel("keep ratio κ = |S| / |E_c|")
        ax.set_ylabel(f"{key.replace('_', ' ')} [{unit}]")
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=8)
    return axes


def plot_planted(bench: dict, axes=None):
    """Precision and recall of the kept edges against the planted bonds, over the
    budget, for every method."""
    import matplotlib.pyplot as plt

    from refimpl.plotting import PAGE_WIDTH_IN

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, 3.6))
    budgets = bench["budgets"]
    for ax, key in zip(axes, ("precision", "recall")):
        for name, per_budget in bench["methods"].items():
            color, marker = _STYLE[name]
            y = np.array([per_budget[b][key] for b in budgets])
            ax.errorbar(budgets, y[:, 0], yerr=y[:, 1], color=color, marker=marker,
                        capsize=3, label=name, alpha=0.9,
                        ls="--" if name == "RISE on the exact rule" else "-")
        ax.set_xlabel("budget B (mean radius / cutoff)")
        ax.set_ylabel(f"edge {key}")
        ax.set_ylim(-0.05, 1.05)
    axes[0].axhline(bench["true_fraction"][0], color="k", lw=0.8, ls=":",
                    label="fraction of true edges")
    axes[0].legend(fontsize=8)
    return axes


def plot_radius_histogram(result: RISEResult, z: Tensor, ax=None):
    """Histogram of the learned radii by element."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    colors = {"H": "0.6", "C": "0.2", "N": "#3050F8", "O": "#FF0D0D", "F": "#90E050"}
    groups = radius_by_element(result, z)
    bins = np.linspace(0, float(result.radius.max()) * 1.05, 30)
    for symbol, radii in groups.items():
        ax.hist(radii.numpy(), bins=bins, alpha=0.6, color=colors[symbol],
                label=f"{symbol} ({len(radii)})")
    ax.axvline(result.budget * result.cutoff, color="k", ls=":",
               label="uniform radius Bc")
    ax.set_xlabel("radius of influence R [Å]")
    ax.set_ylabel("atoms")
    ax.legend(fontsize=8)
    return ax


# ----------------------------------------------------------------------- tables
def _pm(value: tuple[float, float], digits: int = 3) -> str:
    if math.isnan(value[0]):
        return "– (nothing kept)"
    return f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"


def fidelity_table(bench: dict, unit: str = "eV") -> str:
    """A Markdown table of fid⁻, fid⁺ and κ per budget and method."""
    lines = [f"| B | method | fid⁻ [{unit}] | fid⁺ [{unit}] | κ |",
             "|---|---|---|---|---|"]
    for b in bench["budgets"]:
        for name, per_budget in bench["methods"].items():
            rec = per_budget[b]
            lines.append(f"| {b:g} | {name} | {_pm(rec['fid_minus'])} | "
                         f"{_pm(rec['fid_plus'])} | {rec['keep'][0]:.3f} |")
    e = bench["empty"]
    lines.append(f"| – | empty graph | {_pm(e['fid_minus'])} | "
                 f"{_pm(e['fid_plus'])} | 0 |")
    return "\n".join(lines)


def planted_table(bench: dict) -> str:
    """A Markdown table of edge precision/recall per budget and method."""
    lines = ["| B | method | precision | recall | κ |", "|---|---|---|---|---|"]
    for b in bench["budgets"]:
        for name, per_budget in bench["methods"].items():
            rec = per_budget[b]
            lines.append(f"| {b:g} | {name} | {_pm(rec['precision'], 2)} | "
                         f"{_pm(rec['recall'], 2)} | {rec['keep'][0]:.3f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------- CLI
class _Tee:
    def __init__(self, path: Optional[Path]):
        self.file = open(path, "a") if path is not None else None

    def __call__(self, text: str) -> None:
        print(text, flush=True)
        if self.file is not None:
            self.file.write(text + "\n")
            self.file.flush()


def _train_command(args) -> None:
    os.environ["REFIMPL_SCALE"] = args.scale
    P = refimpl.preset(PRESETS, args.scale)
    command = f"python -m refimpl.experiments.rise train --scale {args.scale}"
    if args.out is not None:
        command += f" --out {args.out}"
    root = args.out if args.out is not None else refimpl.cache_dir("rise")
    root.mkdir(parents=True, exist_ok=True)
    log = _Tee(root / f"train_{args.scale}.log")
    log(f"$ {command}")
    log(f"refimpl {refimpl.__version__}, torch {torch.__version__}, device "
        f"{refimpl.device()}, {torch.get_num_threads()} CPU thread(s), "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}")
    data = load_data(P)
    for kind in args.kinds:
        model, info = train_model(kind, P, data, log=log, progress=args.progress)
        target = (root / f"schnet_{kind}_{args.scale}" if args.out is not None
                  else cache_weights_path(kind, args.scale))
        path = save_model(model, target, command=command, **info)
        log(f"[{kind}] saved {path} ({path.stat().st_size / 1e6:.2f} MB)")


def _evaluate_command(args) -> None:
    os.environ["REFIMPL_SCALE"] = args.scale
    P = refimpl.preset(PRESETS, args.scale)
    device = refimpl.device()
    data = load_data(P)
    z, pos, batch = (t.to(device) for t in explain_set(data["test"], P["n_explain"]))
    for kind, bench_fn, table in (("U0", fidelity_benchmark, fidelity_table),
                                  ("planted", planted_benchmark, planted_table)):
        model, info = load_or_train(kind, args.scale, data, device=device)
        budgets = P["budgets"] if kind == "U0" else P["planted_budgets"]
        bench = bench_fn(model, z, pos, batch, budgets, P["rise"], P["gnn_epochs"],
                         P["random_draws"])
        print(f"\n{kind}: test MAE {info['test_mae']:.4f} {info['unit']} "
              f"(std {info['residual_std']:.4f})")
        print(table(bench) if kind == "planted" else table(bench, info["unit"]))


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m refimpl.experiments.rise",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the SchNet models and save them")
    scale_help = "preset (default: REFIMPL_SCALE, else full on CUDA, book on a CPU)"
    train.add_argument("--scale", choices=refimpl.SCALES, default=None, help=scale_help)
    train.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    train.add_argument("--progress", action="store_true")
    train.add_argument("--out", type=Path, default=None,
                       help="folder for the weights and the log (default: "
                            "refimpl.cache_dir('rise'), where load_or_train finds them)")
    evaluate = sub.add_parser("evaluate", help="print the chapter's tables")
    evaluate.add_argument("--scale", choices=refimpl.SCALES, default=None, help=scale_help)
    args = parser.parse_args(argv)
    # an explicit --scale wins; REFIMPL_SCALE is read (and checked) only without one
    args.scale = refimpl.scale(args.scale)
    {"train": _train_command, "evaluate": _evaluate_command}[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    main()
