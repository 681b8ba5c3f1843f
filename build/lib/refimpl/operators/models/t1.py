r"""A Transform-Once (T1) operator on cosine coefficients (Poli et al., 2022)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from refimpl.checkpoint import register_model

from .._checks import check_positive_int, check_shape
from ..layers.channel_mlp import ChannelLinear
from ..layers.dct import dct, idct
from ..layers.grid import GridEmbedding2d
from ..layers.t1_block import T1Block2d
from .base import NeuralOperator
from .fno import _modes_pair

__all__ = ["T1"]


@register_model
class T1(NeuralOperator):
    r"""Transform once, learn in the basis, transform back once:

    .. math::
        \mathcal G_\theta(u) = \mathcal C^{-1}\Big(Q\circ\mathcal T_L\circ\dots\circ
        \mathcal T_1\circ P\big(\,\mathcal C(u)|_{m_1\times m_2}\big)\Big),

    where :math:`\mathcal C` is a 2-D discrete cosine transform (computed with the FFT,
    :func:`refimpl.operators.layers.dct.dct`), truncated to the lowest
    :math:`m_1\times m_2` coefficients, :math:`P` and :math:`Q` are channel maps on the
    coefficients, and each :math:`\mathcal T_\ell` is a :class:`T1Block2d` (channel
    mixing, separable mode mixing, :math:`\sin` on the coefficients). Weights and
    activations all live on the basis and the output is a truncated cosine series:
    a pure **functional-domain** operator. Inside the network the coefficients are
    multiplied by the constant :math:`2\sqrt{m_1m_2}` (and divided on the way out)
    so that a unit-variance field has coefficients of order one.

    The transforms are forward-normalised, so coefficients of the same function agree
    across resolutions; with ``dct_type=1`` (default) the cosines are sampled exactly
    on grids that include both walls, :math:`x_k = k/(n-1)`, the grids of
    :mod:`refimpl.pde`. This is a compact reading of T1, not the authors' code: their
    exact layer (and its parametrisation of mode mixing) is not reproduced.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        modes (int | tuple[int, int]): retained coefficients :math:`(m_1, m_2)`
            (default 16); the grid needs more than :math:`m` points per side.
        width (int): channels in the coefficient domain (default 24).
        n_layers (int): number of :class:`T1Block2d` (default 3; no activation in the
            last).
        grid (bool): append coordinate channels before the transform (default
            ``True``, as the authors' configuration).
        dct_type (int): 1 (default) or 2 (cell-centred grids).

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, H', W')`` with
        ``(H', W') = output_shape`` (default ``(H, W)``).

    Reference:
        M. Poli, S. Massaroli, F. Berto, J. Park, T. Dao, C. Ré, S. Ermon,
        *Transform Once: Efficient Operator Learning in Frequency Domain*,
        NeurIPS 2022.
    """

    family = "functional"
    extra_input_dtypes = {torch.float32: (torch.float16, torch.bfloat16)}  # run in fp32

    def __init__(self, in_channels: int, out_channels: int,
                 modes: int | Sequence[int] = 16, width: int = 24, n_layers: int = 3,
                 grid: bool = True, dct_type: int = 1) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.modes = _modes_pair(modes)
        self.width = check_positive_int(width, "width")
        self.n_layers = check_positive_int(n_layers, "n_layers")
        self.grid = bool(grid)
        if dct_type not in (1, 2):
            raise ValueError(f"dct_type must be 1 or 2, got {dct_type!r}")
        self.dct_type = dct_type
        self.embed = GridEmbedding2d(in_channels) if grid else nn.Identity()
        self.lifting = ChannelLinear(in_channels + (2 if grid else 0), width)
        self.blocks = nn.ModuleList(
            T1Block2d(width, *self.modes, activation=i < n_layers - 1)
            for i in range(n_layers))
        self.projection = ChannelLinear(width, out_channels)
        # A unit-variance field spread over the m1 x m2 retained cosines has
        # coefficients of size ~1 / (2 sqrt(m1 m2)): rescale them to O(1) inside the
        # network (and back), a grid-independent constant.
        self._scale = 2.0 * math.sqrt(self.modes[0] * self.modes[1])

    def config(self) -> dict[str, Any]:
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    modes=list(self.modes), width=self.width, n_layers=self.n_layers,
                    grid=self.grid, dct_type=self.dct_type)

    def forward(self, x: Tensor, output_shape: tuple[int, int] | None = None) -> Tensor:
        m1, m2 = self.modes
        self._check_input(x, min_size=(m1 + 1, m2 + 1))
        out_h, out_w = (x.shape[-2:] if output_shape is None
                        else check_shape(output_shape))
        if out_h <= m1 or out_w <= m2:
            raise ValueError(f"T1 output_shape {out_h}x{out_w} cannot hold "
                             f"{m1}x{m2} coefficients")
        # FFT-based transforms need float32: the whole model runs outside autocast.
        with torch.autocast(device_type=x.device.type, enabled=False):
            if x.dtype in (torch.float16, torch.bfloat16):
                x = x.float()
            x = self.embed(x)
            # Pruned analysis: transform W, keep m2 columns, then transform H.
            c = dct(x, self.dct_type, dim=-1)[..., :m2]
            c = dct(c, self.dct_type, dim=-2)[..., :m1, :]
            v = self.lifting(c * self._scale)
            for block in self.blocks:
                v = block(v)
            c_out = self.projection(v) / self._scale
            y = idct(c_out, int(out_h), self.dct_type, dim=-2)
            return idct(y, int(out_w), self.dct_type, dim=-1)
