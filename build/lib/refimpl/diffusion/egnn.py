r"""EDM's E(n)-equivariant noise predictor on dense, masked tensors.

The network of EDM :cite:`hoogeboom2022edm` is an EGNN :cite:`satorras2021egnn`
acting on a fully connected graph of the real atoms of each molecule. With node
features :math:`h_i`, coordinates :math:`x_i` and the squared distance
:math:`a_{ij} = \lVert x^0_i - x^0_j\rVert^2` at the network input, each of the
:math:`L` blocks computes :math:`d_{ij} = \lVert x_i - x_j\rVert^2`,
:math:`e_{ij} = [d_{ij}, a_{ij}]` and

.. math::
    m_{ij} &= \phi_e(h_i, h_j, e_{ij})\;
              \operatorname{sigmoid}\bigl(\phi_{att}(\phi_e(\cdot))\bigr), \qquad
    h_i \leftarrow h_i + \phi_h\Bigl(h_i, \sum_{j\ne i} m_{ij}\Bigr), \\
    x_i &\leftarrow x_i + \sum_{j\ne i}
          \frac{x_i - x_j}{\sqrt{d_{ij} + 10^{-8}} + 1}\;
          \tanh\bigl(\phi_x(h_i, h_j, e_{ij})\bigr)\cdot 15 .

The prediction is :math:`\hat\varepsilon_x = x^L - x^0` projected to zero mean
(E(3)-equivariant, translation invariant) and :math:`\hat\varepsilon_h` = a linear
read-out of :math:`h^L` (invariant), centred over atoms in the Gaussian-shortcut
recipe. Time enters as the extra node feature :math:`t/T`.

Implementation notes. The first layer of every pair MLP acts on
:math:`[h_i, h_j, e_{ij}]`; it is evaluated as
:math:`W_a h_i + W_b h_j + W_e e_{ij} + b` (the same ``nn.Linear`` with its weight
split), which avoids materialising the concatenation. EDM computes a per-layer
``coords_range / L`` but never uses it: every block uses the full value (15), as
here. Parameter counts equal EDM's (e.g. 151,241 for ``K = 4``, 64 × 4).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .subspace import center

__all__ = ["EGNNDynamics", "GCL", "EquivariantUpdate", "EquivariantBlock"]


def _pair_mlp(mlp: nn.Sequential, h: Tensor, e: Tensor) -> Tensor:
    """``mlp([h_i, h_j, e_ij])`` for all pairs, ``[B, N, N, out]``."""
    first: nn.Linear = mlp[0]
    nf = h.shape[-1]
    W = first.weight
    hi = h @ W[:, :nf].T
    hj = h @ W[:, nf : 2 * nf].T
    pre = hi.unsqueeze(2) + hj.unsqueeze(1) + e @ W[:, 2 * nf :].T
    if first.bias is not None:
        pre = pre + first.bias
    return mlp[1:](pre)


class GCL(nn.Module):
    """One invariant message-passing layer of EDM's EGNN (attention-gated)."""

    def __init__(
        self,
        hidden_nf: int,
        edge_dim: int = 2,
        attention: bool = True,
        normalization_factor: float = 1.0,
    ):
        super().__init__()
        self.hidden_nf, self.edge_dim = hidden_nf, edge_dim
        self.attention, self.normalization_factor = attention, normalization_factor
        self.edge_mlp = nn.Sequential(
            nn.Linear(2 * hidden_nf + edge_dim, hidden_nf),
            nn.SiLU(),
            nn.Linear(hidden_nf, hidden_nf),
            nn.SiLU(),
        )
        self.node_mlp = nn.Sequential(
            nn.Linear(2 * hidden_nf, hidden_nf),
            nn.SiLU(),
            nn.Linear(hidden_nf, hidden_nf),
        )
        self.att_mlp = (
            nn.Sequential(nn.Linear(hidden_nf, 1), nn.Sigmoid()) if attention else None
        )

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                m.reset_parameters()

    def forward(
        self, h: Tensor, e: Tensor, node_mask: Tensor, edge_mask: Tensor
    ) -> Tensor:
        m = _pair_mlp(self.edge_mlp, h, e)
        if self.att_mlp is not None:
            m = m * self.att_mlp(m)
        agg = (m * edge_mask).sum(dim=2) / self.normalization_factor
        h = h + self.node_mlp(torch.cat([h, agg], dim=-1))
        return h * node_mask

    def extra_repr(self) -> str:
        return f"hidden_nf={self.hidden_nf}, attention={self.attention}"


