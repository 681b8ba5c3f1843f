r"""Coordinate (positional) channels for operators on the unit square."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_field

__all__ = ["grid_2d", "GridEmbedding2d"]


def grid_2d(
    height: int,
    width: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    r"""The normalised coordinates of an ``height x width`` grid on :math:`[0,1]^2`.

    Node :math:`(i, j)` sits at :math:`(x_1, x_2) = (i/(H-1),\, j/(W-1))`, i.e.
    ``linspace(0, 1, n)`` with both end points, the convention of the wave and Darcy
    data of :mod:`refimpl.pde`. Any resolution maps onto the same physical square,
    which is what makes coordinate inputs resolution-independent.

    Returns:
        ``(2, H, W)``: channel 0 is :math:`x_1` (varies along ``H``), channel 1 is
        :math:`x_2` (varies along ``W``).
    """
    if height < 2 or width < 2:
        raise ValueError(f"a coordinate grid needs at least 2x2 points, "
                         f"got {height}x{width}")
    x1 = torch.linspace(0.0, 1.0, height, device=device, dtype=dtype)
    x2 = torch.linspace(0.0, 1.0, width, device=device, dtype=dtype)
    g1, g2 = torch.meshgrid(x1, x2, indexing="ij")
    return torch.stack([g1, g2], dim=0)


class GridEmbedding2d(nn.Module):
    r"""Append the two coordinate channels of :func:`grid_2d` to a field,

    .. math:: v(x) \mapsto \big(v(x),\ x_1,\ x_2\big).

    The coordinates break translation equivariance on purpose: they let a
    convolutional or spectral operator learn position-dependent behaviour (walls).

    Args:
        in_channels (int | None): expected input channels (``None``: any).

    Shapes:
        ``(B, C, H, W) -> (B, C + 2, H, W)``.
    """

    def __init__(self, in_channels: int | None = None) -> None:
        super().__init__()
        self.in_channels = in_channels

    @property
    def out_channels(self) -> int | None:
        return None if self.in_channels is None else self.in_channels + 2

    def reset_parameters(self) -> None:
        """Nothing to reset (the layer has no parameters)."""

    def forward(self, x: Tensor) -> Tensor:
        check_field(x, owner=type(self).__name__, channels=self.in_channels,
                    spatial_dims=2, min_size=2)
        b, _, h, w = x.shape
        grid = grid_2d(h, w, device=x.device, dtype=x.dtype)
        return torch.cat([x, grid.unsqueeze(0).expand(b, -1, -1, -1)], dim=1)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}"
