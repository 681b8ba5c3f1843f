r"""Regression fidelities of hard edge explanations of 3-D GNNs.

PyG's :func:`torch_geometric.explain.metric.fidelity` is defined for classifiers
only (it raises ``ValueError`` for regression), so the regression versions used by
the chapter are written here. For molecules :math:`G_m` with explanations
:math:`S_m \subseteq \mathcal E_{c,m}` (kept directed edges),

.. math::
    \mathrm{fid}^-_m = \big|f(G_{m,S_m}) - f(G_m)\big| \;(\text{lower is better}),
    \qquad
    \mathrm{fid}^+_m = \big|f(G_m \setminus S_m) - f(G_m)\big| \;(\text{higher}),
    \qquad
    \kappa_m = |S_m| / |\mathcal E_{c,m}|.

:math:`f(G_S)` re-runs the model on the kept edges only, with no soft mask (the
hard evaluation), and :math:`G \setminus S` on the removed ones. :math:`\mathrm{fid}^-`
alone is not enough: deleting edges moves the model off its training
distribution, and random subgraphs can preserve a sum-readout prediction by
cancellation; :math:`\mathrm{fid}^+` shows whether the kept edges are the ones the
model needs. Compare methods only at matched :math:`\kappa`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

__all__ = ["Fidelity", "keep_ratio", "subgraph_prediction", "fidelity"]


def _edge_batch(edge_index: Tensor, batch: Optional[Tensor]) -> Tensor:
    if batch is None:
        return torch.zeros_like(edge_index[1])
    return batch[edge_index[1]]


def _check_keep(keep: Tensor, edge_index: Tensor) -> None:
    if keep.dtype != torch.bool:
        raise TypeError(f"keep must be a boolean edge mask, got dtype {keep.dtype}")
    if keep.shape != (edge_index.size(1),):
        raise ValueError(f"keep must have shape [E] = [{edge_index.size(1)}], got "
                         f"{tuple(keep.shape)}")


def keep_ratio(keep: Tensor, edge_index: Tensor, batch: Optional[Tensor] = None,
               num_graphs: Optional[int] = None) -> Tensor:
    r"""Keep ratio :math:`\kappa_m = |S_m| / |\mathcal E_{c,m}|` per molecule ``[G]``
    (0 for a molecule without edges).

    Args:
        keep (BoolTensor): kept edges ``[E]``.
        edge_index (LongTensor): ``[2, E]``.
        batch (LongTensor, optional): molecule index per atom.
        num_graphs (int, optional): number of molecules.
    """
    _check_keep(keep, edge_index)
    if num_graphs is None:
        num_graphs = 1 if batch is None else int(batch.max()) + 1
    return scatter(keep.float(), _edge_batch(edge_index, batch), dim=0,
                   dim_size=num_graphs, reduce="mean")


@torch.no_grad()
def subgraph_prediction(model: nn.Module, z: Tensor, pos: Tensor,
                        edge_index: Tensor, keep: Tensor,
                        batch: Optional[Tensor] = None) -> Tensor:
    r""":math:`f(G_S)`: the model run on the kept edges ``edge_index[:, keep]`` only
    (``model(z, pos, batch, edge_index=...)``), in eval mode, ``[G]``."""
    _check_keep(keep, edge_index)
    training = model.training
    model.eval()
    try:
        return model(z, pos, batch, edge_index=edge_index[:, keep]).reshape(-1)
    finally:
        model.train(training)


@dataclass
class Fidelity:
    """Per-molecule fidelities (all ``[G]``).

    Attributes:
        fid_minus: :math:`|f(G_S) - f(G)|`.
        fid_plus: :math:`|f(G \\setminus S) - f(G)|`.
        keep_ratio: :math:`|S| / |E|`.
        prediction: :math:`f(G)`.
        kept: :math:`f(G_S)`.
        removed: :math:`f(G \\setminus S)`.
    """

    fid_minus: Tensor
    fid_plus: Tensor
    keep_ratio: Tensor
    prediction: Tensor
    kept: Tensor
    removed: Tensor


def fidelity(model: nn.Module, z: Tensor, pos: Tensor, edge_index: Tensor,
             keep: Tensor, batch: Optional[Tensor] = None,
             prediction: Optional[Tensor] = None) -> Fidelity:
    r"""Regression fidelities of the hard explanation ``keep`` of every molecule.

    Args:
        model (nn.Module): called as ``model(z, pos, batch, edge_index=...)``.
        z (LongTensor): atomic numbers ``[N]``.
        pos (Tensor): positions ``[N, 3]``.
        edge_index (LongTensor): the full graph :math:`\mathcal E_c` ``[2, E]``.
        keep (BoolTensor): the explanation :math:`S` ``[E]``.
        batch (LongTensor, optional): molecule index per atom.
        prediction (Tensor, optional): :math:`f(G)` if already known ``[G]``.
    """
    _check_keep(keep, edge_index)
    if prediction is None:
        prediction = subgraph_prediction(model, z, pos, edge_index,
                                         torch.ones_like(keep), batch)
    prediction = prediction.detach().reshape(-1)
    kept = subgraph_prediction(model, z, pos, edge_index, keep, batch)
    removed = subgraph_prediction(model, z, pos, edge_index, ~keep, batch)
    ratio = keep_ratio(keep, edge_index, batch, prediction.numel())
    return Fidelity(fid_minus=(kept - prediction).abs(),
                    fid_plus=(removed - prediction).abs(), keep_ratio=ratio,
                    prediction=prediction, kept=kept, removed=removed)
