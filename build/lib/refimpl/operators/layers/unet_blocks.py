r"""Convolutional building blocks of U-Nets: residual blocks, down- and up-sampling."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int

__all__ = ["ResidualBlock2d", "DownBlock2d", "UpBlock2d", "NORMS", "make_norm2d"]

#: Normalisation layers a U-Net block accepts (``None``: none).
NORMS: tuple[str | None, ...] = (None, "batch", "group")


def make_norm2d(norm: str | None, channels: int) -> nn.Module:
    r"""A normalisation layer for ``channels`` feature maps.

    ``"batch"``: :class:`~torch.nn.BatchNorm2d` (statistics over the batch and the
    grid, as in the U-Nets of CNO and CROP); ``"group"``:
    :class:`~torch.nn.GroupNorm` with :math:`\gcd(C, 8)` groups (statistics per
    sample, as in PDEArena's U-Nets; independent of the batch size); :obj:`None`:
    the identity.
    """
    if norm is None:
        return nn.Identity()
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "group":
        return nn.GroupNorm(math.gcd(channels, 8), channels)
    raise ValueError(f"unknown norm {norm!r}; valid: {NORMS}")


class ResidualBlock2d(nn.Module):
    r"""Two ``3 x 3`` convolutions with a skip connection (He et al., 2016),

    .. math::
        v \mapsto \sigma\big(S v + N_2 C_2\,\sigma(N_1 C_1 v)\big),

    where :math:`S` is the identity, or a ``1 x 1`` convolution when the channel
    count changes, :math:`N_{1,2}` are normalisation layers (identities by
    default) and :math:`\sigma` is GELU. Zero padding keeps the grid size
    (odd sizes included). The stencils live on the grid: a ``3 x 3`` kernel spans
    :math:`3h` of physical space, so the operator changes with the resolution.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        norm (str, optional): ``"batch"``, ``"group"`` or :obj:`None`
            (:func:`make_norm2d`). (default: :obj:`None`)

    Shapes:
        ``(B, C_in, H, W) -> (B, C_out, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 norm: str | None = None) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.norm = norm
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm1 = make_norm2d(norm, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.norm2 = make_norm2d(norm, out_channels)
        self.skip = (nn.Conv2d(in_channels, out_channels, 1)
                     if in_channels != out_channels else nn.Identity())
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in (self.conv1, self.norm1, self.conv2, self.norm2, self.skip):
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        h = F.gelu(self.norm1(self.conv1(x)))
        return F.gelu(self.skip(x) + self.norm2(self.conv2(h)))

    def extra_repr(self) -> str:
        norm = f", norm={self.norm!r}" if self.norm is not None else ""
        return f"{self.in_channels}, {self.out_channels}{norm}"


class DownBlock2d(nn.Module):
    r"""Halve the grid (``2 x 2`` average pooling, rounding odd sizes up) and apply a
    :class:`ResidualBlock2d`.

    Shapes:
        ``(B, C_in, H, W) -> (B, C_out, ceil(H/2), ceil(W/2))``.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 norm: str | None = None) -> None:
        super().__init__()
        self.block = ResidualBlock2d(in_channels, out_channels, norm)

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
        norm (str, optional): normalisation of the residual block.

    Shapes:
        ``(B, C_in, h, w), (B, C_skip, H, W) -> (B, C_out, H, W)``.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int,
                 norm: str | None = None) -> None:
        super().__init__()
        self.up_conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.block = ResidualBlock2d(out_channels + skip_channels, out_channels, norm)

    def reset_parameters(self) -> None:
        self.up_conv.reset_parameters()
        self.block.reset_parameters()

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear",
                          align_corners=False)
        x = F.gelu(self.up_conv(x))
        return self.block(torch.cat([x, skip], dim=1))
