r"""The plain-autograd formulation of EDM's EGNN (the definition the fast
:class:`~refimpl.diffusion.egnn.EGNNDynamics` is tested against).

:func:`egnn_reference_forward` evaluates a :class:`~refimpl.diffusion.egnn.EGNNDynamics`
with its own parameters exactly as the first implementation of this package did:
every pair MLP through ``nn.Sequential`` on ``[B, N, N, nf]`` tensors, the attention
gate and the edge mask multiplied into the messages, and the neighbour sum as a
reduction; PyTorch's autograd differentiates it. It is kept (not used in training
or sampling) so that

* ``tests/diffusion/test_diffusion_egnn.py`` checks that the fused forward and
  hand-written backward of :mod:`refimpl.diffusion.egnn` compute the same function and
  the same gradients (to 1e-6 in float64), and
* ``benchmarks/egnn_step.py`` can time the two in one process.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .subspace import center

__all__ = ["egnn_reference_forward"]


def _pair_mlp(mlp: nn.Sequential, h: Tensor, e: Tensor) -> Tensor:
    first: nn.Linear = mlp[0]
    nf = h.shape[-1]
    W = first.weight
    hi = h @ W[:, :nf].T
    hj = h @ W[:, nf : 2 * nf].T
    pre = hi.unsqueeze(2) + hj.unsqueeze(1) + e @ W[:, 2 * nf :].T
    if first.bias is not None:
        pre = pre + first.bias
    return mlp[1:](pre)


def _gcl(gcl, h: Tensor, e: Tensor, node_mask: Tensor, edge_mask: Tensor) -> Tensor:
    m = _pair_mlp(gcl.edge_mlp, h, e)
    if gcl.att_mlp is not None:
        m = m * gcl.att_mlp(m)
    agg = (m * edge_mask).sum(dim=2) / gcl.normalization_factor
    h = h + gcl.node_mlp(torch.cat([h, agg], dim=-1))
    return h * node_mask


def _update(upd, h, x, e, coord_diff, node_mask, edge_mask) -> Tensor:
    w = _pair_mlp(upd.coord_mlp, h, e)
    w = torch.tanh(w) * upd.coords_range if upd.tanh else w
    trans = coord_diff * w * edge_mask
    x = x + trans.sum(dim=2) / upd.normalization_factor
    return x * node_mask


def _block(block, h, x, a, node_mask, edge_mask):
    diff = x.unsqueeze(2) - x.unsqueeze(1)
    d = diff.pow(2).sum(dim=-1, keepdim=True)
    coord_diff = diff / (torch.sqrt(d + 1e-8) + block.norm_constant)
    e = torch.cat([d, a], dim=-1)
    for gcl in block.gcls:
        h = _gcl(gcl, h, e, node_mask, edge_mask)
    x = _update(block.update, h, x, e, coord_diff, node_mask, edge_mask)
    return h * node_mask, x


def egnn_reference_forward(
    net,
    x: Tensor,
    h: Tensor,
    t: Tensor,
    node_mask: Tensor,
    edge_mask: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor]:
    """``net(x, h, t, node_mask, edge_mask)`` in the plain-autograd formulation
    (``net`` an :class:`~refimpl.diffusion.egnn.EGNNDynamics`)."""
    B, N, _ = x.shape
    if edge_mask is None:
        eye = torch.eye(N, device=x.device, dtype=x.dtype)
        edge_mask = (node_mask @ node_mask.transpose(1, 2) * (1 - eye)).unsqueeze(-1)
    t = torch.as_tensor(t, device=x.device, dtype=x.dtype).reshape(-1)
    if t.numel() == 1:
        t = t.expand(B)
    x0, h = x * node_mask, h * node_mask
    a = (x0.unsqueeze(2) - x0.unsqueeze(1)).pow(2).sum(dim=-1, keepdim=True)
    feat = net.embedding(torch.cat([h, t.view(B, 1, 1).expand(B, N, 1)], dim=-1))
    xx = x0
    for block in net.blocks:
        feat, xx = _block(block, feat, xx, a, node_mask, edge_mask)
    out = net.embedding_out(feat) * node_mask
    eps_h = out[..., : net.num_features]
    eps_x = center((xx - x0) * node_mask, node_mask, validate=False)
    if net.center_h:
        eps_h = center(eps_h, node_mask, validate=False)
    return eps_x, eps_h
