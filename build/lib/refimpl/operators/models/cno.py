r"""A compact Convolutional Neural Operator (Raonić et al., NeurIPS 2023)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from refimpl.checkpoint import register_model

from .._checks import check_positive_int
from ..layers.cno_blocks import CNOBlock2d, CNOResidualBlock2d
from ..layers.unet_blocks import NORMS
from .base import NeuralOperator

__all__ = ["CNO"]


def _resample(x: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    down = x.shape[-2] > size[0] or x.shape[-1] > size[1]
    return F.interpolate(x, size=size, mode=mode, align_corners=True, antialias=down)


@register_model
class CNO(NeuralOperator):
    r"""Convolutional Neural Operator, a U-Net of stencils and anti-aliased activations:
    each block is a ``3 x 3`` convolution, a batch normalisation and an
    anti-aliased activation,

    .. math::
        \mathcal G_\theta = P\circ\mathcal U\circ L, \qquad
        \text{block}(v) = D_{n'}\,\sigma\big(U_{2n}\,\mathrm{BN}(K * v)\big),

    where :math:`K*` is a ``3 x 3`` convolution, :math:`\mathrm{BN}` a
    ``BatchNorm2d``, :math:`U_{2n}` up-samples to twice
    the grid, :math:`\sigma` is a leaky ReLU and :math:`D_{n'}` down-samples with a
    low-pass filter to the block's output grid (:class:`CNOBlock2d`). The encoder
    halves the grid and doubles the channels ``depth`` times, the skips pass through
    ``n_res`` residual blocks, the bottleneck through ``n_res_neck``, and the decoder
    up-samples and concatenates the skips. Weights are grid stencils and activations
    act on (up-sampled) grid values: a **spatial-domain** operator.

    **Normalisation.** ``norm="batch"`` (default) follows the reference CNO
    (``CNOModule.py`` of ``camlab-ethz/ConvolutionalNeuralOperator``): every block
    is convolution → ``BatchNorm2d`` → activation and every residual block
    :math:`v + \mathrm{BN}_2(K_2 * \Sigma(\mathrm{BN}_1(K_1 * v)))` has two batch
    norms (:class:`CNOResidualBlock2d`). ``norm=None`` is the earlier compact
    variant without normalisation; ``"group"`` uses per-sample group norms. As for
    any batch-normalised model, evaluate in ``eval()`` mode (running statistics).
    The lifting (one CNO block) and projection (one ``3 x 3`` convolution) are
    simpler than the reference's lift/project blocks.

    **Resolution.** A stencil spans a fixed number of cells. CNO therefore defines
    its operator on one *latent* grid: with ``latent_resolution=n`` any input is
    resampled (bicubic, anti-aliased) to :math:`n\times n` and the output back to
    the input grid, as in the published model. With ``latent_resolution=None`` the
    network runs on the input grid directly (a plain anti-aliased U-Net).

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        width (int): channels of the lifted field (level :math:`\ell` has
            ``width * 2**l``). Default 16.
        depth (int): down-sampling levels (default 2).
        n_res (int): residual blocks on each skip connection (default 1).
        n_res_neck (int): residual blocks in the bottleneck (default 2).
        latent_resolution (int | None): side of the latent grid (default ``None``).
        mode (str): ``"bicubic"`` (default, as published) or ``"bilinear"``.
        norm (str | None): ``"batch"`` (default, as the reference CNO),
            ``"group"`` or ``None`` (no normalisation).

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, H', W')`` with
        ``(H', W') = output_shape`` (default ``(H, W)``).

    Reference:
        B. Raonić, R. Molinaro, T. De Ryck, T. Rohner, F. Bartolucci, R. Alaifari,
        S. Mishra, E. de Bézenac, *Convolutional Neural Operators for robust and
        accurate learning of PDEs*, NeurIPS 2023.
    """

    family = "spatial"

    def __init__(self, in_channels: int, out_channels: int, width: int = 16,
                 depth: int = 2, n_res: int = 1, n_res_neck: int = 2,
                 latent_resolution: int | None = None, mode: str = "bicubic",
                 norm: str | None = "batch") -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.width = check_positive_int(width, "width")
        self.depth = check_positive_int(depth, "depth", minimum=0)
        self.n_res = check_positive_int(n_res, "n_res", minimum=0)
        self.n_res_neck = check_positive_int(n_res_neck, "n_res_neck", minimum=0)
        if latent_resolution is not None:
            latent_resolution = check_positive_int(
                latent_resolution, "latent_resolution", minimum=max(2, 2**depth))
        self.latent_resolution = latent_resolution
        self.mode = mode
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.norm = norm
        kw = dict(mode=mode, norm=norm)
        widths = [width * 2**level for level in range(depth + 1)]
        self.lift = CNOBlock2d(in_channels, width, **kw)
        self.encoder = nn.ModuleList(
            CNOBlock2d(widths[i], widths[i + 1], **kw) for i in range(depth))
        self.skips = nn.ModuleList(
            nn.Sequential(*(CNOResidualBlock2d(widths[i], **kw)
                            for _ in range(n_res)))
            for i in range(depth))
        self.neck = nn.Sequential(*(CNOResidualBlock2d(widths[depth], **kw)
                                    for _ in range(n_res_neck)))
        self.decoder_up = nn.ModuleList(
            CNOBlock2d(widths[i + 1], widths[i], **kw) for i in range(depth))
        self.decoder_mix = nn.ModuleList(
            CNOBlock2d(2 * widths[i], widths[i], **kw) for i in range(depth))
        self.project = nn.Conv2d(width, out_channels, 3, padding=1)

    def config(self) -> dict[str, Any]:
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    width=self.width, depth=self.depth, n_res=self.n_res,
                    n_res_neck=self.n_res_neck,
                    latent_resolution=self.latent_resolution, mode=self.mode,
                    norm=self.norm)

    @property
    def fixed_input_grid(self) -> tuple[int, int] | None:
        """The latent grid (``None`` without one)."""
        if self.latent_resolution is None:
            return None
        return (self.latent_resolution, self.latent_resolution)

    def resample_input(self, x: Tensor) -> Tensor:
        """The input as the stencils see it: resampled to the latent grid (bicubic
        or bilinear, anti-aliased when shrinking), or unchanged without one."""
        if self.latent_resolution is None:
            return x
        return _resample(x, (self.latent_resolution,) * 2, self.mode)

    def forward(self, x: Tensor, output_shape: tuple[int, int] | None = None) -> Tensor:
        """Map ``x`` to the output on ``output_shape`` (default: the input's grid).
        A different ``output_shape`` needs a latent grid (the output is resampled
        from it); without one the output lives on the input grid."""
        self._check_input(x, min_size=max(2, 2**self.depth))
        size = tuple(x.shape[-2:]) if output_shape is None else tuple(
            int(s) for s in output_shape)
        if self.latent_resolution is None and size != tuple(x.shape[-2:]):
            raise ValueError(f"CNO output_shape {size} differs from the input grid "
                             f"{tuple(x.shape[-2:])}; that needs latent_resolution")
        x = self.resample_input(x)
        sizes = [tuple(x.shape[-2:])]
        for _ in range(self.depth):
            sizes.append(tuple((s + 1) // 2 for s in sizes[-1]))
        v = self.lift(x, sizes[0])
        skips = []
        for level, (block, skip) in enumerate(zip(self.encoder, self.skips)):
            skips.append(skip(v))
            v = block(v, sizes[level + 1])
        v = self.neck(v)
        for level in reversed(range(self.depth)):
            v = self.decoder_up[level](v, sizes[level])
            v = self.decoder_mix[level](torch.cat([v, skips[level]], dim=1),
                                        sizes[level])
        out = self.project(v)
        if self.latent_resolution is not None:
            out = _resample(out, size, self.mode)
        return out
