r"""The Fourier layer of the FNO: a global spectral kernel plus a point-wise path."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int
from .channel_mlp import ChannelLinear
from .spectral_conv import SpectralConv2d

__all__ = ["FNOBlock2d"]


class FNOBlock2d(nn.Module):
    r"""One Fourier layer of Li et al. (2021),

    .. math::
        v_{\ell+1}(x) = \sigma\big((\mathcal K_\ell v_\ell)(x) + W_\ell v_\ell(x)
        + b_\ell\big),

    with :math:`\mathcal K_\ell` the band-limited spectral convolution
    (:class:`SpectralConv2d`), :math:`W_\ell` a point-wise channel map and
    :math:`\sigma` = GELU (or the identity for the last layer). The bias is added
    through the zero Fourier mode and :math:`W_\ell v_\ell` is accumulated onto the
    spectral output inside one GEMM, so the layer costs two FFTs, two small GEMMs
    and one activation pass.

    Args:
        width (int): channels :math:`d_v`.
        modes1 (int): retained modes per sign along ``H``.
        modes2 (int): retained modes along ``W``.
        activation (bool): apply GELU (``False`` for the last layer).

    Shapes:
        ``(B, width, H, W) -> (B, width, H, W)``.

    Reference:
        Li et al., *Fourier Neural Operator for Parametric Partial Differential
        Equations*, ICLR 2021.
    """

    def __init__(self, width: int, modes1: int, modes2: int,
                 activation: bool = True) -> None:
        super().__init__()
        self.width = check_positive_int(width, "width")
        self.activation = bool(activation)
        self.spectral = SpectralConv2d(width, width, modes1, modes2, bias=True)
        self.pointwise = ChannelLinear(width, width, bias=False)

    def reset_parameters(self) -> None:
        self.spectral.reset_parameters()
        self.pointwise.reset_parameters()

    def forward(self, v: Tensor) -> Tensor:
        out = self.pointwise(v, residual=self.spectral(v))
        return F.gelu(out) if self.activation else out

    def extra_repr(self) -> str:
        return f"activation={'gelu' if self.activation else 'none'}"
