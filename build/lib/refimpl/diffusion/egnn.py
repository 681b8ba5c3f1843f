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
split), which avoids materialising the concatenation. The two SiLU layers of a pair
MLP have a hand-written backward (:class:`_PairMLP`) that writes every
``[B, N, N, nf]`` gradient once, and the attention gate times the edge mask
(``[B, N, N, 1]``) enters the neighbour sum as a batched matrix product instead of
being multiplied into the messages. The function is unchanged: the plain-autograd
formulation is kept in :mod:`refimpl.diffusion.egnn_reference` and the tests compare
outputs and gradients with it (float64, 1e-6); ``benchmarks/egnn_step.py`` times
both. On a CPU the train step is bounded by these pair-sized passes and by the
allocator (see the benchmark). EDM computes a per-layer
``coords_range / L`` but never uses it: every block uses the full value (15), as
here. Parameter counts equal EDM's (e.g. 151,241 for ``K = 4``, 64 × 4).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .subspace import center

__all__ = ["EGNNDynamics", "GCL", "EquivariantUpdate", "EquivariantBlock"]


#: Pair features (``pairs x nf``) per chunk of the pair computations on a CPU (2 MB
#: of float32: the book configuration, batch 64 of at most 9 atoms and nf 64, is one
#: chunk; smaller chunks did not measurably help on the project's CPU and multiply
#: the number of operations). On other devices the whole batch is one chunk.
PAIR_CHUNK = 1 << 19

_silu = torch.nn.functional.silu
_silu_bw = torch.ops.aten.silu_backward


