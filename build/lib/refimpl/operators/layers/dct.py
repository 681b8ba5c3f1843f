r"""Discrete cosine transforms (types I and II) via the FFT, differentiable and on any
device.

Both are normalised "forward" (the :math:`1/N` on the analysis side), so that the
coefficients approximate the cosine-series coefficients of the underlying continuous
function and do not change with the resolution:

* **DCT-I** suits grids that include both end points, :math:`x_n = n/(N-1)` (the grids
  of :mod:`refimpl.pde`): :math:`\cos(\pi k x_n)` is then sampled exactly, and

  .. math::
      c_k = \frac{1}{2(N-1)}\Big[x_0 + (-1)^k x_{N-1}
            + 2\sum_{n=1}^{N-2} x_n \cos\frac{\pi k n}{N-1}\Big],\qquad
      x_n = c_0 + (-1)^n c_{N-1} + 2\sum_{k=1}^{N-2} c_k \cos\frac{\pi k n}{N-1}.

  It is the real part of the FFT of the even extension of length :math:`2(N-1)`.
* **DCT-II** suits cell-centred grids, :math:`x_n = (n+\frac12)/N`:

  .. math::
      c_k = \frac1N\sum_{n=0}^{N-1} x_n\cos\frac{\pi k(2n+1)}{2N},\qquad
      x_n = c_0 + 2\sum_{k=1}^{N-1} c_k\cos\frac{\pi k(2n+1)}{2N},

  computed with Makhoul's length-:math:`N` FFT reordering.

The inverses accept truncated coefficient vectors (fewer than :math:`N`): the missing
coefficients are zero, which synthesises a band-limited field on any grid.

Reference:
    J. Makhoul, *A fast cosine transform in one and two dimensions*, IEEE Trans.
    Acoust. Speech Signal Process. 28(1), 1980.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["dct", "idct", "dct_2d", "idct_2d"]


def _check_type(type: int) -> None:
    if type not in (1, 2):
        raise ValueError(f"DCT type must be 1 or 2, got {type!r}")


def dct(x: Tensor, type: int = 1, dim: int = -1) -> Tensor:
    """Forward-normalised DCT-I or DCT-II of a real tensor along ``dim``.

    Args:
        x: real tensor; the transformed dimension needs at least 2 points.
        type: 1 or 2 (see the module docstring).
        dim: the dimension to transform.

    Returns:
        the coefficients, same shape as ``x``.
    """
    _check_type(type)
    n = x.shape[dim]
    if n < 2:
        raise ValueError(f"a DCT needs at least 2 points along dim {dim}, got {n}")
    x = x.movedim(dim, -1)
    if type == 1:
        ext = torch.cat([x, x.flip(-1)[..., 1:-1]], dim=-1)
        c = torch.fft.rfft(ext, dim=-1, norm="forward").real
    else:
        v = torch.cat([x[..., ::2], x[..., 1::2].flip(-1)], dim=-1)
        k = torch.arange(n, device=x.device, dtype=x.dtype)
        phase = torch.polar(torch.ones_like(k), -math.pi * k / (2 * n))
        c = (torch.fft.fft(v, dim=-1, norm="forward") * phase).real
    return c.movedim(-1, dim)


def idct(c: Tensor, n: int, type: int = 1, dim: int = -1) -> Tensor:
    """Inverse of :func:`dct`, synthesising ``n`` grid values along ``dim``.

    Args:
        c: coefficients; if shorter than ``n`` along ``dim`` the higher ones are zero.
        n: the number of output points (at least 2, at least ``c.shape[dim]``).
        type: 1 or 2.
        dim: the dimension to transform.
    """
    _check_type(type)
    m = c.shape[dim]
    if n < 2 or m > n:
        raise ValueError(f"cannot synthesise {n} points from {m} coefficients "
                         f"(need 2 <= n and n >= number of coefficients)")
    c = c.movedim(dim, -1)
    if type == 1:
        x = torch.fft.irfft(c.to(_complex(c.dtype)), n=2 * (n - 1), dim=-1,
                            norm="forward")[..., :n]
    else:
        if m < n:
            c = torch.cat([c, c.new_zeros(*c.shape[:-1], n - m)], dim=-1)
        k = torch.arange(n, device=c.device, dtype=c.dtype)
        # W_k = c_k - i c_{N-k} (c_N = 0), V_k = W_k exp(i pi k / 2N), v = ifft(V).
        rev = torch.cat([c.new_zeros(*c.shape[:-1], 1), c[..., 1:].flip(-1)], dim=-1)
        w = torch.complex(c, -rev)
        phase = torch.polar(torch.ones_like(k), math.pi * k / (2 * n))
        v = torch.fft.ifft(w * phase, dim=-1, norm="forward").real
        half = (n + 1) // 2
        x = torch.empty_like(v)
        x[..., ::2] = v[..., :half]
        x[..., 1::2] = v[..., half:].flip(-1)
    return x.movedim(-1, dim)


def dct_2d(x: Tensor, type: int = 1) -> Tensor:
    """:func:`dct` along the last two dimensions."""
    return dct(dct(x, type, dim=-1), type, dim=-2)


def idct_2d(c: Tensor, shape: tuple[int, int], type: int = 1) -> Tensor:
    """:func:`idct` along the last two dimensions onto a ``shape = (H, W)`` grid."""
    return idct(idct(c, shape[0], type, dim=-2), shape[1], type, dim=-1)


def _complex(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64
