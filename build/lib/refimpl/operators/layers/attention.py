r"""Softmax-free linear attention over the points of a discretised function
(Cao, 2021): the Galerkin- and Fourier-type attention of the Galerkin transformer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int

__all__ = ["ATTENTION_TYPES", "GalerkinAttention", "GalerkinEncoderLayer"]

#: The two normalisations of Cao (2021).
ATTENTION_TYPES = ("galerkin", "fourier")


class GalerkinAttention(nn.Module):
    r"""Multi-head, softmax-free linear attention on ``n`` points (Cao, 2021).

    With :math:`Q = vW_Q`, :math:`K = vW_K`, :math:`V = vW_V` (per head, each
    ``(n, d_h)`` for features :math:`v\in\mathbb R^{n\times d}` at the ``n`` grid
    points), the **Galerkin-type** attention of one head is

    .. math::
        \operatorname{Attn}(v) = Q\,\big(\widetilde K^{\top}\widetilde V\big)/n,
        \qquad \widetilde K = \operatorname{LN}(K),\ \widetilde V = \operatorname{LN}(V),

    and the **Fourier-type** one :math:`(\widetilde Q\widetilde K^{\top})V/n` with
    :math:`\widetilde Q=\operatorname{LN}(Q)`, :math:`\widetilde K=\operatorname{LN}(K)`.
    :math:`\operatorname{LN}` is a layer normalisation over the head's
    :math:`d_h` features with its own affine parameters per head; there is no
    softmax. Read as quadrature, entry :math:`(i, j)` of
    :math:`\widetilde K^\top\widetilde V/n` is
    :math:`\frac1n\sum_y \tilde k_i(y)\tilde v_j(y)\approx\int\tilde k_i\tilde v_j\,dy`,
    so the Galerkin head is a Petrov–Galerkin projection of :math:`Q` onto the span
    of the learned functions :math:`\tilde v_j`, and the :math:`1/n` makes it
    (approximately) independent of the number of points. Because nothing is
    inside a softmax, :math:`(\widetilde Q\widetilde K^\top)V =
    \widetilde Q(\widetilde K^\top V)` and both types cost :math:`O(n d_h^2)` per
    head; we use that order for both (Cao forms the :math:`n\times n` matrix of
    the Fourier type explicitly; the result is the same). The heads are
    concatenated and mixed by :math:`W_O`.

    Initialisation follows Cao's code: :math:`W_Q, W_K, W_V` are Xavier-uniform
    with gain ``xavier_gain`` plus ``diagonal_weight`` times the identity (a
    near-identity map that keeps the early attention small and stable).
    Cao also concatenates the point coordinates to every head's :math:`Q, K, V`;
    here coordinates enter once, at the model's input
    (:class:`~refimpl.operators.models.GalerkinTransformer`).

    Args:
        embed_dim (int): features :math:`d` per point.
        n_heads (int): heads :math:`h`; must divide ``embed_dim`` (default 4).
        attention_type (str): ``"galerkin"`` (default) or ``"fourier"``.
        xavier_gain (float): gain of the Xavier init of :math:`W_{Q,K,V}`
            (default ``1e-2``, Cao's).
        diagonal_weight (float): multiple of the identity added to
            :math:`W_{Q,K,V}` (default ``1e-2``, Cao's).
        eps (float): the layer norms' epsilon (default ``1e-5``).

    Shapes:
        ``(B, n, embed_dim) -> (B, n, embed_dim)``.

    Reference:
        S. Cao, *Choose a Transformer: Fourier or Galerkin*, NeurIPS 2021.
    """

    def __init__(self, embed_dim: int, n_heads: int = 4,
                 attention_type: str = "galerkin", xavier_gain: float = 1e-2,
                 diagonal_weight: float = 1e-2, eps: float = 1e-5) -> None:
        super().__init__()
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.n_heads = check_positive_int(n_heads, "n_heads")
        if embed_dim % n_heads:
            raise ValueError(f"n_heads must divide embed_dim, got embed_dim="
                             f"{embed_dim} and n_heads={n_heads}")
        if attention_type not in ATTENTION_TYPES:
            raise ValueError(f"attention_type must be one of {ATTENTION_TYPES}, "
                             f"got {attention_type!r}")
        self.attention_type = attention_type
        self.head_dim = embed_dim // n_heads
        self.xavier_gain = float(xavier_gain)
        self.diagonal_weight = float(diagonal_weight)
        self.eps = float(eps)
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.out = nn.Linear(embed_dim, embed_dim)
        # Per-head affine parameters of the two layer norms (flattened heads).
        self.norm_a_weight = nn.Parameter(torch.empty(embed_dim))
        self.norm_a_bias = nn.Parameter(torch.empty(embed_dim))
        self.norm_b_weight = nn.Parameter(torch.empty(embed_dim))
        self.norm_b_bias = nn.Parameter(torch.empty(embed_dim))
        heads = torch.arange(embed_dim) // self.head_dim
        self.register_buffer("_head_mask", (heads[:, None] == heads[None, :]).float(),
                             persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        d = self.embed_dim
        with torch.no_grad():
            for i in range(3):  # W_Q, W_K, W_V
                w = self.qkv.weight[i * d:(i + 1) * d]
                nn.init.xavier_uniform_(w, gain=self.xavier_gain)
                w.add_(self.diagonal_weight * torch.eye(d, dtype=w.dtype,
                                                         device=w.device))
            self.qkv.bias.zero_()
            self.out.reset_parameters()
            for w in (self.norm_a_weight, self.norm_b_weight):
                w.fill_(1.0)
            for b in (self.norm_a_bias, self.norm_b_bias):
                b.zero_()

    def _norm(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        # x: (B, n, d) with the heads side by side in d; one layer norm per head
        # (over its d_h features) with its own affine map.
        b, n, d = x.shape
        x = F.layer_norm(x.view(b, n, self.n_heads, self.head_dim), (self.head_dim,),
                         eps=self.eps).view(b, n, d)
        return torch.addcmul(bias, x, weight)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"{type(self).__name__} expects a floating-point "
                            f"tensor, got {getattr(x, 'dtype', type(x).__name__)}")
        if x.dim() != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(f"{type(self).__name__} expects (B, n, {self.embed_dim}) "
                             f"point features, got shape {tuple(x.shape)}")
        n = x.shape[1]
        q, k, v = (t.contiguous() for t in self.qkv(x).chunk(3, dim=-1))  # (B, n, d)
        if self.attention_type == "galerkin":
            k = self._norm(k, self.norm_a_weight, self.norm_a_bias)
            v = self._norm(v, self.norm_b_weight, self.norm_b_bias)
        else:
            q = self._norm(q, self.norm_a_weight, self.norm_a_bias)
            k = self._norm(k, self.norm_b_weight, self.norm_b_bias)
        # All heads at once: the (d x d) product K^T V keeps only its diagonal
        # (d_h x d_h) blocks, one per head. With d_h = d / h this costs h times the
        # flops of per-head products but needs no (B, h, n, d_h) transposes, which
        # dominate on a CPU for the small widths used here.
        context = torch.matmul(k.transpose(1, 2), v) * (self._head_mask / n)
        return self.out(torch.matmul(q, context))

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, n_heads={self.n_heads}, "
                f"attention_type={self.attention_type!r}")



class GalerkinEncoderLayer(nn.Module):
    r"""One encoder layer of the Galerkin transformer (Cao, 2021): linear attention
    and a point-wise feed-forward network, each with a residual connection,

    .. math::
        v \mapsto v + \operatorname{Attn}(v), \qquad
        v \mapsto v + W_2\,\sigma(W_1 v + b_1) + b_2,

    with :class:`GalerkinAttention` and :math:`\sigma` = GELU acting on the
    features of each point. Like Cao's Galerkin configuration there is no layer
    norm around the residual branches (the normalisation lives inside the
    attention, on :math:`K` and :math:`V`) and, unlike it, no dropout.

    Args:
        width (int): features per point.
        n_heads (int): attention heads (default 4).
        ffn_width (int | None): hidden width of the feed-forward network
            (default ``2 * width``).
        attention_type (str): ``"galerkin"`` (default) or ``"fourier"``.

    Shapes:
        ``(B, n, width) -> (B, n, width)``.
    """

    def __init__(self, width: int, n_heads: int = 4, ffn_width: int | None = None,
                 attention_type: str = "galerkin") -> None:
        super().__init__()
        self.width = check_positive_int(width, "width")
        self.ffn_width = check_positive_int(
            2 * width if ffn_width is None else ffn_width, "ffn_width")
        self.attention = GalerkinAttention(width, n_heads, attention_type)
        self.ffn1 = nn.Linear(width, self.ffn_width)
        self.ffn2 = nn.Linear(self.ffn_width, width)

    def reset_parameters(self) -> None:
        self.attention.reset_parameters()
        self.ffn1.reset_parameters()
        self.ffn2.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attention(x)
        return x + self.ffn2(F.gelu(self.ffn1(x)))

    def extra_repr(self) -> str:
        return f"width={self.width}, ffn_width={self.ffn_width}"
