r"""A residual U-Net (Ronneberger et al., 2015), the spatial-domain baseline."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from refimpl.checkpoint import register_model

from .._checks import check_positive_int
from ..layers.grid import GridEmbedding2d
from ..layers.unet_blocks import DownBlock2d, ResidualBlock2d, UpBlock2d
from .base import NeuralOperator

__all__ = ["UNet"]


@register_model
class UNet(NeuralOperator):
    r"""U-Net with residual blocks,

    .. math::
        \mathcal G_\theta = Q\circ \mathcal D_1\circ\dots\circ\mathcal D_L\circ
        \mathcal E_L\circ\dots\circ\mathcal E_1\circ R_0,

    where each encoder level :math:`\mathcal E_\ell` halves the grid and doubles the
    channels (average pooling + :class:`ResidualBlock2d`), each decoder level
    :math:`\mathcal D_\ell` up-samples, concatenates the skip features of the same
    level and applies a residual block, and :math:`Q` is a ``1 x 1`` convolution.
    Every weight is a ``3 x 3`` stencil on the grid and every activation acts on grid
    values: a **spatial-domain** operator. Its receptive field is hierarchical
    (about :math:`3\cdot 2^{L+1}` cells), fixed in *grid cells*, so the physical
    operator it represents changes when the resolution changes. Odd sizes are
    supported (pooling rounds up, up-sampling returns to the skip's size).

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        width (int): channels of the finest level (level :math:`\ell` has
            ``width * 2**l``).
        depth (int): number of down-sampling levels :math:`L` (default 3).
        grid (bool): append coordinate channels (default ``False``).
        norm (str | None): normalisation inside every residual block,
            ``"batch"`` (BatchNorm, as in the U-Net baselines of CNO and CROP),
            ``"group"`` (GroupNorm, as in PDEArena) or ``None`` (default).

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, H, W)``, ``H, W >= 2**depth``.

    Reference:
        O. Ronneberger, P. Fischer, T. Brox, *U-Net: Convolutional Networks for
        Biomedical Image Segmentation*, MICCAI 2015.
    """

    family = "spatial"

    def __init__(self, in_channels: int, out_channels: int, width: int,
                 depth: int = 3, grid: bool = False, norm: str | None = None) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.width = check_positive_int(width, "width")
        self.depth = check_positive_int(depth, "depth", minimum=0)
        self.grid = bool(grid)
        self.norm = norm
        self.embed = GridEmbedding2d(in_channels) if grid else nn.Identity()
        widths = [width * 2**level for level in range(depth + 1)]
        self.stem = ResidualBlock2d(in_channels + (2 if grid else 0), width, norm)
        self.down = nn.ModuleList(
            DownBlock2d(widths[i], widths[i + 1], norm) for i in range(depth))
        self.up = nn.ModuleList(
            UpBlock2d(widths[i + 1], widths[i], widths[i], norm)
            for i in reversed(range(depth)))
        self.head = nn.Conv2d(width, out_channels, 1)

    def config(self) -> dict[str, Any]:
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    width=self.width, depth=self.depth, grid=self.grid,
                    norm=self.norm)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x, min_size=max(2, 2**self.depth))
        v = self.stem(self.embed(x))
        skips = []
        for down in self.down:
            skips.append(v)
            v = down(v)
        for up, skip in zip(self.up, reversed(skips)):
            v = up(v, skip)
        return self.head(v)
