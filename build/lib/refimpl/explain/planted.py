r"""A planted ground truth for edge explanations of 3-D GNNs.

An explainer is usually judged only by whether its subgraph preserves the
prediction. A synthetic label whose interacting pairs are known lets us also ask
whether it finds the *right* edges. The planted label here is a bond-energy-like
sum over the bonds between heavy atoms,

.. math::
    y(G) = \sum_{i < j \,:\, z_i, z_j \in \mathcal H,\; d_{ij} < r_b}
    \Big( w_{z_i z_j} + k\,\big(d_{ij} - d_0\big)^2 \Big),
    \qquad \mathcal H = \{\mathrm C, \mathrm N, \mathrm O, \mathrm F\},\;
    r_b = 1.6\ \text{Å},

with one weight :math:`w_{ab} \sim \mathcal N(0, 1)` per pair of heavy elements,
drawn once from a fixed seed. :math:`r_b` covers the C–C, C–N, C–O, C=O, ... bonds
and excludes every non-bonded heavy pair (1–3 distances are :math:`\gtrsim 2.2`
Å). Bonds to hydrogen contribute nothing, so the **true edge set** is the directed
heavy-atom bonds :math:`\{ j \to i : z_i, z_j \in \mathcal H,\ d_{ji} < r_b \}`, a
subset of the atoms and of the short edges. (Variant A of the spec restricted to
heavy atoms: with all bonds planted, the shortest edges would be the answer by
construction.)

:class:`PlantedPairModel` computes :math:`y` exactly as a message-passing model
(each directed planted edge carries half of its pair's term), so an explainer can
be checked against a model with a known dependence.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import scatter

from refimpl.checkpoint import register_model
from refimpl.molecules.graph import _check_batch, edge_lengths, radius_graph
from refimpl.molecules.schnet import message_mask

__all__ = ["HEAVY_ELEMENTS", "planted_weights", "planted_edges", "planted_target",
           "PlantedPairModel", "edge_precision_recall"]

#: Atomic numbers of the heavy elements of QM9.
HEAVY_ELEMENTS: tuple[int, ...] = (6, 7, 8, 9)


def planted_weights(seed: int = 0, elements: Sequence[int] = HEAVY_ELEMENTS
                    ) -> Tensor:
    r"""The symmetric pair weights :math:`w_{ab} \sim \mathcal N(0, 1)` ``[100, 100]``
    (zero unless both elements are planted), from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.zeros(100, 100, dtype=torch.float64)
    elements = sorted(set(int(e) for e in elements))
    for a_idx, a in enumerate(elements):
        for b in elements[a_idx:]:
            w[a, b] = w[b, a] = torch.randn((), generator=gen, dtype=torch.float64)
    return w


def planted_edges(z: Tensor, edge_index: Tensor, edge_length: Tensor,
                  r_b: float = 1.6, elements: Sequence[int] = HEAVY_ELEMENTS
                  ) -> Tensor:
    r"""The true edges: both ends planted elements and :math:`d_{ji} < r_b`,
    ``[E]`` (bool)."""
    is_heavy = torch.isin(z, torch.as_tensor(list(elements), device=z.device))
    return is_heavy[edge_index[0]] & is_heavy[edge_index[1]] & (edge_length < r_b)


def _pair_terms(z, edge_index, edge_length, weights, k, d0) -> Tensor:
    w = weights.to(edge_length.device, edge_length.dtype)
    return w[z[edge_index[0]], z[edge_index[1]]] + k * (edge_length - d0) ** 2


def planted_target(z: Tensor, pos: Tensor, batch: Optional[Tensor] = None,
                   r_b: float = 1.6, k: float = 10.0, d0: float = 1.4,
                   seed: int = 0) -> Tensor:
    r"""The planted label :math:`y(G)` of every molecule ``[G]`` (arbitrary units).

    Args:
        z (LongTensor): atomic numbers ``[N]``.
        pos (Tensor): positions in Å ``[N, 3]``.
        batch (LongTensor, optional): molecule index per atom.
        r_b (float): bond cutoff in Å. (default: :obj:`1.6`)
        k (float): stiffness of the distance term. (default: :obj:`10.0`)
        d0 (float): its reference length in Å. (default: :obj:`1.4`)
        seed (int): seed of the pair weights. (default: :obj:`0`)
    """
    if not isinstance(z, Tensor) or z.dim() != 1 or z.is_floating_point() \
            or z.dtype == torch.bool:
        raise TypeError("z must be a 1-D integer tensor of atomic numbers, got "
                        f"{getattr(z, 'dtype', type(z).__name__)} "
                        f"{tuple(getattr(z, 'shape', ()))}")
    batch = _check_batch(batch, z.size(0), z.device, contiguous=True)
    num_graphs = int(batch.max()) + 1 if batch.numel() else 0
    edge_index = radius_graph(pos, r_b, batch)
    length = edge_lengths(pos, edge_index)
    true = planted_edges(z, edge_index, length, r_b)
    term = _pair_terms(z, edge_index, length, planted_weights(seed), k, d0)
    # Each unordered pair appears as two directed edges.
    return 0.5 * scatter(term * true, batch[edge_index[1]], dim=0,
                         dim_size=num_graphs, reduce="sum")