class EquivariantUpdate(nn.Module):
    r"""The coordinate update :math:`x_i \leftarrow x_i + \sum_j u_{ij}\,
    \tanh(w_{ij})\,\mathrm{coords\_range}`."""

    def __init__(
        self,
        hidden_nf: int,
        edge_dim: int = 2,
        tanh: bool = True,
        coords_range: float = 15.0,
        normalization_factor: float = 1.0,
    ):
        super().__init__()
        self.hidden_nf, self.tanh, self.coords_range = (
            hidden_nf,
            tanh,
            float(coords_range),
        )
        self.normalization_factor = normalization_factor
        last = nn.Linear(hidden_nf, 1, bias=False)
        self.coord_mlp = nn.Sequential(
            nn.Linear(2 * hidden_nf + edge_dim, hidden_nf),
            nn.SiLU(),
            nn.Linear(hidden_nf, hidden_nf),
            nn.SiLU(),
            last,
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.coord_mlp[:-1]:
            if isinstance(m, nn.Linear):
                m.reset_parameters()
        # EDM: a near-zero last layer, so the initial network barely moves atoms.
        nn.init.xavier_uniform_(self.coord_mlp[-1].weight, gain=0.001)

    def forward(
        self,
        h: Tensor,
        x: Tensor,
        e: Tensor,
        coord_diff: Tensor,
        node_mask: Tensor,
        edge_mask: Tensor,
    ) -> Tensor:
        w = _pair_mlp(self.coord_mlp, h, e)
        w = torch.tanh(w) * self.coords_range if self.tanh else w
        trans = coord_diff * w * edge_mask
        x = x + trans.sum(dim=2) / self.normalization_factor
        return x * node_mask

    def extra_repr(self) -> str:
        return (f"hidden_nf={self.hidden_nf}, tanh={self.tanh}, "
                f"coords_range={self.coords_range}")


class EquivariantBlock(nn.Module):
    """``inv_sublayers`` GCLs followed by one coordinate update (EDM's block)."""

    def __init__(
        self,
        hidden_nf: int,
        inv_sublayers: int = 1,
        attention: bool = True,
        tanh: bool = True,
        coords_range: float = 15.0,
        norm_constant: float = 1.0,
        normalization_factor: float = 1.0,
    ):
        super().__init__()
        self.norm_constant = float(norm_constant)
        self.gcls = nn.ModuleList(
            [
                GCL(hidden_nf, 2, attention, normalization_factor)
                for _ in range(inv_sublayers)
            ]
        )
        self.update = EquivariantUpdate(
            hidden_nf, 2, tanh, coords_range, normalization_factor
        )

    def reset_parameters(self) -> None:
        for g in self.gcls:
            g.reset_parameters()
        self.update.reset_parameters()

    def forward(
        self, h: Tensor, x: Tensor, a: Tensor, node_mask: Tensor, edge_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        diff = x.unsqueeze(2) - x.unsqueeze(1)
        d = diff.pow(2).sum(dim=-1, keepdim=True)
        coord_diff = diff / (torch.sqrt(d + 1e-8) + self.norm_constant)
        e = torch.cat([d, a], dim=-1)
        for gcl in self.gcls:
            h = gcl(h, e, node_mask, edge_mask)
        x = self.update(h, x, e, coord_diff, node_mask, edge_mask)
        return h * node_mask, x

    def extra_repr(self) -> str:
        return f"norm_constant={self.norm_constant}"


class EGNNDynamics(nn.Module):
    r"""EDM's noise predictor :math:`\hat\varepsilon = \phi(z_t, t/T)`.

    Args:
        num_features: atom-type channels :math:`K` (plus charges, if used).
        n_dims: spatial dimension :math:`D` (3 for molecules).
        hidden_nf: width ``nf`` (EDM: 256).
        n_layers: number of equivariant blocks :math:`L` (EDM QM9: 9).
        inv_sublayers: GCLs per block (EDM: 1).
        attention, tanh: EDM's gates (both on).
        coords_range: the tanh range of the coordinate update (EDM: 15, per block).
        norm_constant: added to :math:`\lVert x_i - x_j\rVert` in :math:`u_{ij}` (1).
        normalization_factor: divisor of the neighbour sums (1).
        center_h: centre :math:`\hat\varepsilon_h` over atoms (Gaussian shortcut).
    """

    def __init__(
        self,
        num_features: int,
        n_dims: int = 3,
        hidden_nf: int = 256,
        n_layers: int = 9,
        inv_sublayers: int = 1,
        attention: bool = True,
        tanh: bool = True,
        coords_range: float = 15.0,
        norm_constant: float = 1.0,
        normalization_factor: float = 1.0,
        center_h: bool = True,
    ):
        super().__init__()
        for name, v in dict(
            num_features=num_features,
            n_dims=n_dims,
            hidden_nf=hidden_nf,
            n_layers=n_layers,
            inv_sublayers=inv_sublayers,
        ).items():
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.num_features, self.n_dims = num_features, n_dims
        self.hidden_nf, self.n_layers, self.center_h = hidden_nf, n_layers, center_h
        self.embedding = nn.Linear(num_features + 1, hidden_nf)
        self.blocks = nn.ModuleList(
            [
                EquivariantBlock(
                    hidden_nf,
                    inv_sublayers,
                    attention,
                    tanh,
                    coords_range,
                    norm_constant,
                    normalization_factor,
                )
                for _ in range(n_layers)
            ]
        )
        self.embedding_out = nn.Linear(hidden_nf, num_features + 1)

    def reset_parameters(self) -> None:
        self.embedding.reset_parameters()
        self.embedding_out.reset_parameters()
        for b in self.blocks:
            b.reset_parameters()

    def forward(
        self,
        x: Tensor,
        h: Tensor,
        t: Tensor,
        node_mask: Tensor,
        edge_mask: Optional[Tensor] = None,
    ) -> tuple[Tensor, Tensor]:
        r"""Predict the noise.

        Args:
            x: noised coordinates ``[B, N, D]``.
            h: noised features ``[B, N, K]``.
            t: normalised time :math:`t/T`, ``[B]`` or ``[B, 1]``.
            node_mask: ``[B, N, 1]``.
            edge_mask: optional ``[B, N, N, 1]`` (default: all pairs of distinct
                real atoms).

        Returns:
            ``(eps_x, eps_h)`` with the shapes of ``x`` and ``h``, zero on padding.
        """
        if x.dim() != 3 or h.dim() != 3 or node_mask.shape != x.shape[:2] + (1,):
            raise ValueError(
                f"expected x [B, N, D], h [B, N, K] and node_mask [B, N, 1], "
                f"got {tuple(x.shape)}, {tuple(h.shape)}, "
                f"{tuple(node_mask.shape)}"
            )
        B, N, D = x.shape
        if (
            D != self.n_dims
            or h.shape[:2] != (B, N)
            or h.shape[-1] != self.num_features
        ):
            raise ValueError(
                f"expected x [B, N, {self.n_dims}] and h [B, N, "
                f"{self.num_features}], got {tuple(x.shape)} and {tuple(h.shape)}"
            )
        if edge_mask is None:
            eye = torch.eye(N, device=x.device, dtype=x.dtype)
            edge_mask = (node_mask @ node_mask.transpose(1, 2) * (1 - eye)).unsqueeze(
                -1
            )
        t = torch.as_tensor(t, device=x.device, dtype=x.dtype).reshape(-1)
        if t.numel() == 1:
            t = t.expand(B)
        x0, h = x * node_mask, h * node_mask
        a = (x0.unsqueeze(2) - x0.unsqueeze(1)).pow(2).sum(dim=-1, keepdim=True)
        feat = self.embedding(torch.cat([h, t.view(B, 1, 1).expand(B, N, 1)], dim=-1))
        xx = x0
        for block in self.blocks:
            feat, xx = block(feat, xx, a, node_mask, edge_mask)
        out = self.embedding_out(feat) * node_mask
        eps_h = out[..., : self.num_features]
        eps_x = center((xx - x0) * node_mask, node_mask, validate=False)
        if self.center_h:
            eps_h = center(eps_h, node_mask, validate=False)
        return eps_x, eps_h

    def extra_repr(self) -> str:
        return (
            f"num_features={self.num_features}, n_dims={self.n_dims}, "
            f"hidden_nf={self.hidden_nf}, n_layers={self.n_layers}, "
            f"center_h={self.center_h}"
        )
