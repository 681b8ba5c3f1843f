r"""Point-wise (``1 x 1``) channel maps on fields of any dimension."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int

__all__ = ["ChannelLinear", "ChannelMLP"]


class ChannelLinear(nn.Module):
    r"""A linear map applied at every grid point, :math:`v(x) \mapsto W v(x) + b`.

    Equivalent to a ``1 x 1`` convolution on ``(B, C, *spatial)`` tensors, computed as
    one batched GEMM (``baddbmm`` with the bias fused) on the flattened grid, with no
    transpose of the activations.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        bias (bool): learn :math:`b`. Default ``True``.

    Shapes:
        ``(B, C_in, *spatial) -> (B, C_out, *spatial)``.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default ``nn.Linear`` initialisation."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_channels)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        """Apply the map; ``residual`` (same shape as the output) is added in the same
        GEMM (``residual + W x + b``)."""
        if x.dim() < 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects (B, {self.in_channels}, ...), "
                f"got shape {tuple(x.shape)}")
        b = x.shape[0]
        spatial = x.shape[2:]
        flat = x.reshape(b, self.in_channels, -1)
        w = self.weight
        if w.dtype != flat.dtype:
            w = w.to(flat.dtype)
        w = w.unsqueeze(0).expand(b, -1, -1)
        if residual is not None:
            base = residual.reshape(b, self.out_channels, -1)
            if self.bias is not None:
                base = base + self.bias.view(1, -1, 1)
            out = torch.baddbmm(base, w, flat)
        elif self.bias is not None:
            out = torch.baddbmm(self.bias.view(1, -1, 1).to(flat.dtype), w, flat)
        else:
            out = torch.bmm(w, flat)
        return out.view(b, self.out_channels, *spatial)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, "
                f"bias={self.bias is not None}")


class ChannelMLP(nn.Module):
    r"""A two-layer point-wise MLP, :math:`v \mapsto W_2\,\sigma(W_1 v + b_1) + b_2`,

    the lifting :math:`P` / projection :math:`Q` of neural operators.

    Args:
        in_channels (int): input channels.
        hidden_channels (int): hidden channels.
        out_channels (int): output channels.
        activation (str): ``"gelu"`` (default), ``"relu"``, ``"tanh"`` or ``"silu"``.

    Shapes:
        ``(B, C_in, *spatial) -> (B, C_out, *spatial)``.
    """

    _ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "tanh": torch.tanh, "silu": F.silu}

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 activation: str = "gelu") -> None:
        super().__init__()
        if activation not in self._ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; "
                             f"choose from {sorted(self._ACTIVATIONS)}")
        self.activation = activation
        self.fc1 = ChannelLinear(in_channels, hidden_channels)
        self.fc2 = ChannelLinear(hidden_channels, out_channels)

    def reset_parameters(self) -> None:
        self.fc1.reset_parameters()
        self.fc2.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self._ACTIVATIONS[self.activation](self.fc1(x)))

    def extra_repr(self) -> str:
        return (f"{self.fc1.in_channels} -> {self.fc1.out_channels} -> "
                f"{self.fc2.out_channels}, activation={self.activation}")
