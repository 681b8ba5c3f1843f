r"""Band-limited spectral convolutions (the kernel integral operator of the FNO).

The layers multiply the lowest Fourier modes of the input by learnable complex
matrices and discard the rest. The product is computed *mode-major*: the retained
coefficients are laid out as a contiguous ``(modes, B, C_in)`` tensor and multiplied
by the ``(modes, C_in, C_out)`` weights with one batched matrix product, which on a
CPU is several times faster than the equivalent complex ``einsum``.

Because only a few modes are kept, the truncated transforms themselves are computed
by default as dense matrix products with cached DFT matrices (``transform="dft"``):
:math:`O(HWm)` operations instead of :math:`O(HW\log W)`, but GEMM-efficient, with
no zero-filled spectra, no slicing copies and no dependence on FFT-friendly sizes.
``transform="fft"`` uses pruned FFTs instead (better for very large grids). Both give
the same result as the textbook ``rfft2`` / ``einsum`` / ``irfft2`` path
(:meth:`SpectralConv2d.forward_reference`) to floating-point accuracy.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor, nn

from .._checks import _is_low_precision, check_field, check_positive_int, check_shape

__all__ = [
    "SpectralConv1d",
    "SpectralConv2d",
    "spectral_product_bmm",
    "spectral_product_einsum",
]


def spectral_product_bmm(x_modes: Tensor, weight: Tensor) -> Tensor:
    r"""Mode-major complex channel mixing, :math:`\hat w_k = \hat v_k R_k`.

    Args:
        x_modes: complex ``(M, B, C_in)``, one ``B x C_in`` matrix per retained mode.
        weight: complex ``(M, C_in, C_out)``.

    Returns:
        complex ``(M, B, C_out)``.
    """
    return torch.bmm(x_modes, weight)


def spectral_product_einsum(x_ft: Tensor, weight: Tensor) -> Tensor:
    r"""The textbook form of the same product, ``einsum("bixy,ioxy->boxy")``.

    Kept as the reference the fast path is tested (and benchmarked) against.

    Args:
        x_ft: complex ``(B, C_in, *modes)``.
        weight: complex ``(C_in, C_out, *modes)``.
    """
    if x_ft.dim() == 3:
        return torch.einsum("bix,iox->box", x_ft, weight)
    return torch.einsum("bixy,ioxy->boxy", x_ft, weight)


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


_TRANSFORMS = ("dft", "fft")


def _check_transform(transform: str) -> str:
    if transform not in _TRANSFORMS:
        raise ValueError(f"transform must be one of {_TRANSFORMS}, got {transform!r}")
    return transform


@functools.lru_cache(maxsize=128)
def _analysis_real(n: int, m: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """``(n, 2m)`` real matrix: ``x @ A`` gives the first ``m`` coefficients of
    ``rfft(x, norm="forward")`` with real and imaginary parts interleaved."""
    j = torch.arange(n, dtype=torch.float64)[:, None]
    k = torch.arange(m, dtype=torch.float64)[None, :]
    angle = 2 * math.pi * j * k / n
    mat = torch.stack([torch.cos(angle), -torch.sin(angle)], dim=-1) / n
    return mat.reshape(n, 2 * m).to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=128)
def _synthesis_real(m: int, n: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """``(2m, n)`` real matrix: interleaved coefficients ``@`` it equals ``irfft(c,
    n, norm="forward")`` for ``c`` holding the first ``m`` modes (``m <= n // 2``);
    the imaginary part of the zero mode is discarded, as ``irfft`` does."""
    k = torch.arange(m, dtype=torch.float64)[:, None]
    j = torch.arange(n, dtype=torch.float64)[None, :]
    angle = 2 * math.pi * k * j / n
    weight = torch.full((m, 1), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    mat = torch.stack([weight * torch.cos(angle), -weight * torch.sin(angle)], dim=1)
    mat[0, 1] = 0.0
    return mat.reshape(2 * m, n).to(device=device, dtype=dtype)


def _signed_modes(m: int) -> Tensor:
    return torch.cat([torch.arange(m), torch.arange(-m, 0)]).to(torch.float64)


@functools.lru_cache(maxsize=128)
def _analysis_complex(n: int, m: int, device: torch.device, dtype: torch.dtype
                      ) -> Tensor:
    """``(2m, n)`` complex matrix of the modes ``0..m-1, -m..-1`` of ``fft(norm=
    "forward")``."""
    k = _signed_modes(m)[:, None]
    j = torch.arange(n, dtype=torch.float64)[None, :]
    return (torch.exp(-2j * math.pi * k * j / n) / n).to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=128)
def _synthesis_complex(m: int, n: int, device: torch.device, dtype: torch.dtype
                       ) -> Tensor:
    """``(n, 2m)`` complex matrix: inverse of :func:`_analysis_complex` on ``n``
    points (``ifft(norm="forward")`` of a spectrum holding only those modes)."""
    j = torch.arange(n, dtype=torch.float64)[:, None]
    k = _signed_modes(m)[None, :]
    return torch.exp(2j * math.pi * j * k / n).to(device=device, dtype=dtype)


def _reset_fno_weights(weight: Tensor, bias: Tensor | None, in_channels: int,
                       out_channels: int) -> None:
    """The original FNO's draw, shared by the 1-D and 2-D layers: real and
    imaginary parts ``U[0, 1/(C_in C_out))``, bias ``U(-1/sqrt(C_in), 1/sqrt(C_in))``."""
    with torch.no_grad():
        weight.uniform_(0.0, 1.0 / (in_channels * out_channels))
        if bias is not None:
            bound = 1.0 / math.sqrt(in_channels)
            bias.uniform_(-bound, bound)


class SpectralConv2d(nn.Module):
    r"""Two-dimensional Fourier layer of Li et al. (2021),

    .. math::
        (\mathcal K v)(x) = \mathcal F^{-1}\big(R \cdot \mathcal F v\big)(x),
        \qquad
        \widehat{(\mathcal K v)}_{o,k} = \sum_{i} R_{k,i,o}\,\hat v_{i,k}
        \quad\text{for } |k_1| \le m_1,\ 0 \le k_2 < m_2,

    and :math:`\widehat{(\mathcal K v)}_k = 0` for all other modes. The retained block
    is the original FNO's: rows :math:`k_1 \in \{0,\dots,m_1-1\}` and
    :math:`k_1 \in \{-m_1,\dots,-1\}` of the ``rfft2`` spectrum (both :math:`\pm k_1`
    blocks) and columns :math:`k_2 \in \{0,\dots,m_2-1\}`, i.e. :math:`2m_1\times m_2`
    complex ``C_in x C_out`` matrices. The transform uses ``norm="forward"``, so the
    coefficients approximate those of the underlying continuous function and the
    layer acts identically on any grid with :math:`H\ge 2m_1`, :math:`W\ge 2m_2`
    (discretisation invariance for band-limited inputs).

    Only the retained modes are ever computed: by default the truncated transforms
    are dense products with cached DFT matrices (real ``W x 2m_2`` analysis, complex
    ``2m_1 x H`` analysis and their synthesis counterparts); with
    ``transform="fft"`` an ``rfft`` along :math:`W`, truncation to :math:`m_2`
    columns, then an ``fft`` along :math:`H` on those columns only (and the reverse
    on the way back). The channel product is one batched matrix product on
    mode-major contiguous operands (:func:`spectral_product_bmm`). The layer runs in
    float32 (float64 if given float64) with autocast disabled, since FFTs in bf16
    lose most of their accuracy.

    Args:
        in_channels (int): :math:`C_\text{in}`.
        out_channels (int): :math:`C_\text{out}`.
        modes1 (int): :math:`m_1`, retained modes per sign along :math:`H`.
        modes2 (int): :math:`m_2`, retained modes along :math:`W` (rfft axis).
        bias (bool): add a learnable constant per output channel, through the zero
            mode (free: it is folded into the mode product). Default ``False``.
        transform (str): ``"dft"`` (default: truncated transforms as cached dense
            DFT matrix products) or ``"fft"`` (pruned FFTs). Same result.

    Shapes:
        ``(B, C_in, H, W) -> (B, C_out, H, W)``, or ``(B, C_out, H', W')`` when
        ``output_shape=(H', W')`` is passed to :meth:`forward`.

    Reference:
        Z. Li, N. Kovachki, K. Azizzadenesheli, B. Liu, K. Bhattacharya, A. Stuart,
        A. Anandkumar, *Fourier Neural Operator for Parametric Partial Differential
        Equations*, ICLR 2021.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes1: int,
        modes2: int,
        bias: bool = False,
        transform: str = "dft",
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.modes1 = check_positive_int(modes1, "modes1")
        self.modes2 = check_positive_int(modes2, "modes2")
        self.transform = _check_transform(transform)
        n_modes = 2 * self.modes1 * self.modes2
        # Real storage of the complex weights (last axis = re, im): optimisers, weight
        # decay, clipping and parameter counts then treat them as two reals each.
        self.weight = nn.Parameter(torch.empty(n_modes, in_channels, out_channels, 2))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the weights as in the original FNO,
        :math:`R \\sim \\frac{1}{C_\\text{in} C_\\text{out}}\\,
        (\\mathcal U[0,1) + i\\,\\mathcal U[0,1))`."""
        _reset_fno_weights(self.weight, self.bias, self.in_channels,
                           self.out_channels)

    # ------------------------------------------------------------------ weights
    def complex_weight(self) -> Tensor:
        """The weights as a complex ``(2*modes1*modes2, C_in, C_out)`` tensor
        (a view)."""
        return torch.view_as_complex(self.weight)

    def classic_weight(self) -> Tensor:
        """The weights in the layout of the original code, complex
        ``(C_in, C_out, 2*modes1, modes2)``; rows ``:modes1`` are :math:`k_1\\ge0`."""
        w = self.complex_weight().reshape(
            2 * self.modes1, self.modes2, self.in_channels, self.out_channels)
        return w.permute(2, 3, 0, 1)

    # ------------------------------------------------------------------ forward
    def _check(self, x: Tensor) -> None:
        check_field(x, owner=type(self).__name__, channels=self.in_channels,
                    spatial_dims=2, min_size=(2 * self.modes1, 2 * self.modes2))

    def _output_shape(self, x: Tensor, output_shape) -> tuple[int, int]:
        if output_shape is None:
            return int(x.shape[-2]), int(x.shape[-1])
        h, w = check_shape(output_shape)
        if h < 2 * self.modes1 or w < 2 * self.modes2:
            raise ValueError(
                f"{type(self).__name__}: output_shape {h}x{w} cannot hold "
                f"{2 * self.modes1}x{2 * self.modes2} modes")
        return h, w

    def _mode_bias(self, dtype: torch.dtype, n_modes: int) -> Tensor | None:
        if self.bias is None:
            return None
        b = self.bias.to(dtype).view(1, 1, -1)
        # A constant b on the grid is b in the (0, 0) mode under norm="forward".
        return torch.cat([b, b.new_zeros(n_modes - 1, 1, b.shape[-1])], dim=0)

    def forward(self, x: Tensor, output_shape: tuple[int, int] | None = None) -> Tensor:
        self._check(x)
        out_h, out_w = self._output_shape(x, output_shape)
        with torch.autocast(device_type=x.device.type, enabled=False):
            if _is_low_precision(x):
                x = x.float()
            ctype = _complex_dtype(x.dtype)
            analyse = (self._analyse_dft if self.transform == "dft"
                       else self._analyse_fft)
            modes = analyse(x, ctype)  # (M, B, Ci), mode-major and contiguous
            w = self.complex_weight()
            if w.dtype != ctype:
                w = w.to(ctype)
            bias = self._mode_bias(ctype, modes.shape[0])
            out = (torch.bmm(modes, w) if bias is None
                   else torch.baddbmm(bias, modes, w))  # (M, B, Co)
            synthesise = (self._synthesise_dft if self.transform == "dft"
                          else self._synthesise_fft)
            return synthesise(out, x.shape[0], out_h, out_w)

    def _analyse_dft(self, x: Tensor, ctype: torch.dtype) -> Tensor:
        m1, m2 = self.modes1, self.modes2
        b, c, h, w = x.shape
        a_w = _analysis_real(w, m2, x.device, x.dtype)
        a_h = _analysis_complex(h, m1, x.device, ctype)
        x_ft = torch.view_as_complex((x @ a_w).view(b, c, h, m2, 2))  # (B, Ci, H, m2)
        # One copy to (H, m2 B Ci); the H-transform is then a single complex GEMM whose
        # result is already mode-major, (2 m1, m2, B, Ci).
        x_ft = x_ft.permute(2, 3, 0, 1).reshape(h, m2 * b * c)
        return (a_h @ x_ft).view(2 * m1 * m2, b, c)

    def _synthesise_dft(self, out: Tensor, batch: int, out_h: int, out_w: int
                        ) -> Tensor:
        m1, m2 = self.modes1, self.modes2
        real = torch.float64 if out.dtype == torch.complex128 else torch.float32
        s_h = _synthesis_complex(m1, out_h, out.device, out.dtype)
        s_w = _synthesis_real(m2, out_w, out.device, real)
        y = s_h @ out.view(2 * m1, m2 * batch * self.out_channels)  # (H', m2 B Co)
        y = y.view(out_h, m2, batch, self.out_channels).permute(2, 3, 0, 1)
        y = torch.view_as_real(y.contiguous())  # (B, Co, H', m2, 2)
        return y.reshape(batch, self.out_channels, out_h, 2 * m2) @ s_w

    def _analyse_fft(self, x: Tensor, ctype: torch.dtype) -> Tensor:
        m1, m2 = self.modes1, self.modes2
        x_ft = torch.fft.rfft(x, dim=-1, norm="forward")[..., :m2]
        x_ft = torch.fft.fft(x_ft, dim=-2, norm="forward")  # (B, Ci, H, m2)
        view = x_ft.permute(2, 3, 0, 1)
        modes = torch.cat([view[:m1], view[-m1:]], dim=0)  # (2 m1, m2, B, Ci)
        return modes.reshape(2 * m1 * m2, x.shape[0], self.in_channels)

    def _synthesise_fft(self, out: Tensor, batch: int, out_h: int, out_w: int
                        ) -> Tensor:
        m1, m2 = self.modes1, self.modes2
        out = out.view(2 * m1, m2, batch, self.out_channels)
        zeros = out.new_zeros(out_h - 2 * m1, m2, batch, self.out_channels)
        out = torch.cat([out[:m1], zeros, out[m1:]], dim=0)  # (H', m2, B, Co)
        out = torch.fft.ifft(out, dim=0, norm="forward").permute(2, 3, 0, 1)
        # irfft zero-pads the m2 columns to W'//2 + 1.
        return torch.fft.irfft(out, n=out_w, dim=-1, norm="forward")

    def forward_reference(
        self, x: Tensor, output_shape: tuple[int, int] | None = None
    ) -> Tensor:
        """The straightforward implementation (``rfft2``, two complex ``einsum`` on the
        ``+k_1`` and ``-k_1`` blocks, ``irfft2``); same result as :meth:`forward`."""
        self._check(x)
        out_h, out_w = self._output_shape(x, output_shape)
        with torch.autocast(device_type=x.device.type, enabled=False):
            if _is_low_precision(x):
                x = x.float()
            m1, m2 = self.modes1, self.modes2
            x_ft = torch.fft.rfft2(x, norm="forward")
            w = self.classic_weight().to(_complex_dtype(x.dtype))
            out_ft = x_ft.new_zeros(x.shape[0], self.out_channels, out_h,
                                    out_w // 2 + 1)
            out_ft[:, :, :m1, :m2] = spectral_product_einsum(
                x_ft[:, :, :m1, :m2], w[:, :, :m1])
            out_ft[:, :, out_h - m1:, :m2] = spectral_product_einsum(
                x_ft[:, :, -m1:, :m2], w[:, :, m1:])
            if self.bias is not None:
                out_ft[:, :, 0, 0] += self.bias.to(out_ft.dtype)
            return torch.fft.irfft2(out_ft, s=(out_h, out_w), norm="forward")

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, modes1={self.modes1}, "
                f"modes2={self.modes2}, bias={self.bias is not None}, "
                f"transform={self.transform!r}")


class SpectralConv1d(nn.Module):
    r"""One-dimensional Fourier layer of Li et al. (2021),

    .. math::
        \widehat{(\mathcal K v)}_{o,k} = \sum_i R_{k,i,o}\,\hat v_{i,k}
        \quad (0 \le k < m), \qquad \widehat{(\mathcal K v)}_k = 0 \text{ otherwise},

    with ``rfft`` (``norm="forward"``) and the same mode-major batched product and
    truncated transforms as :class:`SpectralConv2d`.

    Args:
        in_channels (int): :math:`C_\text{in}`.
        out_channels (int): :math:`C_\text{out}`.
        modes (int): :math:`m`, retained modes (needs :math:`L \ge 2m`).
        bias (bool): learnable constant per output channel via the zero mode.
        transform (str): ``"dft"`` (default) or ``"fft"``.

    Shapes:
        ``(B, C_in, L) -> (B, C_out, L)`` (or ``L'`` with ``output_size=L'``).

    Reference:
        Li et al., *Fourier Neural Operator for Parametric Partial Differential
        Equations*, ICLR 2021.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: int,
                 bias: bool = False, transform: str = "dft") -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.modes = check_positive_int(modes, "modes")
        self.transform = _check_transform(transform)
        self.weight = nn.Parameter(torch.empty(modes, in_channels, out_channels, 2))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the weights as in the original FNO (see :class:`SpectralConv2d`)."""
        _reset_fno_weights(self.weight, self.bias, self.in_channels,
                           self.out_channels)

    def complex_weight(self) -> Tensor:
        """The weights as a complex ``(modes, C_in, C_out)`` tensor (a view)."""
        return torch.view_as_complex(self.weight)

    def _check(self, x: Tensor, output_size: int | None) -> int:
        check_field(x, owner=type(self).__name__, channels=self.in_channels,
                    spatial_dims=1, min_size=2 * self.modes)
        n = int(x.shape[-1]) if output_size is None else int(output_size)
        if n < 2 * self.modes:
            raise ValueError(f"{type(self).__name__}: output_size {n} cannot hold "
                             f"{2 * self.modes} points")
        return n

    def forward(self, x: Tensor, output_size: int | None = None) -> Tensor:
        n = self._check(x, output_size)
        with torch.autocast(device_type=x.device.type, enabled=False):
            if _is_low_precision(x):
                x = x.float()
            ctype = _complex_dtype(x.dtype)
            m, (b, c, length) = self.modes, x.shape
            if self.transform == "dft":
                a = _analysis_real(length, m, x.device, x.dtype)
                x_ft = torch.view_as_complex((x @ a).view(b, c, m, 2))
            else:
                x_ft = torch.fft.rfft(x, dim=-1, norm="forward")[..., :m]
            modes = x_ft.permute(2, 0, 1).contiguous()  # (m, B, Ci)
            w = self.complex_weight()
            if w.dtype != ctype:
                w = w.to(ctype)
            out = torch.bmm(modes, w)
            if self.bias is not None:
                b0 = self.bias.to(ctype)
                out = torch.cat([out[:1] + b0, out[1:]], dim=0)
            out = out.permute(1, 2, 0)  # (B, Co, m)
            if self.transform == "dft":
                real = torch.float64 if ctype == torch.complex128 else torch.float32
                s_w = _synthesis_real(m, n, x.device, real)
                return torch.view_as_real(out.contiguous()).reshape(b, -1, 2 * m) @ s_w
            return torch.fft.irfft(out, n=n, dim=-1, norm="forward")

    def forward_reference(self, x: Tensor, output_size: int | None = None) -> Tensor:
        """Straightforward ``rfft`` / ``einsum`` / ``irfft`` implementation."""
        n = self._check(x, output_size)
        with torch.autocast(device_type=x.device.type, enabled=False):
            if _is_low_precision(x):
                x = x.float()
            x_ft = torch.fft.rfft(x, norm="forward")
            w = self.complex_weight().permute(1, 2, 0).to(_complex_dtype(x.dtype))
            out_ft = x_ft.new_zeros(x.shape[0], self.out_channels, n // 2 + 1)
            out_ft[..., : self.modes] = spectral_product_einsum(
                x_ft[..., : self.modes], w)
            if self.bias is not None:
                out_ft[..., 0] += self.bias.to(out_ft.dtype)
            return torch.fft.irfft(out_ft, n=n, norm="forward")

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, modes={self.modes}, "
                f"bias={self.bias is not None}, transform={self.transform!r}")