@register_model
class PlantedPairModel(MessagePassing):
    r"""The planted label as an exact, maskable message-passing model.

    .. math::
        f(G;\, m) = \sum_{j \to i} m_{ji}\; \tfrac12\,\mathbb 1[j \to i \text{ planted}]
        \big(w_{z_i z_j} + k (d_{ji} - d_0)^2\big),

    so :math:`f(G; \mathbf 1) = y(G)` (:func:`planted_target`). It has the call
    signature of :class:`~refimpl.molecules.schnet.SchNetRegressor` and runs on the
    radius graph with cutoff ``cutoff``, so RISE and the fidelities apply to it
    unchanged, with a known answer.

    Args:
        cutoff (float): radius-graph cutoff in Å (the explainer's unit).
            (default: :obj:`5.0`)
        r_b, k, d0, seed: as in :func:`planted_target`.
    """

    def __init__(self, cutoff: float = 5.0, r_b: float = 1.6, k: float = 10.0,
                 d0: float = 1.4, seed: int = 0):
        super().__init__(aggr="add")
        if not cutoff > r_b > 0:
            raise ValueError(f"need cutoff > r_b > 0, got cutoff={cutoff}, r_b={r_b}")
        self.cutoff, self.r_b, self.k, self.d0, self.seed = (
            float(cutoff), float(r_b), float(k), float(d0), int(seed))
        self.register_buffer("weights", planted_weights(seed), persistent=False)

    def reset_parameters(self) -> None:  # no learnable parameters
        pass

    def config(self) -> dict:
        return dict(cutoff=self.cutoff, r_b=self.r_b, k=self.k, d0=self.d0,
                    seed=self.seed)

    def edges(self, pos: Tensor, batch: Optional[Tensor] = None) -> Tensor:
        return radius_graph(pos, self.cutoff, batch)

    def forward(self, z: Tensor, pos: Tensor, batch: Optional[Tensor] = None,
                edge_index: Optional[Tensor] = None,
                edge_mask: Optional[Tensor] = None) -> Tensor:
        if batch is None:
            batch = torch.zeros_like(z)
        num_graphs = int(batch.max()) + 1
        if edge_index is None:
            edge_index = self.edges(pos, batch)
        length = edge_lengths(pos, edge_index)
        true = planted_edges(z, edge_index, length, self.r_b)
        term = 0.5 * _pair_terms(z, edge_index, length, self.weights, self.k,
                                 self.d0) * true
        if edge_mask is None:
            per_atom = self.propagate(edge_index, term=term[:, None],
                                      size=(z.size(0), z.size(0)))
        else:
            with message_mask(self, edge_mask, edge_index):
                per_atom = self.propagate(edge_index, term=term[:, None],
                                          size=(z.size(0), z.size(0)))
        return scatter(per_atom.view(-1), batch, dim=0, dim_size=num_graphs,
                       reduce="sum")

    def message(self, term: Tensor) -> Tensor:
        return term

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(cutoff={self.cutoff}, r_b={self.r_b}, "
                f"k={self.k}, d0={self.d0}, seed={self.seed})")


def edge_precision_recall(keep: Tensor, truth: Tensor, edge_batch: Tensor,
                          num_graphs: Optional[int] = None
                          ) -> tuple[Tensor, Tensor, Tensor]:
    r"""Per-molecule edge precision :math:`|S \cap T| / |S|`, recall
    :math:`|S \cap T| / |T|` and F1 of a hard explanation :math:`S` against the true
    edges :math:`T`, each ``[G]``; NaN where undefined (:math:`S` or :math:`T`
    empty)."""
    if keep.dtype != torch.bool or truth.dtype != torch.bool:
        raise TypeError("keep and truth must be boolean edge masks")
    if keep.shape != truth.shape or keep.shape != edge_batch.shape:
        raise ValueError(f"keep, truth and edge_batch must have the same shape [E], "
                         f"got {tuple(keep.shape)}, {tuple(truth.shape)}, "
                         f"{tuple(edge_batch.shape)}")
    if num_graphs is None:
        num_graphs = int(edge_batch.max()) + 1
    def count(mask: Tensor) -> Tensor:
        return scatter(mask.double(), edge_batch, dim=0, dim_size=num_graphs,
                       reduce="sum")
    hit, kept, true = count(keep & truth), count(keep), count(truth)
    nan = torch.full_like(hit, float("nan"))
    precision = torch.where(kept > 0, hit / kept.clamp(min=1), nan)
    recall = torch.where(true > 0, hit / true.clamp(min=1), nan)
    f1 = torch.where(hit > 0, 2 * precision * recall / (precision + recall),
                     torch.where((kept > 0) & (true > 0), 0.0 * hit, nan))
    return precision, recall, f1