def _chunks(B: int, N: int, nf: int, device: torch.device) -> list[slice]:
    if device.type != "cpu":
        return [slice(0, B)]
    c = max(1, PAIR_CHUNK // max(1, N * N * nf))
    return [slice(i, min(i + c, B)) for i in range(0, B, c)]


def _linear2d(a: Tensor, W: Tensor, b: Optional[Tensor]) -> Tensor:
    return a @ W.t() if b is None else torch.addmm(b, a, W.t())


class _PairWeights:
    """The first two layers of a pair MLP, with the first layer's weight split into
    the :math:`h_i`, :math:`h_j` and :math:`e_{ij}` blocks."""

    def __init__(self, h: Tensor, W1: Tensor, b1: Optional[Tensor], W2: Tensor,
                 b2: Optional[Tensor]):
        B, N, nf = h.shape
        self.nf = nf
        self.W1, self.b1, self.W2, self.b2 = W1, b1, W2, b2
        h2 = h.reshape(B * N, nf)
        # Node-level parts of the first layer (computed once for all pairs).
        self.hi = _linear2d(h2, W1[:, :nf], b1).view(B, N, -1)
        self.hj = (h2 @ W1[:, nf : 2 * nf].t()).view(B, N, -1)
        self.We_t = W1[:, 2 * nf :].t()

    def forward(self, e: Tensor, sl: slice) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(pre1, a1, pre2, a2)`` of the pairs of molecules ``sl``, each
        ``[P, F]`` with ``P = c N N``."""
        hi, hj = self.hi[sl], self.hj[sl]
        c, N, F = hi.shape
        P = c * N * N
        pre1 = (hi.unsqueeze(2) + hj.unsqueeze(1)).view(P, F)
        pre1.addmm_(e[sl].reshape(P, -1), self.We_t)
        a1 = _silu(pre1)
        pre2 = _linear2d(a1, self.W2, self.b2)
        return pre1, a1, pre2, _silu(pre2)


class _PairGrads:
    """Accumulators of the pair-MLP gradients over chunks."""

    def __init__(self, pw: _PairWeights, e: Tensor, need_e: bool):
        B, N, F = pw.hi.shape
        self.pw = pw
        self.gi = pw.hi.new_empty(B, N, F)
        self.gj = pw.hi.new_empty(B, N, F)
        self.gW2 = torch.zeros_like(pw.W2)
        self.gb2 = torch.zeros(F, dtype=pw.W2.dtype, device=pw.W2.device)
        self.gWe = torch.zeros_like(pw.We_t)
        self.ge = torch.empty_like(e) if need_e else None

    def add(self, ga2: Tensor, e: Tensor, sl: slice, pre1: Tensor, a1: Tensor,
            pre2: Tensor) -> None:
        """Back-propagate ``ga2`` (``[P, F]``, overwritten) through the chunk ``sl``."""
        pw = self.pw
        c, N, F = pw.hi[sl].shape
        P = c * N * N
        g2 = _silu_bw.grad_input(ga2, pre2, grad_input=ga2)
        self.gW2.addmm_(g2.t(), a1)
        self.gb2 += g2.sum(0)
        g1 = g2 @ pw.W2
        _silu_bw.grad_input(g1, pre1, grad_input=g1)
        g14 = g1.view(c, N, N, F)
        torch.sum(g14, 2, out=self.gi[sl])
        torch.sum(g14, 1, out=self.gj[sl])
        e2 = e[sl].reshape(P, -1)
        self.gWe.addmm_(e2.t(), g1)
        if self.ge is not None:
            self.ge[sl] = (g1 @ pw.We_t.t()).view(e[sl].shape)

    def finish(self, h: Tensor, need_h: bool):
        """``(g_h, g_W1, g_b1, g_W2, g_b2)``."""
        pw = self.pw
        B, N, F = self.gi.shape
        h2 = h.reshape(B * N, -1)
        gi, gj = self.gi.view(B * N, F), self.gj.view(B * N, F)
        gW1 = torch.cat([gi.t() @ h2, gj.t() @ h2, self.gWe.t()], dim=1)
        gb1 = gi.sum(0) if pw.b1 is not None else None
        gh = None
        if need_h:
            nf = pw.nf
            gh = (gi @ pw.W1[:, :nf] + gj @ pw.W1[:, nf : 2 * nf]).view(B, N, nf)
        return gh, gW1, gb1, self.gW2, (self.gb2 if pw.b2 is not None else None)


class _EdgeAggregate(torch.autograd.Function):
    r""":math:`M_i = \sum_j g_{ij}\, m_{ij}` with :math:`m_{ij}` the edge MLP
    (two SiLU layers) and :math:`g_{ij} = \operatorname{sigmoid}(w^\top m_{ij} + b)
    \cdot \mathrm{edge\_mask}_{ij}` (or the edge mask alone without attention).

    The pair tensors are computed in chunks of molecules that fit in the L2 cache and
    are never stored: the backward recomputes them chunk by chunk (only the gates,
    ``[B, N, N]``, are kept)."""

    @staticmethod
    def forward(ctx, h, e, emask, W1, b1, W2, b2, watt, batt):
        B, N, _ = h.shape
        pw = _PairWeights(h, W1, b1, W2, b2)
        F = pw.hi.shape[-1]
        agg = h.new_empty(B, N, F)
        em = emask.reshape(B, N, N)
        s_all = h.new_empty(B, N, N) if watt is not None else None
        for sl in _chunks(B, N, F, h.device):
            a2 = pw.forward(e, sl)[3]
            c = a2.shape[0] // (N * N)
            if watt is not None:
                logit = torch.mv(a2, watt[0])
                if batt is not None:
                    logit += batt
                s = torch.sigmoid(logit).view(c, N, N)
                s_all[sl] = s
                g = s * em[sl]
            else:
                g = em[sl]
            agg[sl] = torch.bmm(g.reshape(c * N, 1, N), a2.view(c * N, N, F)).view(
                c, N, F
            )
        ctx.save_for_backward(h, e, emask, W1, b1, W2, b2, watt, batt, s_all)
        return agg

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gagg):
        h, e, emask, W1, b1, W2, b2, watt, batt, s_all = ctx.saved_tensors
        B, N, _ = h.shape
        pw = _PairWeights(h, W1, b1, W2, b2)
        F = pw.hi.shape[-1]
        acc = _PairGrads(pw, e, ctx.needs_input_grad[1])
        em = emask.reshape(B, N, N)
        gagg = gagg.contiguous()
        gwatt = torch.zeros_like(watt) if watt is not None else None
        gbatt = torch.zeros_like(batt) if batt is not None else None
        for sl in _chunks(B, N, F, h.device):
            pre1, a1, pre2, a2 = pw.forward(e, sl)
            c = a2.shape[0] // (N * N)
            ga = gagg[sl].reshape(c * N, 1, F)
            if watt is not None:
                s = s_all[sl]
                g = s * em[sl]
                dg = torch.bmm(a2.view(c * N, N, F), ga.transpose(1, 2)).view(c, N, N)
                dlogit = dg * g * (1 - s)
                gwatt[0] += torch.mv(a2.t(), dlogit.reshape(-1))
                if gbatt is not None:
                    gbatt += dlogit.sum()
                coef = torch.stack([g, dlogit], dim=-1).view(c * N, N, 2)
                rhs = torch.cat([ga, watt.view(1, 1, F).expand(c * N, 1, F)], dim=1)
                ga2 = torch.bmm(coef, rhs).view(-1, F)
            else:
                ga2 = torch.bmm(em[sl].reshape(c * N, N, 1), ga).view(-1, F)
            acc.add(ga2, e, sl, pre1, a1, pre2)
        gh, gW1, gb1, gW2, gb2 = acc.finish(h, ctx.needs_input_grad[0])
        return gh, acc.ge, None, gW1, gb1, gW2, gb2, gwatt, gbatt


class _CoordUpdate(torch.autograd.Function):
    r""":math:`\Delta x_i = \sum_j u_{ij}\, c_{ij}\, \mathrm{edge\_mask}_{ij}` with
    :math:`c_{ij} = R \tanh(w^\top \phi(h_i, h_j, e_{ij}))` (or without the tanh),
    :math:`\phi` the coordinate MLP's two SiLU layers; chunked and recomputed like
    :class:`_EdgeAggregate` (only :math:`w^\top\phi`, ``[B, N, N]``, is kept)."""

    @staticmethod
    def forward(ctx, h, e, coord_diff, emask, W1, b1, W2, b2, w3, coords_range):
        B, N, _ = h.shape
        pw = _PairWeights(h, W1, b1, W2, b2)
        F = pw.hi.shape[-1]
        w_all = h.new_empty(B, N, N)
        for sl in _chunks(B, N, F, h.device):
            a2 = pw.forward(e, sl)[3]
            w_all[sl] = torch.mv(a2, w3[0]).view(w_all[sl].shape)
        coef = _coord_coef(w_all, coords_range) * emask.reshape(B, N, N)
        ctx.coords_range = coords_range
        ctx.save_for_backward(h, e, coord_diff, emask, W1, b1, W2, b2, w3, w_all)
        return (coord_diff * coef.unsqueeze(-1)).sum(dim=2)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gtrans):
        h, e, coord_diff, emask, W1, b1, W2, b2, w3, w_all = ctx.saved_tensors
        R = ctx.coords_range
        B, N, _ = h.shape
        em = emask.reshape(B, N, N)
        coef = _coord_coef(w_all, R) * em
        gt = gtrans.unsqueeze(2)
        gcd = gt * coef.unsqueeze(-1) if ctx.needs_input_grad[2] else None
        dcoef = (gt * coord_diff).sum(-1) * em
        dw = dcoef * (R * (1 - torch.tanh(w_all).pow(2))) if R is not None else dcoef
        pw = _PairWeights(h, W1, b1, W2, b2)
        F = pw.hi.shape[-1]
        acc = _PairGrads(pw, e, ctx.needs_input_grad[1])
        gw3 = torch.zeros_like(w3)
        for sl in _chunks(B, N, F, h.device):
            pre1, a1, pre2, a2 = pw.forward(e, sl)
            d = dw[sl].reshape(-1)
            gw3[0] += torch.mv(a2.t(), d)
            acc.add(torch.outer(d, w3[0]), e, sl, pre1, a1, pre2)
        gh, gW1, gb1, gW2, gb2 = acc.finish(h, ctx.needs_input_grad[0])
        return gh, acc.ge, gcd, None, gW1, gb1, gW2, gb2, gw3, None


def _coord_coef(w: Tensor, coords_range: Optional[float]) -> Tensor:
    return torch.tanh(w) * coords_range if coords_range is not None else w


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
        att = self.att_mlp[0] if self.att_mlp is not None else None
        agg = _EdgeAggregate.apply(
            h,
            e,
            edge_mask,
            self.edge_mlp[0].weight,
            self.edge_mlp[0].bias,
            self.edge_mlp[2].weight,
            self.edge_mlp[2].bias,
            att.weight if att is not None else None,
            att.bias if att is not None else None,
        )
        if self.normalization_factor != 1:
            agg = agg / self.normalization_factor
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
        lin1, lin2, lin3 = self.coord_mlp[0], self.coord_mlp[2], self.coord_mlp[4]
        agg = _CoordUpdate.apply(
            h,
            e,
            coord_diff,
            edge_mask,
            lin1.weight,
            lin1.bias,
            lin2.weight,
            lin2.bias,
            lin3.weight,
            self.coords_range if self.tanh else None,
        )
        if self.normalization_factor != 1:
            agg = agg / self.normalization_factor
        return (x + agg) * node_mask

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
