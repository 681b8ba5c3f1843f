r"""Baseline edge explanations for 3-D GNNs, as hard masks over the radius graph.

Every baseline returns a boolean mask over the columns of ``edge_index`` (the
radius graph :math:`\mathcal E_c`), evaluated exactly like RISE (see
:mod:`refimpl.explain.fidelity`). All but the uniform radius keep a prescribed
number :math:`k_m` of edges per molecule, normally RISE's :math:`|S_m|`, so that
methods are compared at the same keep ratio:

* **uniform radius** :math:`Bc`: every atom gets the radius :math:`Bc`,
  :math:`S = \{ d_{ji} < Bc \}` (RISE before optimisation; its own keep ratio,
  so it is *not* a matched baseline: it shows RISE's starting point);
* **uniform radius at matched** :math:`\kappa`: one radius :math:`r_m` per
  molecule, solved so that :math:`|\{d_{ji} < r_m\}|` is as close as possible to
  :math:`k_m` (:func:`uniform_radius_for_keep`; the two directions of a pair have
  the same length, so it can differ from :math:`k_m` by one edge);
* **shortest edges**: the :math:`k` shortest edges, i.e. one radius for all atoms
  tuned to keep :math:`k` edges;
* **random edges**: :math:`k` edges drawn uniformly without replacement;
* **GNNExplainer top-k**: PyG's :class:`~torch_geometric.explain.algorithm.GNNExplainer`
  (Ying et al., NeurIPS 2019), then the :math:`k` edges with the largest mask
  values. PyG's defaults (100 epochs, lr 0.01) leave the mask near its random
  start on SchNet, so the epochs and learning rate are chosen on validation
  molecules (:func:`tune_gnnexplainer`) and the top-:math:`k` stability across
  seeds is measured (:func:`jaccard`);
* **gradient saliency top-k**: the :math:`k` edges with the largest
  :math:`|\partial f / \partial m_{ji}|` at :math:`m = \mathbf 1` (Baldassarre
  & Azizpour, 2019, "Explainability techniques for graph convolutional networks"),
  one backward pass for the whole batch: a cheap first-order baseline.

Per-molecule top-:math:`k` selection is batched: one sort over all edges.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch_geometric.explain import Explainer
from torch_geometric.explain.algorithm import GNNExplainer
from torch_geometric.utils import scatter

from refimpl.molecules.schnet import SchNetOnEdges

__all__ = ["topk_edges", "uniform_radius_edges", "uniform_radius_for_keep",
           "shortest_edges", "random_edges", "gnnexplainer_edge_scores",
           "saliency_edge_scores", "jaccard", "tune_gnnexplainer"]


def _check_k(k: Tensor, num_graphs: int) -> Tensor:
    k = torch.as_tensor(k)
    if k.dim() == 0:
        k = k.expand(num_graphs)
    if k.shape != (num_graphs,) or k.is_floating_point():
        raise ValueError(f"k must be an integer per molecule [{num_graphs}], got "
                         f"{k.dtype} {tuple(k.shape)}")
    if bool((k < 0).any()):
        raise ValueError("k must be non-negative")
    return k.long()


def topk_edges(score: Tensor, edge_batch: Tensor, k: Tensor,
               num_graphs: Optional[int] = None) -> Tensor:
    r"""Keep the ``k[m]`` highest-scoring edges of every molecule :math:`m` (ties
    broken by the lower edge index; all edges if a molecule has fewer).

    Args:
        score (Tensor): a score per edge ``[E]``.
        edge_batch (LongTensor): molecule index per edge ``[E]``.
        k (LongTensor): edges to keep per molecule ``[G]`` (or a scalar).
        num_graphs (int, optional): the number of molecules :math:`G`.

    Returns:
        BoolTensor ``[E]``.
    """
    if score.shape != edge_batch.shape or score.dim() != 1:
        raise ValueError(f"score and edge_batch must both have shape [E], got "
                         f"{tuple(score.shape)} and {tuple(edge_batch.shape)}")
    if num_graphs is None:
        num_graphs = int(edge_batch.max()) + 1 if edge_batch.numel() else 0
    k = _check_k(k, num_graphs).to(score.device)
    # Two stable sorts: by descending score, then by molecule.
    order = torch.sort(score, descending=True, stable=True).indices
    order = order[torch.sort(edge_batch[order], stable=True).indices]
    counts = scatter(torch.ones_like(edge_batch), edge_batch, dim=0,
                     dim_size=num_graphs, reduce="sum")
    ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)[:-1]])
    graph = edge_batch[order]
    rank = torch.arange(order.numel(), device=score.device) - ptr[graph]
    keep = torch.zeros_like(edge_batch, dtype=torch.bool)
    keep[order] = rank < k[graph]
    return keep


def uniform_radius_edges(edge_length: Tensor, budget: float, cutoff: float) -> Tensor:
    r"""One radius :math:`Bc` for every atom: :math:`S = \{ d_{ji} < Bc \}` ``[E]``."""
    if not 0 < budget <= 1:
        raise ValueError(f"budget must be in (0, 1], got {budget!r}")
    return edge_length < budget * cutoff


def uniform_radius_for_keep(edge_length: Tensor, edge_batch: Tensor, k: Tensor,
                            num_graphs: Optional[int] = None
                            ) -> tuple[Tensor, Tensor]:
    r"""One radius per molecule solved for a keep count: the uniform radius at
    matched keep ratio.

    For molecule :math:`m` with edge lengths :math:`d` and target count :math:`k_m`,
    the radius :math:`r_m` minimises :math:`\big|\,|\{e: d_e < r_m\}| - k_m\big|`
    (ties: the smaller count). The count is a step function of :math:`r`, so instead
    of bisecting on :math:`r` the solution is read off the sorted lengths: the
    candidate radii are the distinct lengths (keeping every shorter edge) and one
    radius above the longest edge (keeping all).

    Args:
        edge_length (Tensor): :math:`d_{ji}` ``[E]``.
        edge_batch (LongTensor): molecule index per edge ``[E]``.
        k (LongTensor): the target count per molecule ``[G]`` (or a scalar).
        num_graphs (int, optional): :math:`G`.

    Returns:
        ``(keep [E] bool, radius [G])`` with ``keep = edge_length < radius[m]``.
    """
    if edge_length.shape != edge_batch.shape or edge_length.dim() != 1:
        raise ValueError(f"edge_length and edge_batch must both have shape [E], got "
                         f"{tuple(edge_length.shape)} and {tuple(edge_batch.shape)}")
    if num_graphs is None:
        num_graphs = int(edge_batch.max()) + 1 if edge_batch.numel() else 0
    k = _check_k(k, num_graphs).tolist()
    radius = edge_length.new_zeros(num_graphs)
    for m in range(num_graphs):
        d = edge_length[edge_batch == m]
        if d.numel() == 0:
            continue
        cand = torch.cat([torch.unique(d), d.max().reshape(1) + 1.0])
        count = (d[None, :] < cand[:, None]).sum(1)  # |{d < r}| per candidate r
        best = int(torch.argmin((count - k[m]).abs()))  # first: the smaller count
        radius[m] = cand[best]
    return edge_length < radius[edge_batch], radius


def shortest_edges(edge_length: Tensor, edge_batch: Tensor, k: Tensor,
                   num_graphs: Optional[int] = None) -> Tensor:
    r"""The ``k[m]`` shortest edges of every molecule ``[E]`` (one shared radius
    per molecule, tuned to keep :math:`k` edges)."""
    return topk_edges(-edge_length, edge_batch, k, num_graphs)


def random_edges(edge_batch: Tensor, k: Tensor, num_graphs: Optional[int] = None,
                 generator: Optional[torch.Generator] = None) -> Tensor:
    r"""``k[m]`` edges of every molecule drawn uniformly without replacement ``[E]``.

    Args:
        generator (torch.Generator, optional): on ``edge_batch``'s device, for
            reproducible draws.
    """
    score = torch.rand(edge_batch.shape, generator=generator,
                       device=edge_batch.device)
    return topk_edges(score, edge_batch, k, num_graphs)


def gnnexplainer_edge_scores(model: nn.Module, z: Tensor, pos: Tensor,
                             edge_index: Tensor, batch: Optional[Tensor] = None,
                             epochs: int = 100, lr: float = 0.01, seed: int = 0,
                             **coeffs) -> Tensor:
    r"""PyG GNNExplainer's soft edge mask ``[E]`` for every molecule.

    Runs :class:`~torch_geometric.explain.algorithm.GNNExplainer` through
    :class:`~torch_geometric.explain.Explainer` (``explanation_type='model'``,
    ``edge_mask_type='object'``, regression, MSE loss plus its default size and
    entropy penalties) on :class:`~refimpl.molecules.schnet.SchNetOnEdges`, one
    molecule at a time: its penalties are averaged over all edges of a call, so a
    batched run would change the effective coefficients.

    Args:
        model: a :class:`~refimpl.molecules.schnet.SchNetRegressor`.
        z, pos, edge_index, batch: the molecules and their radius graph; atoms of a
            molecule must be contiguous (``batch`` sorted).
        epochs (int): GNNExplainer's steps. (default: :obj:`100`, PyG's default)
        lr (float): its learning rate. (default: :obj:`0.01`, PyG's default)
        seed (int): seeds the mask initialisation (the global RNG is restored).
        **coeffs: GNNExplainer coefficients (e.g. ``edge_size``).
    """
    if batch is None:
        batch = torch.zeros_like(z)
    if batch.numel() > 1 and not bool((batch[1:] >= batch[:-1]).all()):
        raise ValueError("batch must be sorted (atoms of a molecule contiguous)")
    num_graphs = int(batch.max()) + 1
    atom_counts = scatter(torch.ones_like(batch), batch, dim=0, dim_size=num_graphs)
    atom_ptr = torch.cat([atom_counts.new_zeros(1), atom_counts.cumsum(0)]).tolist()
    edge_batch = batch[edge_index[1]]
    explainer = Explainer(
        SchNetOnEdges(model), GNNExplainer(epochs=epochs, lr=lr, **coeffs),
        explanation_type="model", edge_mask_type="object", node_mask_type=None,
        model_config=dict(mode="regression", task_level="graph", return_type="raw"))
    scores = torch.zeros(edge_index.size(1), dtype=pos.dtype, device=pos.device)
    devices = [pos.device] if pos.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for m in range(num_graphs):
            a0, a1 = atom_ptr[m], atom_ptr[m + 1]
            edges = (edge_batch == m).nonzero().flatten()
            if edges.numel() == 0:
                continue
            explanation = explainer(z[a0:a1].view(-1, 1), edge_index[:, edges] - a0,
                                    pos=pos[a0:a1])
            scores[edges] = explanation.edge_mask.detach().to(scores.dtype)
    return scores


def saliency_edge_scores(model: nn.Module, z: Tensor, pos: Tensor,
                         edge_index: Tensor, batch: Optional[Tensor] = None
                         ) -> Tensor:
    r"""Gradient saliency of every edge, :math:`|\partial f(G; m) / \partial m_{ji}|`
    at :math:`m = \mathbf 1` ``[E]``: the first-order change of the prediction when
    the edge's message is removed. One forward and backward pass for the whole
    batch (molecules do not interact, so the gradient of the summed prediction
    is each molecule's own).

    Args:
        model: called as ``model(z, pos, batch, edge_index=..., edge_mask=...)``
            (e.g. :class:`~refimpl.molecules.schnet.SchNetRegressor`).
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape [2, E], got "
                         f"{tuple(edge_index.shape)}")
    training = model.training
    model.eval()
    try:
        mask = torch.ones(edge_index.size(1), dtype=pos.dtype, device=pos.device,
                          requires_grad=True)
        out = model(z, pos, batch, edge_index=edge_index, edge_mask=mask)
        (grad,) = torch.autograd.grad(out.sum(), mask)
    finally:
        model.train(training)
    return grad.abs().detach()


def jaccard(a: Tensor, b: Tensor, edge_batch: Tensor,
            num_graphs: Optional[int] = None) -> Tensor:
    r"""Per-molecule Jaccard index :math:`|A \cap B| / |A \cup B|` of two hard edge
    sets ``[G]`` (1 where both are empty). Two random :math:`k`-subsets of
    :math:`n` edges have an expected Jaccard of about :math:`\kappa / (2 - \kappa)`,
    with :math:`\kappa = k/n`."""
    if a.dtype != torch.bool or b.dtype != torch.bool or a.shape != b.shape:
        raise ValueError("a and b must be boolean edge masks of the same shape [E], "
                         f"got {a.dtype} {tuple(a.shape)} and {b.dtype} "
                         f"{tuple(b.shape)}")
    if num_graphs is None:
        num_graphs = int(edge_batch.max()) + 1
    inter = scatter((a & b).double(), edge_batch, dim=0, dim_size=num_graphs,
                    reduce="sum")
    union = scatter((a | b).double(), edge_batch, dim=0, dim_size=num_graphs,
                    reduce="sum")
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def tune_gnnexplainer(model: nn.Module, z: Tensor, pos: Tensor, edge_index: Tensor,
                      batch: Tensor, k: Tensor, epochs: tuple = (100, 300),
                      lrs: tuple = (0.01, 0.1), seed: int = 0) -> dict:
    r"""Choose GNNExplainer's epochs and learning rate on **validation** molecules.

    Every ``(epochs, lr)`` of the grid runs GNNExplainer on the given molecules;
    its top-``k`` edges (``k`` per molecule, normally RISE's count on the same
    molecules) are scored by the mean :math:`\mathrm{fid}^-`
    (:func:`refimpl.explain.fidelity.fidelity`), the criterion RISE optimises.

    Returns:
        ``{"grid": [{"epochs", "lr", "fid_minus", "mask_mean", "above_half"}],``
        ``"best": {"epochs", "lr"}}``; ``mask_mean`` and ``above_half`` (the mean
        soft mask and the fraction above 0.5) show whether the mask moved from its
        start (PyG initialises it around 0.5–0.6).
    """
    from refimpl.explain.fidelity import fidelity

    if not epochs or not lrs:
        raise ValueError(f"epochs and lrs must be non-empty, got {epochs}, {lrs}")
    edge_batch = batch[edge_index[1]]
    num_graphs = int(batch.max()) + 1
    with torch.no_grad():
        prediction = model(z, pos, batch, edge_index=edge_index)
    grid = []
    for e in epochs:
        for lr in lrs:
            scores = gnnexplainer_edge_scores(model, z, pos, edge_index, batch,
                                              epochs=int(e), lr=float(lr), seed=seed)
            keep = topk_edges(scores, edge_batch, k, num_graphs)
            fid = fidelity(model, z, pos, edge_index, keep, batch, prediction)
            grid.append(dict(epochs=int(e), lr=float(lr),
                             fid_minus=float(fid.fid_minus.mean()),
                             mask_mean=float(scores.mean()),
                             above_half=float((scores > 0.5).double().mean())))
    best = min(grid, key=lambda g: g["fid_minus"])
    return {"grid": grid, "best": {"epochs": best["epochs"], "lr": best["lr"]}}
