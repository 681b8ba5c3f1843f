r"""Blocks of the Convolutional Neural Operator (CNO): convolutions on the grid with
activations applied on an up-sampled grid to limit aliasing."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int
from .unet_blocks import make_norm2d

__all__ = ["AntiAliasedActivation", "CNOBlock2d", "CNOResidualBlock2d",
           "resample_matrix", "resample"]

_MODES = ("bilinear", "bicubic")


@functools.lru_cache(maxsize=256)
def resample_matrix(n_in: int, n_out: int, mode: str, antialias: bool,
                    device: torch.device, dtype: torch.dtype) -> Tensor:
    """The ``(n_out, n_in)`` matrix of 1-D interpolation as done by
    :func:`torch.nn.functional.interpolate` (``align_corners=False``).

    PyTorch's bilinear/bicubic resampling (with or without anti-aliasing) is
    separable, so ``A_h @ x @ A_w.T`` reproduces ``F.interpolate(x, (h', w'))``; as
    two GEMMs it is much faster than the interpolation kernels, forward and backward,
    on a CPU. Built once per size from the interpolation of an identity matrix.
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    # Resample the rows of an identity image; its columns keep their size, which is
    # the identity map (a size-1 axis would hit a degenerate kernel path).
    eye = torch.eye(n_in, dtype=torch.float64)[None, None]
    mat = F.interpolate(eye, size=(n_out, n_in), mode=mode, align_corners=False,
                        antialias=antialias and n_out < n_in)[0, 0]
    return mat.contiguous().to(device=device, dtype=dtype)


def resample(x: Tensor, size: tuple[int, int], mode: str = "bicubic") -> Tensor:
    """Resample ``(B, C, H, W)`` to ``size`` with :func:`resample_matrix` (anti-aliased
    when shrinking): ``F.interpolate(x, size, mode, antialias=True)`` as two GEMMs."""
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    a_h = resample_matrix(h, int(size[0]), mode, True, x.device, x.dtype)
    a_w = resample_matrix(w, int(size[1]), mode, True, x.device, x.dtype)
    return torch.matmul(a_h, x @ a_w.T)


class AntiAliasedActivation(nn.Module):
    r"""The CNO activation operator (Raonić et al., 2023),

    .. math::
        \Sigma(v) = D_{\,n'}\big(\sigma(U_{2n}\, v)\big),

    where :math:`U_{2n}` interpolates the field to a grid twice as fine (bicubic by
    default), :math:`\sigma` is the leaky ReLU applied point-wise on that fine grid,
    and :math:`D_{n'}` is an anti-aliased (low-pass filtered) interpolation to the
    output grid :math:`n'`. The point-wise non-linearity creates frequencies above
    the grid's Nyquist limit; evaluating it on the finer grid and filtering on the
    way down keeps most of them from folding back as aliases. Both resamplings are
    computed as matrix products (:func:`resample`), identical to
    ``F.interpolate`` but far cheaper on a CPU.

    Args:
        negative_slope (float): slope of the leaky ReLU. Default ``0.01``.
        mode (str): ``"bicubic"`` (default) or ``"bilinear"`` interpolation.

    Shapes:
        ``(B, C, H, W) -> (B, C, H', W')`` with ``(H', W') = out_size`` (default: same).

    Reference:
        B. Raonić, R. Molinaro, T. De Ryck, T. Rohner, F. Bartolucci, R. Alaifari,
        S. Mishra, E. de Bézenac, *Convolutional Neural Operators for robust and
        accurate learning of PDEs*, NeurIPS 2023.
    """

    def __init__(self, negative_slope: float = 0.01, mode: str = "bicubic") -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        self.negative_slope = float(negative_slope)
        self.mode = mode

    def reset_parameters(self) -> None:
        """Nothing to reset (the layer has no parameters)."""

    def forward(self, x: Tensor, out_size: tuple[int, int] | None = None) -> Tensor:
        h, w = x.shape[-2:]
        out_size = (h, w) if out_size is None else tuple(int(s) for s in out_size)
        x = resample(x, (2 * h, 2 * w), self.mode)
        x = F.leaky_relu(x, self.negative_slope)
        return resample(x, out_size, self.mode)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}, mode={self.mode}"


class CNOBlock2d(nn.Module):
    r"""A ``3 x 3`` convolution, a normalisation and the anti-aliased activation,
    which also resamples to the requested grid: :math:`v \mapsto \Sigma(N(K * v))`.

    With ``norm="batch"`` (default) this is the block of the reference CNO
    (Raonić et al., 2023): convolution, ``BatchNorm2d``, activation. ``norm=None``
    drops the normalisation (the compact variant of earlier versions of this
    package).

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        mode (str): interpolation of :class:`AntiAliasedActivation`.
        norm (str | None): ``"batch"`` (default), ``"group"`` or ``None``
            (:func:`~refimpl.operators.layers.unet_blocks.make_norm2d`).

    Shapes:
        ``(B, C_in, H, W) -> (B, C_out, H', W')`` with ``(H', W') = out_size``.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 mode: str = "bicubic", norm: str | None = "batch") -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.norm_type = norm
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm = make_norm2d(norm, out_channels)
        self.activation = AntiAliasedActivation(mode=mode)

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()
        if hasattr(self.norm, "reset_parameters"):
            self.norm.reset_parameters()

    def forward(self, x: Tensor, out_size: tuple[int, int] | None = None) -> Tensor:
        return self.activation(self.norm(self.conv(x)), out_size)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, norm={self.norm_type!r}"


class CNOResidualBlock2d(nn.Module):
    r"""Residual block of the CNO,
    :math:`v \mapsto v + N_2(K_2 * \Sigma(N_1(K_1 * v)))`, with ``3 x 3`` kernels,
    the anti-aliased activation :math:`\Sigma` and two normalisations
    :math:`N_{1,2}` (``BatchNorm2d`` by default, as the reference CNO; identities
    with ``norm=None``).

    Args:
        channels (int): channels.
        mode (str): interpolation of :class:`AntiAliasedActivation`.
        norm (str | None): ``"batch"`` (default), ``"group"`` or ``None``.

    Shapes:
        ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, channels: int, mode: str = "bicubic",
                 norm: str | None = "batch") -> None:
        super().__init__()
        self.channels = check_positive_int(channels, "channels")
        self.norm_type = norm
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm1 = make_norm2d(norm, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = make_norm2d(norm, channels)
        self.activation = AntiAliasedActivation(mode=mode)

    def reset_parameters(self) -> None:
        for m in (self.conv1, self.norm1, self.conv2, self.norm2):
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        h = self.activation(self.norm1(self.conv1(x)))
        return x + self.norm2(self.conv2(h))

    def extra_repr(self) -> str:
        return f"{self.channels}, norm={self.norm_type!r}"
