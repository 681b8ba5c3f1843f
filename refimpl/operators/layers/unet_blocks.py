r"""Convolutional building blocks of U-Nets: residual blocks, down- and up-sampling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int

__all__ = ["ResidualBlock2d", "DownBlock2d", "UpBlock2d"]


class ResidualBlock2d(nn.Module):
    r"""Two ``3 x 3`` convolutions with a skip connection (He et al., 2016),

    .. math::
        v \mapsto \sigma\big(S v + C_2\,\sigma(C_1 v)\big),

    where :math:`S` is the identity, or a ``1 x 1`` convolution when the channel
    count changes, and :math:`\sigma` is GELU. Zero padding keeps the grid size
    (odd sizes included). The stencils live on the grid: a ``3 x 3`` kernel spans
    :math:`3h` of physical space, so the operator changes with the resolution.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.

    Shapes:
        ``(B, C_in, H, W) -> (B, C_out, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = (nn.Conv2d(in_channels, out_channels, 1)
                     if in_channels != out_channels else nn.Identity())
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.conv1.reset_parameters()
        self.conv2.reset_parameters()
        if isinstance(self.skip, nn.Conv2d):
            self.skip.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(self.skip(x) + self.conv2(F.gelu(self.conv1(x))))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}"


class DownBlock2d(nn.Module):
    r"""Halve the grid (``2 x 2`` average pooling, rounding odd sizes up) and apply a
    :class:`ResidualBlock2d`.

    Shapes:
        ``(B, C_in, H, W) -> (B, C_out, ceil(H/2), ceil(W/2))``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = ResidualBlock2d(in_channels, out_channels)

    def reset_parameters(self) -> None:
        self.block.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        x = F.avg_pool2d(x, 2, ceil_mode=True, count_include_pad=False)
        return self.block(x)


class UpBlock2d(nn.Module):
    r"""Bilinearly up-sample to the skip connection's grid, ``3 x 3`` convolution,
    concatenate the skip features and apply a :class:`ResidualBlock2d`.

    Args:
        in_channels (int): channels of the coarse input.
        skip_channels (int): channels of the skip connection.
        out_channels (int): output channels.

    Shapes:
        ``(B, C_in, h, w), (B, C_skip, H, W) -> (B, C_out, H, W)``.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up_conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.block = ResidualBlock2d(out_channels + skip_channels, out_channels)

    def reset_parameters(self) -> None:
        self.up_conv.reset_parameters()
        self.block.reset_parameters()

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear",
                          align_corners=False)
        x = F.gelu(self.up_conv(x))
        return self.block(torch.cat([x, skip], dim=1))
