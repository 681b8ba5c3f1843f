r"""A layer acting on (cosine) basis coefficients, as in Transform-Once models."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._checks import check_positive_int
from .channel_mlp import ChannelLinear

__all__ = ["T1Block2d"]


class T1Block2d(nn.Module):
    r"""One frequency-domain layer on a ``(B, C, m_1, m_2)`` block of coefficients,

    .. math::
        c \mapsto \sigma\big(W c + A^{(\cdot)}\, c\, B^{(\cdot)\top} + \beta\big),

    with :math:`W\in\mathbb R^{C\times C}` mixing channels at every mode,
    :math:`A^{(i)}\in\mathbb R^{m_1\times m_1}` and :math:`B^{(i)}\in\mathbb
    R^{m_2\times m_2}` mixing modes along each axis separately for channel :math:`i`
    (a separable dense mode mixing, initialised at the identity plus noise), a
    per-mode bias :math:`\beta\in\mathbb R^{C\times m_1\times m_2}` and
    :math:`\sigma=\sin` applied to the *coefficients* (identity for the last layer).
    Nothing here ever touches grid values: weights and non-linearities live in the
    basis, the defining trait of a transform-once model.

    Args:
        width (int): channels :math:`C`.
        modes1 (int): :math:`m_1`.
        modes2 (int): :math:`m_2`.
        activation (bool): apply :math:`\sin` (default ``True``).

    Shapes:
        ``(B, C, m_1, m_2) -> (B, C, m_1, m_2)``.

    Reference:
        M. Poli, S. Massaroli, F. Berto, J. Park, T. Dao, C. Ré, S. Ermon,
        *Transform Once: Efficient Operator Learning in Frequency Domain*,
        NeurIPS 2022.
    """

    def __init__(self, width: int, modes1: int, modes2: int,
                 activation: bool = True) -> None:
        super().__init__()
        self.width = check_positive_int(width, "width")
        self.modes1 = check_positive_int(modes1, "modes1")
        self.modes2 = check_positive_int(modes2, "modes2")
        self.activation = bool(activation)
        self.channel_mix = ChannelLinear(width, width, bias=False)
        self.mode_mix1 = nn.Parameter(torch.empty(width, modes1, modes1))
        self.mode_mix2 = nn.Parameter(torch.empty(width, modes2, modes2))
        self.bias = nn.Parameter(torch.empty(width, modes1, modes2))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.channel_mix.reset_parameters()
        with torch.no_grad():
            for p, m in ((self.mode_mix1, self.modes1), (self.mode_mix2, self.modes2)):
                p.normal_(0.0, 0.5 / math.sqrt(m))
                p.add_(torch.eye(m, dtype=p.dtype, device=p.device))
            self.bias.zero_()

    def forward(self, c: Tensor) -> Tensor:
        expected = (self.width, self.modes1, self.modes2)
        if c.dim() != 4 or tuple(c.shape[1:]) != expected:
            raise ValueError(f"{type(self).__name__} expects (B, {self.width}, "
                             f"{self.modes1}, {self.modes2}), got {tuple(c.shape)}")
        mixed = torch.matmul(torch.matmul(self.mode_mix1, c),
                             self.mode_mix2.transpose(-1, -2))
        out = self.channel_mix(c, residual=mixed + self.bias)
        return torch.sin(out) if self.activation else out

    def extra_repr(self) -> str:
        return (f"width={self.width}, modes=({self.modes1}, {self.modes2}), "
                f"activation={'sin' if self.activation else 'none'}")
