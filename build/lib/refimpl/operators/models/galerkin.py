r"""A Galerkin transformer: linear attention over grid points (Cao, NeurIPS 2021)."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from refimpl.checkpoint import register_model

from .._checks import check_positive_int
from ..layers.attention import ATTENTION_TYPES, GalerkinEncoderLayer
from ..layers.grid import GridEmbedding2d
from .base import NeuralOperator

__all__ = ["GalerkinTransformer"]


@register_model
class GalerkinTransformer(NeuralOperator):
    r"""Galerkin transformer, softmax-free linear attention between grid points:
    every grid point is a token, and ``n_layers`` encoder layers mix them,

    .. math::
        \mathcal G_\theta(u)(x) = Q\Big(\mathcal E_L\circ\dots\circ\mathcal E_1
        \big(P\,[u(x), x]\big)\Big),\qquad
        \mathcal E_\ell(v) = v' + \mathrm{FFN}(v'),\ \ v' = v + Q_v(\widetilde K_v^\top
        \widetilde V_v)/n,

    where :math:`P` lifts the input value and the coordinates of each point to
    ``width`` features, each :math:`\mathcal E_\ell` is a
    :class:`~refimpl.operators.layers.GalerkinEncoderLayer` (Galerkin-type attention
    with layer-normalised :math:`K, V` scaled by :math:`1/n`, then a point-wise
    GELU feed-forward network) and :math:`Q` is a point-wise two-layer projection.

    **Family.** The weights (:math:`W_{Q,K,V,O}`, the feed-forward maps) act on the
    features of grid points, and every non-linearity (GELU, the layer norms) acts
    on grid values; no basis is chosen and the output is not a basis expansion.
    By the book's three questions it is a **spatial-domain** model. The attention
    *does* build functions :math:`\tilde v_j` and projects onto them, but that
    basis is computed from the input on the grid, not a set of learned
    coefficients. Because the attention is a quadrature
    :math:`\frac1n\sum_y\approx\int dy` it is defined for any number of points,
    unlike a stencil.

    **Differences from Cao's ``FourierTransformer2D``** (wave configuration of
    the paper under study: 4 layers, 64 features, 4 heads, FFN 256, dropout 0.05,
    an interpolation down/up-scaler and a spectral regressor with 16 modes): the
    decoder here is a point-wise MLP, so that the model stays a pure
    spatial-domain representative (Cao's spectral regressor would add a
    functional-domain part); there is no down/up-scaler and no dropout;
    coordinates are appended once at the input rather than to every head.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        width (int): features per point (default 32).
        n_layers (int): encoder layers (default 4).
        n_heads (int): attention heads; must divide ``width`` (default 4).
        ffn_width (int | None): hidden width of the feed-forward networks
            (default ``2 * width``).
        attention_type (str): ``"galerkin"`` (default) or ``"fourier"``.
        grid (bool): append the coordinates :math:`x` to the input (default
            ``True``; without them attention is permutation-equivariant and cannot
            tell points apart).

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.

    Reference:
        S. Cao, *Choose a Transformer: Fourier or Galerkin*, NeurIPS 2021.
    """

    family = "spatial"

    def __init__(self, in_channels: int, out_channels: int, width: int = 32,
                 n_layers: int = 4, n_heads: int = 4, ffn_width: int | None = None,
                 attention_type: str = "galerkin", grid: bool = True) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.width = check_positive_int(width, "width")
        self.n_layers = check_positive_int(n_layers, "n_layers")
        self.n_heads = check_positive_int(n_heads, "n_heads")
        if width % n_heads:
            raise ValueError(f"n_heads must divide width, got width={width} and "
                             f"n_heads={n_heads}")
        self.ffn_width = check_positive_int(
            2 * width if ffn_width is None else ffn_width, "ffn_width")
        if attention_type not in ATTENTION_TYPES:
            raise ValueError(f"attention_type must be one of {ATTENTION_TYPES}, "
                             f"got {attention_type!r}")
        self.attention_type = attention_type
        self.grid = bool(grid)
        self.embed = GridEmbedding2d(in_channels) if self.grid else nn.Identity()
        self.lifting = nn.Linear(in_channels + (2 if self.grid else 0), width)
        self.layers = nn.ModuleList(
            GalerkinEncoderLayer(width, n_heads, self.ffn_width, attention_type)
            for _ in range(n_layers))
        self.projection1 = nn.Linear(width, width)
        self.projection2 = nn.Linear(width, out_channels)

    def config(self) -> dict[str, Any]:
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    width=self.width, n_layers=self.n_layers, n_heads=self.n_heads,
                    ffn_width=self.ffn_width, attention_type=self.attention_type,
                    grid=self.grid)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x, min_size=2)
        b, _, h, w = x.shape
        v = self.embed(x).flatten(2).transpose(1, 2)  # (B, n, C) points as tokens
        v = self.lifting(v)
        for layer in self.layers:
            v = layer(v)
        out = self.projection2(F.gelu(self.projection1(v)))
        return out.transpose(1, 2).reshape(b, self.out_channels, h, w)
