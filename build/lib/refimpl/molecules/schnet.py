r"""A SchNet property model whose messages can be masked edge by edge.

:class:`SchNetRegressor` is :class:`torch_geometric.nn.SchNet` (Schütt et al.,
2017, 2018) with three additions that the explanation chapter needs:

* a **pure-torch interaction graph** (:class:`EdgeListGraph`, built on
  :func:`refimpl.molecules.radius_graph`), because PyG 2.8's default needs the
  ``pyg-lib`` kernel, which does not install from PyPI;
* an optional **fixed edge list**, so the model can be evaluated on any subgraph
  :math:`S \subseteq \mathcal E_c` of its radius graph (a hard explanation), with
  the edge order under the caller's control;
* an optional **soft edge mask** :math:`m \in [0, 1]^E` that multiplies every
  continuous-filter message,

  .. math::
      \mathbf h_i \leftarrow \mathbf h_i + \mathrm{Lin}\Big(\sum_{j \to i}
      m_{ji}\, \mathbf h_j \odot W(d_{ji})\Big),

  in every interaction block. It uses PyG's own explanation hook
  (:meth:`~torch_geometric.nn.conv.MessagePassing.explain_message`, set through
  :func:`torch_geometric.explain.algorithm.utils.set_masks`), the same mechanism
  through which :class:`~torch_geometric.explain.algorithm.GNNExplainer` masks
  SchNet, so every explainer in the chapter removes edges in the same way. A mask
  of 0 removes an edge exactly: the output equals that of the graph without it.

The output is de-standardised to the target's units:
:math:`f(G) = \sigma_y\,\mathrm{SchNet}(G) + \mu_y + \sum_i a_{z_i}`, where
:math:`a_z` is an optional per-element reference (a linear fit of the target on
element counts, for extensive targets such as :math:`U_0`). These statistics are
buffers, saved with the weights.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Sequence
from typing import Iterator, Optional

import torch
from torch import Tensor, nn
from torch_geometric.explain.algorithm.utils import clear_masks, set_masks
from torch_geometric.nn import MessagePassing, SchNet
from torch_geometric.utils import scatter

from refimpl.checkpoint import register_model

from .graph import (
    _check_atomic_numbers,
    _check_batch,
    _check_edge_index,
    _check_pos,
    radius_graph,
)

__all__ = ["EdgeListGraph", "SchNetRegressor", "SchNetOnEdges", "message_mask"]


class EdgeListGraph(nn.Module):
    r"""SchNet's ``interaction_graph``: the radius graph, or a fixed edge list.

    Called as ``graph(pos, batch) -> (edge_index, edge_weight)`` (the contract of
    :class:`torch_geometric.nn.models.schnet.RadiusInteractionGraph`). Inside
    :meth:`use` it returns the given ``edge_index`` instead of the radius graph.
    Edge lengths are always recomputed from ``pos``,
    :math:`d_{ji} = \lVert \mathbf x_j - \mathbf x_i \rVert`.

    Args:
        cutoff (float): the radius-graph cutoff :math:`c` in Å.
        max_num_neighbors (int, optional): keep only the nearest sources per target
            (default: :obj:`None`, no cap; PyG's SchNet silently caps at 32).
    """

    def __init__(self, cutoff: float, max_num_neighbors: Optional[int] = None):
        super().__init__()
        self.cutoff = float(cutoff)
        self.max_num_neighbors = max_num_neighbors
        self._fixed: Optional[Tensor] = None

    def edges(self, pos: Tensor, batch: Optional[Tensor] = None) -> Tensor:
        """The radius graph :math:`\\mathcal E_c` ``[2, E]`` (source row 0)."""
        return radius_graph(pos, self.cutoff, batch, self.max_num_neighbors)

    @contextlib.contextmanager
    def use(self, edge_index: Tensor) -> Iterator[None]:
        """Within the context, every call returns ``edge_index``."""
        previous, self._fixed = self._fixed, edge_index
        try:
            yield
        finally:
            self._fixed = previous

    def forward(self, pos: Tensor, batch: Tensor) -> tuple[Tensor, Tensor]:
        edge_index = self._fixed if self._fixed is not None else self.edges(pos, batch)
        src, dst = edge_index
        return edge_index, (pos[src] - pos[dst]).norm(dim=-1)

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}, max_num_neighbors={self.max_num_neighbors}"


class _SameInputs:
    """The last inputs that passed the checks, held by weak reference with their
    in-place version counters: the same, unmodified tensors are not checked again.
    """

    def __init__(self) -> None:
        self._last: tuple = ()

    @staticmethod
    def _key(tensors: tuple, extra: object) -> tuple | None:
        try:
            return tuple((None, None) if t is None else (weakref.ref(t), t._version)
                         for t in tensors) + (extra,)
        except (RuntimeError, TypeError):  # inference tensors have no version
            return None

    def seen(self, tensors: tuple, extra: object) -> bool:
        last = self._last
        if len(last) != len(tensors) + 1 or last[-1] != extra:
            return False
        for t, (ref, version) in zip(tensors, last[:-1]):
            if t is None:
                if ref is not None:
                    return False
            elif ref is None or ref() is not t or getattr(t, "_version", -1) != version:
                return False
        return True

    def remember(self, tensors: tuple, extra: object) -> None:
        self._last = self._key(tensors, extra) or ()


#: Per model (held weakly): the inputs it last checked.
_CHECKED: weakref.WeakKeyDictionary[nn.Module, _SameInputs] = \
    weakref.WeakKeyDictionary()


def _message_passing_modules(model: nn.Module) -> list[MessagePassing]:
    return [m for m in model.modules() if isinstance(m, MessagePassing)]


@contextlib.contextmanager
def message_mask(model: nn.Module, edge_mask: Tensor,
                 edge_index: Tensor) -> Iterator[None]:
    r"""Multiply every message of every ``MessagePassing`` layer of ``model`` by
    ``edge_mask`` (values in :math:`[0, 1]`, one per column of ``edge_index``)
    for the duration of the context, through PyG's explanation hook.

    PyG pitfall handled here: once :class:`~torch_geometric.explain.algorithm.
    GNNExplainer` has run on a model, each layer keeps an ``_edge_mask`` parameter
    slot, and :func:`~torch_geometric.explain.algorithm.utils.set_masks` then wraps
    any later mask in a *new* ``Parameter``, cutting it from the autograd graph (an
    explainer's gradients silently vanish). The slot is removed first.

    Raises:
        ValueError: if ``model`` has no ``MessagePassing`` layer (nothing to mask)
            or the mask length differs from the number of edges.
    """
    layers = _message_passing_modules(model)
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no torch_geometric MessagePassing layer, so "
            "its messages cannot be masked (it cannot depend on the edges)")
    if edge_mask.dim() != 1 or edge_mask.numel() != edge_index.size(1):
        raise ValueError(
            f"edge_mask must have shape [E] = [{edge_index.size(1)}], got "
            f"{tuple(edge_mask.shape)}")
    for layer in layers:
        layer._parameters.pop("_edge_mask", None)
    set_masks(model, edge_mask, edge_index, apply_sigmoid=False)
    try:
        yield
    finally:
        clear_masks(model)


@register_model
class SchNetRegressor(SchNet):
    r"""SchNet for one graph-level scalar property, with maskable messages.

    .. math::
        f(G) = \sigma_y \sum_i \mathrm{MLP}\big(\mathbf h_i^{(T)}\big) + \mu_y
        + \sum_i a_{z_i},\qquad
        \mathbf h_i^{(t+1)} = \mathbf h_i^{(t)} + \mathrm{Lin}\Big(\sum_{j\to i}
        m_{ji}\,\mathrm{Lin}(\mathbf h^{(t)}_j) \odot
        \mathrm{MLP}\big(\mathbf e(d_{ji})\big)\,C(d_{ji})\Big)

    with Gaussian distance features :math:`\mathbf e`, the cosine cutoff
    :math:`C(d) = \tfrac12(\cos(\pi d / c) + 1)` and an optional message mask
    :math:`m` (default 1). See Schütt et al., *SchNet: A continuous-filter
    convolutional neural network for modeling quantum interactions*, NeurIPS 2017.

    Args:
        hidden_channels (int): atom feature width. (default: :obj:`64`)
        num_filters (int): filter width. (default: :obj:`64`)
        num_interactions (int): interaction blocks :math:`T`. (default: :obj:`3`)
        num_gaussians (int): Gaussian distance features. (default: :obj:`25`)
        cutoff (float): radius-graph cutoff :math:`c` in Å. (default: :obj:`5.0`)
        max_num_neighbors (int, optional): neighbour cap of the radius graph.
            (default: :obj:`None`, no cap)
        elements (sequence of int, optional): the atomic numbers the model is
            trained for (e.g. QM9's ``(1, 6, 7, 8, 9)``); any other ``z`` is a
            :class:`ValueError`. (default: :obj:`None`, any of 1..99, the rows of
            the embedding)

    Inputs are checked (a clear error, not a raw torch one): ``z`` integer atomic
    numbers the model knows, ``pos`` finite ``[N, 3]`` in the parameters' dtype,
    ``batch`` consecutive molecule indices, ``edge_index`` in range and
    ``edge_mask`` one weight per edge (checked by :func:`message_mask`).

    Call as ``model(z, pos, batch=None, edge_index=None, edge_mask=None)``; returns
    ``[num_graphs]`` in the target's units.
    """

    family = "spatial"

    def __init__(self, hidden_channels: int = 64, num_filters: int = 64,
                 num_interactions: int = 3, num_gaussians: int = 25,
                 cutoff: float = 5.0, max_num_neighbors: Optional[int] = None,
                 elements: Sequence[int] | None = None):
        for name, value in [("hidden_channels", hidden_channels),
                            ("num_filters", num_filters),
                            ("num_gaussians", num_gaussians)]:
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(num_interactions, int) or num_interactions < 0:
            raise ValueError("num_interactions must be a non-negative integer, got "
                             f"{num_interactions!r}")
        if not float(cutoff) > 0:
            raise ValueError(f"cutoff must be positive (Å), got {cutoff!r}")
        if elements is not None:
            elements = sorted({int(e) for e in elements})
            if not elements or elements[0] < 1 or elements[-1] > 99:
                raise ValueError("elements must be atomic numbers in 1..99, got "
                                 f"{elements!r}")
        super().__init__(hidden_channels=hidden_channels, num_filters=num_filters,
                         num_interactions=num_interactions,
                         num_gaussians=num_gaussians, cutoff=float(cutoff),
                         interaction_graph=EdgeListGraph(cutoff, max_num_neighbors),
                         readout="add")
        self.max_num_neighbors = max_num_neighbors
        self.elements = elements
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_std", torch.ones(()))
        self.register_buffer("element_ref", torch.zeros(100))

    def config(self) -> dict:
        return dict(hidden_channels=self.hidden_channels, num_filters=self.num_filters,
                    num_interactions=self.num_interactions,
                    num_gaussians=self.num_gaussians, cutoff=self.cutoff,
                    max_num_neighbors=self.max_num_neighbors, elements=self.elements)

    @torch.no_grad()
    def set_target_stats(self, mean: float, std: float,
                         element_ref: Optional[Tensor] = None) -> "SchNetRegressor":
        r"""Set :math:`\mu_y`, :math:`\sigma_y` and the per-element reference
        :math:`a_z` (``[100]``, indexed by atomic number; default zeros)."""
        if not float(std) > 0:
            raise ValueError(f"the target std must be positive, got {std!r}")
        self.target_mean.fill_(float(mean))
        self.target_std.fill_(float(std))
        if element_ref is not None:
            element_ref = torch.as_tensor(element_ref, dtype=self.element_ref.dtype)
            if element_ref.shape != (100,):
                raise ValueError("element_ref must have shape [100], got "
                                 f"{tuple(element_ref.shape)}")
            self.element_ref.copy_(element_ref)
        return self

    def edges(self, pos: Tensor, batch: Optional[Tensor] = None) -> Tensor:
        r"""The model's radius graph :math:`\mathcal E_c` ``[2, E]`` for ``pos``."""
        return self.interaction_graph.edges(pos, batch)

    def forward(self, z: Tensor, pos: Tensor, batch: Optional[Tensor] = None,
                edge_index: Optional[Tensor] = None,
                edge_mask: Optional[Tensor] = None) -> Tensor:
        r"""Predict the property of every molecule.

        Args:
            z (LongTensor): atomic numbers ``[N]``.
            pos (Tensor): positions in Å ``[N, 3]``.
            batch (LongTensor, optional): molecule index per atom ``[N]``.
            edge_index (LongTensor, optional): use these edges ``[2, E]`` instead of
                the radius graph (e.g. a kept subgraph).
            edge_mask (Tensor, optional): multiply the messages along the edges by
                these weights ``[E]`` (requires ``edge_index``).

        Returns:
            ``[num_graphs]`` predictions in the target's units.
        """
        if edge_mask is not None and edge_index is None:
            raise ValueError("edge_mask needs the edge_index it refers to")
        weight = self.embedding.weight
        memo = _CHECKED.setdefault(self, _SameInputs())
        inputs = (z, pos, batch, edge_index)
        if not memo.seen(inputs, weight.dtype):
            # Checks that read values synchronise with the GPU; a loop that calls
            # the model on the same tensors (RISE's optimisation) runs them once.
            _check_atomic_numbers(z, self.embedding.num_embeddings, "z",
                                  self.elements)
            _check_pos(pos)
            if pos.size(-1) != 3 or pos.size(0) != z.size(0):
                raise ValueError(f"pos must have shape [N, 3] = [{z.size(0)}, 3], "
                                 f"got {tuple(pos.shape)}")
            if pos.dtype != weight.dtype and \
                    not torch.is_autocast_enabled(pos.device.type):
                raise TypeError(f"pos has dtype {pos.dtype} but the model's parameters "
                                f"are {weight.dtype}; pass pos.to({weight.dtype}) or "
                                f"convert the model with .to({pos.dtype})")
            _check_batch(batch, z.size(0), pos.device, contiguous=True)
            if edge_index is not None:
                _check_edge_index(edge_index, z.size(0))
            memo.remember(inputs, weight.dtype)
        batch = torch.zeros_like(z) if batch is None else batch.long()
        with contextlib.ExitStack() as stack:
            if edge_index is not None:
                stack.enter_context(self.interaction_graph.use(edge_index))
            if edge_mask is not None:
                stack.enter_context(message_mask(self, edge_mask, edge_index))
            out = super().forward(z, pos, batch).view(-1)
        num_graphs = out.numel()
        ref = scatter(self.element_ref[z], batch, dim=0, dim_size=num_graphs,
                      reduce="sum")
        return out * self.target_std + self.target_mean + ref.to(out.dtype)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(hidden_channels={self.hidden_channels}, "
                f"num_filters={self.num_filters}, "
                f"num_interactions={self.num_interactions}, "
                f"num_gaussians={self.num_gaussians}, cutoff={self.cutoff})")


class SchNetOnEdges(nn.Module):
    r"""Adapter to PyG's explain API: ``forward(x, edge_index, pos, batch=None)``.

    :class:`torch_geometric.explain.Explainer` calls models as
    ``model(x, edge_index, **kwargs)`` and checks that an edge mask has one entry
    per column of ``edge_index``. Passing the atomic numbers as ``x = z.view(-1, 1)``
    and the radius graph as ``edge_index`` (with ``pos`` as a keyword) makes SchNet
    run on exactly these edges, so masks line up with them and no PyG file needs
    patching. Returns ``[num_graphs, 1]``.

    Args:
        model (SchNetRegressor): the wrapped model.
    """

    def __init__(self, model: SchNetRegressor):
        super().__init__()
        self.model = model

    @property
    def cutoff(self) -> float:
        return self.model.cutoff

    def forward(self, x: Tensor, edge_index: Tensor, pos: Optional[Tensor] = None,
                batch: Optional[Tensor] = None) -> Tensor:
        if pos is None:
            raise ValueError("SchNetOnEdges needs the positions: pass pos=... as a "
                             "keyword argument (e.g. explainer(z.view(-1, 1), "
                             "edge_index, pos=pos))")
        return self.model(x.view(-1), pos, batch, edge_index=edge_index).view(-1, 1)
