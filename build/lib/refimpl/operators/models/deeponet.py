r"""DeepONet: a convolutional branch and a coordinate MLP trunk (Lu et al., 2021)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from refimpl.checkpoint import register_model

from .._checks import check_positive_int, check_shape
from ..layers.grid import grid_2d
from .base import NeuralOperator

__all__ = ["DeepONet"]


@register_model
class DeepONet(NeuralOperator):
    r"""Deep operator network,

    .. math::
        \mathcal G_\theta(u)(y)_c = \sum_{k=1}^{p} b_{c,k}(u)\,\tau_k(y) + \beta_c,

    a **basis expansion**: the trunk :math:`\tau:[0,1]^2\to\mathbb R^p` is an MLP on
    the output coordinate :math:`y` (a learned basis, evaluated at any point), the
    branch :math:`b(u)\in\mathbb R^{C\times p}` computes the coefficients from the
    input function, and :math:`\beta_c` is a bias. It is a **functional-domain**
    model in the book's taxonomy: the output is assembled from basis functions.

    * **Branch.** The classical DeepONet reads :math:`u` at fixed sensors. Here the
      input is resampled (bilinear, anti-aliased, corners aligned as the grids of
      :mod:`refimpl.pde` include the walls) to a fixed ``sensors x sensors`` grid,
      then a CNN (a ``3 x 3`` convolution, ``n_down`` stride-2 convolutions
      doubling the channels, GELU) and a linear layer give the :math:`C p`
      coefficients. Any input resolution is accepted.
    * **Trunk.** Coordinates are embedded with deterministic Fourier features
      :math:`(y,\ \cos(\pi k y_d),\ \sin(\pi k y_d))_{k\le F}` and passed through
      ``trunk_layers`` GELU layers of width ``trunk_width``; the output at any
      resolution is one matrix product :math:`b\,\tau(Y)^\top`.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels :math:`C`.
        n_basis (int): number of basis functions :math:`p` (default 64).
        width (int): channels of the first branch convolution (default 16).
        n_down (int): stride-2 convolutions of the branch (default 3).
        sensors (int): side of the sensor grid the input is resampled to (default 32).
        trunk_width (int): width of the trunk MLP (default 128).
        trunk_layers (int): hidden layers of the trunk MLP (default 4).
        n_frequencies (int): Fourier features per coordinate, :math:`F` (default 8).

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, H', W')``, with
        ``(H', W') = output_shape`` (default ``(H, W)``).

    Reference:
        L. Lu, P. Jin, G. Pang, Z. Zhang, G. E. Karniadakis, *Learning nonlinear
        operators via DeepONet based on the universal approximation theorem of
        operators*, Nature Machine Intelligence 3, 2021.
    """

    family = "functional"

    def __init__(self, in_channels: int, out_channels: int, n_basis: int = 64,
                 width: int = 16, n_down: int = 3, sensors: int = 32,
                 trunk_width: int = 128, trunk_layers: int = 4,
                 n_frequencies: int = 8) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.n_basis = check_positive_int(n_basis, "n_basis")
        self.width = check_positive_int(width, "width")
        self.n_down = check_positive_int(n_down, "n_down", minimum=0)
        self.sensors = check_positive_int(sensors, "sensors", minimum=2)
        self.trunk_width = check_positive_int(trunk_width, "trunk_width")
        self.trunk_layers = check_positive_int(trunk_layers, "trunk_layers")
        self.n_frequencies = check_positive_int(n_frequencies, "n_frequencies",
                                                minimum=0)
        convs = [nn.Conv2d(in_channels, width, 3, padding=1)]
        channels = width
        for _ in range(n_down):
            convs.append(nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1))
            channels *= 2
        self.branch_convs = nn.ModuleList(convs)
        side = sensors
        for _ in range(n_down):
            side = (side + 1) // 2
        self.branch_head = nn.Linear(channels * side * side, out_channels * n_basis)
        trunk_in = 2 + 4 * n_frequencies
        dims = [trunk_in] + [trunk_width] * trunk_layers
        self.trunk_hidden = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.trunk_out = nn.Linear(trunk_width, n_basis)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("frequencies",
                             math.pi * torch.arange(1, n_frequencies + 1,
                                                    dtype=torch.float32),
                             persistent=False)

    def config(self) -> dict[str, Any]:
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    n_basis=self.n_basis, width=self.width, n_down=self.n_down,
                    sensors=self.sensors, trunk_width=self.trunk_width,
                    trunk_layers=self.trunk_layers, n_frequencies=self.n_frequencies)

    @property
    def fixed_input_grid(self) -> tuple[int, int]:
        """The sensor grid the branch reads (any input is resampled to it)."""
        return (self.sensors, self.sensors)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        with torch.no_grad():
            self.bias.zero_()

    # ----------------------------------------------------------------- parts
    def resample_input(self, u: Tensor) -> Tensor:
        """The input at the sensors: resampled (bilinear, anti-aliased when
        shrinking, corners aligned) to ``sensors x sensors`` unless already there."""
        if tuple(u.shape[-2:]) == (self.sensors, self.sensors):
            return u
        down = u.shape[-2] > self.sensors or u.shape[-1] > self.sensors
        return F.interpolate(u, size=(self.sensors, self.sensors), mode="bilinear",
                             align_corners=True, antialias=down)

    def branch(self, u: Tensor) -> Tensor:
        """Coefficients :math:`b(u)`, shape ``(B, out_channels, n_basis)``."""
        u = self.resample_input(u)
        v = u
        for conv in self.branch_convs:
            v = F.gelu(conv(v))
        coeff = self.branch_head(v.flatten(1))
        return coeff.view(u.shape[0], self.out_channels, self.n_basis)

    def trunk(self, y: Tensor) -> Tensor:
        r"""Basis functions :math:`\tau(y)` at points ``y`` of shape ``(N, 2)``,
        returned as ``(N, n_basis)``."""
        if y.dim() != 2 or y.shape[-1] != 2:
            raise ValueError(f"trunk expects coordinates of shape (N, 2), got "
                             f"{tuple(y.shape)}")
        f = self.frequencies.to(y.dtype)
        phase = (y.unsqueeze(-1) * f).flatten(1)  # (N, 2F)
        h = torch.cat([y, torch.cos(phase), torch.sin(phase)], dim=-1)
        for layer in self.trunk_hidden:
            h = F.gelu(layer(h))
        return F.gelu(self.trunk_out(h))

    def forward(self, x: Tensor, output_shape: tuple[int, int] | None = None) -> Tensor:
        self._check_input(x, min_size=2)
        out_h, out_w = (x.shape[-2:] if output_shape is None
                        else check_shape(output_shape))
        if out_h < 2 or out_w < 2:
            raise ValueError(f"DeepONet output_shape must be at least 2x2, got "
                             f"{out_h}x{out_w}")
        coeff = self.branch(x)  # (B, C, p)
        y = grid_2d(int(out_h), int(out_w), device=x.device, dtype=coeff.dtype)
        tau = self.trunk(y.flatten(1).T)  # (H W, p)
        out = torch.matmul(coeff, tau.T) + self.bias.view(1, -1, 1)
        return out.view(x.shape[0], self.out_channels, int(out_h), int(out_w))
