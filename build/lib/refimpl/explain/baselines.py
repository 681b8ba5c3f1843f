r"""Baseline edge explanations for 3-D GNNs, as hard masks over the radius graph.

Every baseline returns a boolean mask over the columns of ``edge_index`` (the
radius graph :math:`\mathcal E_c`), evaluated exactly like RISE (see
:mod:`refimpl.explain.fidelity`). All but the uniform radius keep a prescribed
number :math:`k_m` of edges per molecule, normally RISE's :math:`|S_m|`, so that
methods are compared at the same keep ratio:

* **uniform radius**: every atom gets the radius :math:`Bc`,
  :math:`S = \{ d_{ji} < Bc \}` (RISE before optimisation; its own keep ratio);
* **shortest edges**: the :math:`k` shortest edges, i.e. one radius for all atoms
  tuned to keep :math:`k` edges;
* **random edges**: :math:`k` edges drawn uniformly without replacement;
* **GNNExplainer top-k**: PyG's :class:`~torch_geometric.explain.algorithm.GNNExplainer`
  (Ying et al., NeurIPS 2019) with its defaults, then the :math:`k` edges with the
  largest mask values.

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

__all__ = ["topk_edges", "uniform_radius_edges", "shortest_edges", "random_edges",
           "gnnexplainer_edge_scores"]


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
