r"""The Fourier Neural Operator (Li et al., ICLR 2021)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from refimpl.checkpoint import register_model

from .._checks import check_positive_int
from ..layers.channel_mlp import ChannelLinear, ChannelMLP
from ..layers.fno_block import FNOBlock2d
from ..layers.grid import grid_2d
from .base import NeuralOperator

__all__ = ["FNO", "check_padding", "padding_cells"]


def check_padding(padding: float) -> float:
    """``padding`` as a float in ``[0, 1)`` (a fraction of the grid), or a clear
    error."""
    if isinstance(padding, bool) or not isinstance(padding, (int, float)) \
            or not 0.0 <= padding < 1.0:
        raise ValueError(
            "padding is a fraction of the grid in [0, 1) (e.g. 0.125 pads 8 "
            f"cells of 64), got {padding!r}")
    return float(padding)


def padding_cells(n: int, padding: float) -> int:
    r"""Zero cells appended to an axis of ``n`` nodes for a domain padding of
    ``padding`` (a fraction): the padded axis has ``round((1 + padding) * (n - 1))``
    nodes, so its period is :math:`1 + \text{padding}` in physical units on every
    grid (walls at :math:`x_k = k/(n-1)`); at least one cell when ``padding > 0``."""
    if padding == 0.0:
        return 0
    return max(round((1.0 + padding) * (n - 1)) - n, 1)


def _modes_pair(modes: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(modes, int) and not isinstance(modes, bool):
        m = check_positive_int(modes, "modes")
        return m, m
    if isinstance(modes, (tuple, list)) and len(modes) == 2:
        return (check_positive_int(modes[0], "modes[0]"),
                check_positive_int(modes[1], "modes[1]"))
    raise ValueError(f"modes must be an int or a pair of ints, got {modes!r}")


@register_model
class FNO(NeuralOperator):
    r"""Fourier Neural Operator in its original (2021) layout,

    .. math::
        \mathcal G_\theta = Q\circ\mathcal L_L\circ\dots\circ\mathcal L_1\circ P,
        \qquad
        \mathcal L_\ell(v) = \sigma\big(\mathcal K_\ell v + W_\ell v + b_\ell\big),
        \qquad
        \mathcal K_\ell v = \mathcal F^{-1}\big(R_\ell\cdot
        (\mathcal F v)|_{\text{modes}}\big),

    with a point-wise lifting :math:`P` (input plus, optionally, the two coordinate
    channels :math:`x_1, x_2`), ``n_layers`` Fourier layers (:class:`FNOBlock2d`;
    GELU, none after the last) and a point-wise projection
    :math:`Q = W_2\,\sigma(W_1\cdot)`. The learned kernel :math:`R_\ell` lives on a
    truncated Fourier basis (functional domain); the point-wise path
    :math:`W_\ell` and the activations act on the grid, so by the three-question test
    of the book FNO is a functional-kernel hybrid, filed as ``"functional"``.

    **Resolution.** With ``norm="forward"`` FFTs, coordinates on :math:`[0,1]^2` and
    ``padding`` given as a *fraction* of the grid, the same weights define the same
    operator on every grid with :math:`H\ge2m_1`, :math:`W\ge2m_2` (zero-shot
    super-resolution). **Equivariance.** Without coordinate channels and without
    padding the model commutes exactly with periodic shifts of the grid.

    **Speed.** The lifting folds the coordinate channels into a precomputed bias
    field (no concatenation), the point-wise path is accumulated onto the spectral
    output in the same GEMM, the bias enters through the zero mode, the truncated
    Fourier transforms are GEMMs with cached DFT matrices and the spectral product is
    one mode-major batched matmul (see :class:`SpectralConv2d`).

    Args:
        in_channels (int): input channels :math:`d_a`.
        out_channels (int): output channels :math:`d_u`.
        modes (int | tuple[int, int]): Fourier modes :math:`(m_1, m_2)` kept per
            direction (``2 m_1 x m_2`` complex weights per channel pair, the original
            FNO convention; ``neuraloperator``'s ``n_modes=(2 m_1, 2 m_2 - 1)`` keeps
            the same block).
        width (int): channels :math:`d_v` of the Fourier layers.
        n_layers (int): number of Fourier layers :math:`L`.
        padding (float): zero padding on the right/bottom for non-periodic problems,
            as a fraction of the domain: on a grid of ``n`` nodes that include both
            walls (:math:`x_k = k/(n-1)`) the padded grid has
            ``round((1 + padding) * (n - 1))`` nodes, so the FFT period is
            :math:`1 + \text{padding}` in physical units on every grid (the original
            code pads 9 cells of 85, about ``0.1``). Default ``0`` (no padding).
        grid (bool): append the coordinate channels (default ``True``, as the
            original; ``False`` restores translation equivariance).
        projection_channels (int): hidden channels of :math:`Q` (default 128).

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.

    Reference:
        Z. Li, N. Kovachki, K. Azizzadenesheli, B. Liu, K. Bhattacharya, A. Stuart,
        A. Anandkumar, *Fourier Neural Operator for Parametric Partial Differential
        Equations*, ICLR 2021.
    """

    family = "functional"
    # the layers follow the input dtype
    extra_input_dtypes = {torch.float32: (torch.float64,),
                          torch.float64: (torch.float32,)}

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes: int | Sequence[int],
        width: int,
        n_layers: int,
        padding: float = 0.0,
        grid: bool = True,
        projection_channels: int = 128,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.modes = _modes_pair(modes)
        self.width = check_positive_int(width, "width")
        self.n_layers = check_positive_int(n_layers, "n_layers")
        self.padding = check_padding(padding)
        self.grid = bool(grid)
        self.projection_channels = check_positive_int(
            projection_channels, "projection_channels")
        lift_in = in_channels + (2 if grid else 0)
        self.lifting = ChannelLinear(lift_in, width)
        self.blocks = nn.ModuleList(
            FNOBlock2d(width, *self.modes, activation=i < n_layers - 1)
            for i in range(n_layers))
        self.projection = ChannelMLP(width, projection_channels, out_channels)

    def config(self) -> dict[str, Any]:
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    modes=list(self.modes), width=self.width, n_layers=self.n_layers,
                    padding=self.padding, grid=self.grid,
                    projection_channels=self.projection_channels)

    def _lift(self, x: Tensor) -> Tensor:
        if not self.grid:
            return self.lifting(x)
        b, c, h, w = x.shape
        weight = self.lifting.weight.to(x.dtype)
        # P [x; g] + b = P_x x + (P_g g + b): the coordinate part is one (width, H W)
        # field shared by the batch, added inside the GEMM instead of concatenated.
        g = grid_2d(h, w, device=x.device, dtype=x.dtype).reshape(2, h * w)
        const = torch.addmm(self.lifting.bias.to(x.dtype).unsqueeze(1),
                            weight[:, c:], g)
        out = torch.baddbmm(const.unsqueeze(0), weight[:, :c].expand(b, -1, -1),
                            x.reshape(b, c, h * w))
        return out.view(b, self.width, h, w)

    def padding_cells(self, n: int) -> int:
        """Zero cells appended to an axis of ``n`` nodes (see ``padding``)."""
        return padding_cells(n, self.padding)

    def forward(self, x: Tensor) -> Tensor:
        m1, m2 = self.modes
        self._check_input(x, min_size=(2 * m1, 2 * m2))
        h, w = x.shape[-2:]
        v = self._lift(x)
        pad_h, pad_w = self.padding_cells(h), self.padding_cells(w)
        if pad_h or pad_w:
            v = F.pad(v, (0, pad_w, 0, pad_h))
        for block in self.blocks:
            v = block(v)
        if pad_h or pad_w:
            v = v[..., :h, :w]
        return self.projection(v)
