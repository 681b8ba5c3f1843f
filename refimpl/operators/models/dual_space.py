r"""Dual-space neural operators: a global operator on Fourier coefficients and local
operators on the grid, in one model.

Two models live here.

* :class:`DualSpaceMultiScale` — a band-limited **spectral lifting** onto a fixed
  latent grid, a **spatial multi-scale core** (a U-Net of residual ``3 x 3``
  convolutions over several resolutions) and a band-limited **spectral projection**
  evaluated on the requested output grid. This is our reading of CRNO, the default
  model of CROP (Gao et al., ICLR 2025), which is the most likely form of the
  "simple dual-space multi-scale model" of Gao et al. (2025).
* :class:`DualSpaceFNO` — the lighter dual-space *block*: an FNO whose every layer
  adds a local ``3 x 3`` convolution in parallel with the spectral convolution,
  :math:`v_{\ell+1} = \sigma(\mathcal K_\ell v_\ell + C_\ell * v_\ell)`.

Both run their grid (spatial-domain) operators on a *fixed latent grid* reached by
band-limited Fourier resampling (:func:`fourier_resample`), so a ``3 x 3`` stencil
always spans the same physical length whatever the input resolution; this is what
makes a different input (or output) resolution well defined.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from refimpl.checkpoint import register_model

from .._checks import _is_low_precision, check_field, check_positive_int, check_shape
from ..layers.channel_mlp import ChannelLinear, ChannelMLP
from ..layers.grid import grid_2d
from ..layers.spectral_conv import SpectralConv2d
from ..layers.unet_blocks import DownBlock2d, ResidualBlock2d, UpBlock2d
from .base import NeuralOperator
from .fno import check_padding, padding_cells

__all__ = [
    "DualSpaceBlock",
    "DualSpaceFNO",
    "DualSpaceMultiScale",
    "MultiScaleCore",
    "fourier_resample",
]


# --------------------------------------------------------------------------- resampling
def _resample_axis(x: Tensor, n_new: int, dim: int) -> Tensor:
    n = x.shape[dim]
    if n == n_new:
        return x
    x_ft = torch.fft.fft(x, dim=dim, norm="forward")
    shape = list(x_ft.shape)
    shape[dim] = n_new
    out = x_ft.new_zeros(shape)
    if n_new > n:
        # Interpolation: every mode of the coarse grid keeps its coefficient; a
        # Nyquist mode (even n) is split evenly between +n/2 and -n/2 so that the
        # interpolant is real and sampling it back on the coarse grid is exact.
        keep = (n - 1) // 2
        out.narrow(dim, 0, keep + 1).copy_(x_ft.narrow(dim, 0, keep + 1))
        if keep:
            out.narrow(dim, n_new - keep, keep).copy_(x_ft.narrow(dim, n - keep, keep))
        if n % 2 == 0:
            half = x_ft.narrow(dim, n // 2, 1) / 2
            out.narrow(dim, n // 2, 1).copy_(half)
            out.narrow(dim, n_new - n // 2, 1).copy_(half)
    else:
        # Decimation: an ideal low-pass filter. Modes the coarse grid cannot
        # represent unambiguously (its own Nyquist mode included) are dropped
        # instead of being folded back as aliases.
        keep = (n_new - 1) // 2
        out.narrow(dim, 0, keep + 1).copy_(x_ft.narrow(dim, 0, keep + 1))
        if keep:
            out.narrow(dim, n_new - keep, keep).copy_(x_ft.narrow(dim, n - keep, keep))
    return torch.fft.ifft(out, dim=dim, norm="forward").real


def fourier_resample(x: Tensor, size: int | tuple[int, int]) -> Tensor:
    r"""Band-limited (trigonometric) resampling of periodic fields to a new grid.

    The field is read as the trigonometric polynomial through its samples,
    :math:`v(x) = \sum_{|k_i| < n_i/2} \hat v_k\, e^{2\pi i k\cdot x}`, and that
    polynomial is evaluated on the new ``H' x W'`` grid (one axis at a time, with
    ``norm="forward"`` FFTs so that coefficients do not depend on the grid):

    * **up-sampling** keeps every coefficient (a Nyquist coefficient is split between
      :math:`\pm n/2`), so ``fourier_resample(v, 2 * n)[..., ::2, ::2] == v``;
    * **down-sampling** keeps the modes :math:`|k_i| < n'_i / 2` and drops the rest
      (an ideal low-pass filter, no aliasing).

    A field whose modes all satisfy :math:`|k_i| < \min(n_i, n'_i)/2` is therefore
    transferred exactly. For non-periodic data (Darcy) the periodic extension has
    jumps at the walls and resampling shows Gibbs ringing near them.

    Args:
        x: real ``(B, C, H, W)`` field.
        size: the new grid, ``n`` or ``(H', W')``.

    Returns:
        ``(B, C, H', W')``, in ``x``'s dtype (float32 arithmetic for half inputs).
    """
    check_field(x, owner="fourier_resample", channels=None, spatial_dims=2)
    h_new, w_new = (size, size) if isinstance(size, int) else (int(s) for s in size)
    check_positive_int(h_new, "size[0]")
    check_positive_int(w_new, "size[1]")
    if (h_new, w_new) == tuple(x.shape[-2:]):
        return x
    dtype = x.dtype
    with torch.autocast(device_type=x.device.type, enabled=False):
        if _is_low_precision(x):
            x = x.float()
        out = _resample_axis(_resample_axis(x, h_new, -2), w_new, -1)
    return out.to(dtype)


_check_shape = check_shape  # the shared check (operators._checks)


# ------------------------------------------------------------------ DualSpaceFNO
class DualSpaceBlock(nn.Module):
    r"""One dual-space layer: a global spectral convolution and a local ``3 x 3``
    convolution in parallel,

    .. math::
        v_{\ell+1}(x) = \sigma\Big(\underbrace{(\mathcal K_\ell v_\ell)(x)}_{
        \text{global, } |k|\le m}
        + \underbrace{(C_\ell * v_\ell)(x)}_{\text{local, } 3\times3}\Big),

    with :math:`\mathcal K_\ell` the band-limited spectral convolution of the FNO
    (:class:`~refimpl.operators.layers.SpectralConv2d`, learnable weights on the
    lowest :math:`2m\times m` Fourier modes, bias through the zero mode) and
    :math:`C_\ell` a learnable ``3 x 3`` stencil (zero padding, no bias). The FNO
    layer is the special case of a ``1 x 1`` :math:`C_\ell`
    (:class:`~refimpl.operators.layers.FNOBlock2d`).

    **Who learns what.** :math:`\mathcal K_\ell` couples every grid point to every
    other one but only through :math:`m` modes per direction: it carries global,
    low-frequency transport (advection of large eddies, the elliptic solve of
    Darcy). :math:`C_\ell` sees only the neighbours but at every frequency up to
    the grid's Nyquist limit: it carries local, small-scale structure (sharp
    fronts, interfaces), which the spectral path cannot represent once the modes are
    truncated.

    Args:
        width (int): channels :math:`d_v`.
        modes (int): retained modes :math:`m` per direction.
        activation (bool): apply GELU (``False`` for the last layer).

    Shapes:
        ``(B, width, H, W) -> (B, width, H, W)`` with :math:`H, W \ge 2m`.

    References:
        Li et al., *Fourier Neural Operator for Parametric PDEs*, ICLR 2021;
        Liu-Schiaffini et al., *Neural Operators with Localized Integral and
        Differential Kernels*, ICML 2024 (local kernels next to the spectral one);
        Gao et al., arXiv:2510.02683, 2025 (the ``kernel_3`` FNO configuration).
    """

    def __init__(self, width: int, modes: int, activation: bool = True) -> None:
        super().__init__()
        self.width = check_positive_int(width, "width")
        self.modes = check_positive_int(modes, "modes")
        self.activation = bool(activation)
        self.spectral = SpectralConv2d(width, width, modes, modes, bias=True)
        self.local = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.spectral.reset_parameters()
        self.local.reset_parameters()

    def forward(self, v: Tensor) -> Tensor:
        out = self.spectral(v) + self.local(v)
        return F.gelu(out) if self.activation else out

    def extra_repr(self) -> str:
        return (f"width={self.width}, modes={self.modes}, "
                f"activation={'gelu' if self.activation else 'none'}")


@register_model
class DualSpaceFNO(NeuralOperator):
    r"""The lighter dual-space model: an FNO whose layers are :class:`DualSpaceBlock`
    (spectral convolution + local ``3 x 3`` convolution in parallel),

    .. math::
        u = Q\Big(R_{\text{out}}\big(\mathcal L_{n}\circ\cdots\circ\mathcal L_1
        (P\,R_{\text{lat}}\,a)\big)\Big),\qquad
        \mathcal L_\ell v = \sigma\big(\mathcal K_\ell v + C_\ell * v\big),

    with :math:`P` a point-wise lifting to ``width`` channels, :math:`Q` a point-wise
    two-layer MLP, and :math:`R_{\text{lat}}`, :math:`R_{\text{out}}` band-limited
    resampling (:func:`fourier_resample`) to the latent grid and back to the output
    grid. The last layer has no activation.

    **Provenance.** The layer with a ``3 x 3`` local path is the ``kernel_3_nogrid``
    FNO configuration of the code of Gao et al. (arXiv:2510.02683, 2025) and the
    "FNO with local fixed-size convolutions" intermediate operator listed by CROP
    (Gao et al., ICLR 2025); it is a special case of LocalNO's local kernels
    (Liu-Schiaffini et al., 2024), which instead rescale the stencil with the grid
    spacing to stay resolution-consistent. Our
    interpretation: the local path is added directly (no ``3 x 3`` channel MLP after
    the spectral path, unlike ``kernel_3_nogrid``), and the fixed latent grid is ours
    (it keeps the ``3 x 3`` stencil's physical size fixed when the input resolution
    changes). ``latent_resolution=None`` runs the layers on the input grid, like the
    FNO.

    Args:
        in_channels (int): input channels :math:`d_a`.
        out_channels (int): output channels :math:`d_u`.
        modes (int): retained Fourier modes :math:`m` per direction. Default 12.
        width (int): channels :math:`d_v` of the hidden layers. Default 20.
        n_layers (int): number of dual-space layers. Default 4.
        latent_resolution (int | None): side of the square latent grid (needs
            :math:`\ge 2m`); ``None`` = the input grid. Default 64.
        padding (int): zero-padding of the latent grid on the high side of each
            axis before the layers (removed after), for non-periodic problems, as in
            the FNO's Darcy script. Default 0.
        projection_channels (int): hidden channels of :math:`Q`. Default 128.
        coordinates (bool): append :math:`(x_1, x_2)` channels to the input.
            Default ``False``.

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, H', W')`` where
        ``(H', W') = output_shape`` (default: the input grid).

    References:
        Li et al., ICLR 2021 (FNO); Liu-Schiaffini et al., ICML 2024 (LocalNO);
        Gao et al., *Can Data-Driven Dynamics Reveal Hidden Physics? There Is A Need
        for Interpretable Neural Operators*, arXiv:2510.02683, 2025.
    """

    family = "dual"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes: int = 12,
        width: int = 20,
        n_layers: int = 4,
        latent_resolution: int | None = 64,
        padding: int = 0,
        projection_channels: int = 128,
        coordinates: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.modes = check_positive_int(modes, "modes")
        self.width = check_positive_int(width, "width")
        self.n_layers = check_positive_int(n_layers, "n_layers")
        self.projection_channels = check_positive_int(
            projection_channels, "projection_channels")
        self.padding = check_positive_int(padding, "padding", minimum=0)
        if latent_resolution is not None:
            check_positive_int(latent_resolution, "latent_resolution",
                               minimum=2 * self.modes)
        self.latent_resolution = latent_resolution
        self.coordinates = bool(coordinates)
        lifted = in_channels + (2 if self.coordinates else 0)
        self.lift = ChannelLinear(lifted, width)
        self.layers = nn.ModuleList(
            DualSpaceBlock(width, modes, activation=i < n_layers - 1)
            for i in range(n_layers))
        self.project = ChannelMLP(width, projection_channels, out_channels)

    def forward(self, x: Tensor, output_shape: int | tuple[int, int] | None = None
                ) -> Tensor:
        """Map ``(B, in_channels, H, W)`` to ``(B, out_channels, *output_shape)``."""
        min_size = 2 if self.latent_resolution is not None else 2 * self.modes
        self._check_input(x, min_size=min_size)
        out_shape = (tuple(x.shape[-2:]) if output_shape is None
                     else _check_shape(output_shape))
        if self.coordinates:
            grid = grid_2d(*x.shape[-2:], device=x.device, dtype=x.dtype)
            x = torch.cat([x, grid.expand(x.shape[0], -1, -1, -1)], dim=1)
        if self.latent_resolution is not None:
            x = fourier_resample(x, self.latent_resolution)
        v = self.lift(x)
        if self.padding:
            v = F.pad(v, [0, self.padding, 0, self.padding])
        for layer in self.layers:
            v = layer(v)
        if self.padding:
            v = v[..., : v.shape[-2] - self.padding, : v.shape[-1] - self.padding]
        # Resample the features, then apply the point-wise Q on the output grid:
        # point evaluation commutes with sub-sampling, so outputs at two resolutions
        # agree exactly on their common points.
        v = fourier_resample(v, out_shape)
        return self.project(v)

    def config(self) -> dict:
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    modes=self.modes, width=self.width, n_layers=self.n_layers,
                    latent_resolution=self.latent_resolution, padding=self.padding,
                    projection_channels=self.projection_channels,
                    coordinates=self.coordinates)


# -------------------------------------------------------------- DualSpaceMultiScale
class MultiScaleCore(nn.Module):
    r"""The spatial core of :class:`DualSpaceMultiScale`: a U-Net of residual
    ``3 x 3`` blocks over ``depth + 1`` resolutions, or (``multiscale=False``, the
    ablation) the same number of residual blocks on the finest grid only.

    Level :math:`i = 0, \dots, D` works on an :math:`L/2^i` grid with
    :math:`w\,2^i` channels: ``n_res`` residual blocks per level (``n_res_neck`` at
    the coarsest), average-pool down-sampling and bilinear up-sampling with
    concatenated skip connections
    (:class:`~refimpl.operators.layers.ResidualBlock2d`,
    :class:`~refimpl.operators.layers.DownBlock2d`,
    :class:`~refimpl.operators.layers.UpBlock2d`). A ``3 x 3`` stencil on level
    :math:`i` spans :math:`3\cdot 2^i h`, so the levels see structures from the grid
    spacing up to a quarter of the domain (Ronneberger et al., 2015).

    Args:
        width (int): channels :math:`w` of the finest level.
        depth (int): number of down-samplings :math:`D` (``depth + 1`` resolutions).
        n_res (int): residual blocks per level (encoder and decoder).
        n_res_neck (int): residual blocks on the coarsest level.
        multiscale (bool): ``False`` keeps every block on the finest grid with
            :math:`w` channels (the "no multi-scale" ablation).
        norm (str, optional): normalisation inside the residual blocks,
            ``"batch"``, ``"group"`` or :obj:`None`
            (:func:`~refimpl.operators.layers.unet_blocks.make_norm2d`).

    Shapes:
        ``(B, w, L, L) -> (B, w, L, L)``.
    """

    def __init__(self, width: int, depth: int = 2, n_res: int = 1, n_res_neck: int = 2,
                 multiscale: bool = True, norm: str | None = None) -> None:
        super().__init__()
        self.width = check_positive_int(width, "width")
        self.depth = check_positive_int(depth, "depth", minimum=0)
        self.n_res = check_positive_int(n_res, "n_res")
        self.n_res_neck = check_positive_int(n_res_neck, "n_res_neck")
        self.multiscale = bool(multiscale)
        self.norm = norm
        ch = [width * 2**i for i in range(depth + 1)]
        if not self.multiscale:
            total = 2 * depth * n_res + n_res_neck if depth else n_res_neck
            self.blocks = nn.ModuleList(ResidualBlock2d(width, width, norm)
                                        for _ in range(total))
            return
        self.enc = nn.ModuleList(
            [nn.ModuleList(ResidualBlock2d(width, width, norm) for _ in range(n_res))])
        for i in range(1, depth + 1):
            n = n_res_neck if i == depth else n_res
            self.enc.append(nn.ModuleList(
                [DownBlock2d(ch[i - 1], ch[i], norm)]
                + [ResidualBlock2d(ch[i], ch[i], norm) for _ in range(n - 1)]))
        self.up = nn.ModuleList(UpBlock2d(ch[i + 1], ch[i], ch[i], norm)
                                for i in reversed(range(depth)))
        self.dec = nn.ModuleList(
            nn.ModuleList(ResidualBlock2d(ch[i], ch[i], norm) for _ in range(n_res - 1))
            for i in reversed(range(depth)))

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, (ResidualBlock2d, UpBlock2d)):
                m.reset_parameters()

    def forward(self, v: Tensor) -> Tensor:
        if not self.multiscale:
            for block in self.blocks:
                v = block(v)
            return v
        skips = []
        for level in self.enc:
            for block in level:
                v = block(v)
            skips.append(v)
        skips.pop()  # the coarsest level's output is v itself
        for up, dec in zip(self.up, self.dec, strict=True):
            v = up(v, skips.pop())
            for block in dec:
                v = block(v)
        return v

    def extra_repr(self) -> str:
        return (f"width={self.width}, depth={self.depth}, n_res={self.n_res}, "
                f"n_res_neck={self.n_res_neck}, multiscale={self.multiscale}, "
                f"norm={self.norm!r}")


@register_model
class DualSpaceMultiScale(NeuralOperator):
    r"""Dual-space multi-scale neural operator: spectral lifting → spatial
    multi-scale core → spectral projection,

    .. math::
        u = Q\Big(\mathrm{BN}\big(\mathcal K^{\text{proj}}_{L\to H'}\,
        \mathcal U\big(C_{3\times3} * \sigma(\mathrm{BN}(
        \mathcal K^{\text{lift}}_{H\to L}\, a))\big)\big)\Big),

    where

    * :math:`\mathcal K^{\text{lift}}_{H\to L}` is a band-limited spectral
      convolution: it reads the lowest :math:`2m\times m` Fourier coefficients of the
      input on *its* grid (``norm="forward"``, so the coefficients do not depend on
      the grid), mixes channels per mode and synthesises the result on a fixed
      ``L x L`` latent grid. An input on any grid, coarser or finer than the
      training grid, is first reduced to the same band-limited function, so the
      model is well defined at every resolution (inputs coarser than :math:`2m`
      points are first interpolated with :func:`fourier_resample`);
    * :math:`\mathcal U` is a U-Net of residual ``3 x 3`` blocks over
      ``depth + 1`` resolutions :math:`L, L/2, \dots, L/2^D`
      (:class:`MultiScaleCore`);
    * :math:`\mathcal K^{\text{proj}}_{L\to H'}` is a band-limited spectral
      convolution synthesised directly on the requested output grid, followed by
      BatchNorm and the point-wise MLP :math:`Q` (GELU).

    **Who learns what.** The two spectral convolutions carry *global, low-frequency*
    information: every latent point sees the whole input through :math:`m` modes
    per direction (transport of large vortices across the torus, the global
    elliptic coupling of Darcy), and they fix the model's continuous input/output
    spaces. The U-Net carries *local, small-scale* structure: its stencils act on
    every frequency up to the latent grid's Nyquist limit, and its coarse levels
    enlarge the receptive field hierarchically (multi-scale interactions, sharp
    fronts and interfaces).

    **Provenance.** From CROP/CRNO (Gao et al., ICLR 2025, code
    ``wenhangao21/ICLR25-CROP``, ``.../NS_linearDarcy_Poisson/scr/CRNO.py``, class
    ``CRNO2d``, and ``train.py``, read for this module): the spectral lift to a
    latent grid followed by BN, GELU and a ``3 x 3`` convolution; a residual U-Net
    core with BatchNorm; the spectral projection at the output resolution followed
    by BN and a point-wise MLP with hidden size :math:`4 d_\text{proj}`; the
    resolution-independent scaling of the spectral convolutions (CRNO uses
    ``ortho`` FFTs times ``out_size / in_size``, which equals our ``norm="forward"``
    on square grids). That CRNO is the "dual-space multi-scale model" of Gao et al.
    (2025) is our interpretation (the paper's architecture table could not be
    consulted).

    **Where we differ from the released CRNO** (each checked against the code):

    * *Mode block and weights.* CRNO keeps a centred :math:`(2m-1)\times m` block
      of rFFT modes, ties the :math:`k_2 = 0` column to be Hermitian (real zero
      mode) and draws the weights with Kaiming-uniform; we keep the FNO's
      :math:`2m\times m` block with the FNO's weight draw
      (:class:`~refimpl.operators.layers.SpectralConv2d`).
    * *Lift width.* CRNO's spectral lift goes to a fixed 16 channels and the
      ``3 x 3`` convolution to the core's first width; ours goes to ``width``
      twice (one width to match a parameter budget).
    * *Core blocks.* CRNO's residual block is conv-BN-LeakyReLU-conv-BN plus the
      identity; ours (:class:`~refimpl.operators.layers.ResidualBlock2d`) uses
      GELU and a GELU after the sum. CRNO applies a level's ``N_res`` residual
      blocks to the *skip* branch only (the down-sampling block reads the
      un-processed features), resamples with bicubic interpolation inside
      conv-BN-LeakyReLU "CNO blocks" (also on every skip) and concatenates the
      lift's skip into the projection; ours applies the blocks in line,
      down-samples by average pooling and up-samples bilinearly
      (:class:`~refimpl.operators.layers.DownBlock2d`,
      :class:`~refimpl.operators.layers.UpBlock2d`), and projects the core's
      output alone. CRNO's configuration is 3 down-samplings, 4 blocks per level,
      6 in the neck and 20 projection channels; ours are arguments, sized to the
      budget of the benchmark.
    * *Coordinates.* CRNO always appends :math:`(x_1, x_2)`; ours is an option
      (off by default, on in the benchmark of chapter 3).
    * *Padding.* CRNO has none (its lift reads the input as periodic, also on
      Darcy); ``padding`` here is the FNO's domain padding, so that a benchmark
      can give every model the same treatment of non-periodic data.
    * *Training recipe* (not part of this module; chapter 3's driver):
      CROP trains with AdamW (learning rate :math:`10^{-3}`, weight decay
      :math:`10^{-6}`), StepLR (×0.98 every 10 epochs) for 1000 epochs, batch 16,
      a relative squared :math:`L^2` loss on min-max normalised data and the
      best-validation checkpoint (patience 100); chapter 3 gives every model one
      optimiser and schedule with a learning-rate / weight-decay sweep on a
      validation split (CROP's weight decay is one of the grid points), a
      relative :math:`L^2` loss in physical units on per-channel standardised
      data, and scores the last-epoch model.

    The U-Net is Ronneberger et al. (2015).

    Args:
        in_channels (int): input channels :math:`d_a`.
        out_channels (int): output channels :math:`d_u`.
        width (int): channels :math:`w` of the finest core level (the core has
            :math:`w, 2w, \dots, 2^D w`); also the lift's channels. Default 16.
        modes (int): retained Fourier modes :math:`m` of the lift and projection.
            Default 12.
        latent_resolution (int): side :math:`L` of the latent grid; must be
            :math:`\ge 2m` and divisible by :math:`2^D`. Default 64.
        depth (int): down-samplings :math:`D` of the core (``depth + 1``
            resolutions). Default 2.
        n_res (int): residual blocks per core level. Default 1.
        n_res_neck (int): residual blocks on the coarsest level. Default 2.
        projection_channels (int | None): channels :math:`d_\text{proj}` of the
            spectral projection (default :math:`w`).
        spectral (bool): ``False`` replaces both spectral convolutions by point-wise
            linear maps on the latent / output grid (the "no spectral part"
            ablation). Default ``True``.
        multiscale (bool): ``False`` keeps the core on the latent grid only (the "no
            multi-scale part" ablation). Default ``True``.
        coordinates (bool): append :math:`(x_1, x_2)` input channels. Default
            ``False``.
        norm (str | None): normalisation inside the core's residual blocks,
            ``"batch"`` (CRNO's), ``"group"`` or ``None``. Default ``None``.
        padding (float): domain padding for non-periodic problems, a fraction of
            the grid as in :class:`~refimpl.operators.models.FNO`: the input is
            zero-padded on the high side of each axis
            (:func:`~refimpl.operators.models.fno.padding_cells`) before the
            spectral lift, so the latent grid spans the padded domain, and the
            output is synthesised on the padded output grid and cropped. Default
            ``0`` (none; band-limited inputs then give the same function at every
            resolution exactly).

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, H', W')``;
        ``(H', W') = output_shape``, default the input grid.

    References:
        W. Gao, R. Xu, Y. Deng, Y. Liu, *Discretization-Invariance? On the
        Discretization Mismatch Errors in Neural Operators*, ICLR 2025 (CROP);
        W. Gao et al., arXiv:2510.02683, 2025; Li et al., ICLR 2021 (FNO);
        Ronneberger et al., MICCAI 2015 (U-Net); Raonić et al., NeurIPS 2023 (CNO).
    """

    family = "dual"
    extra_input_dtypes = {torch.float32: (torch.float16, torch.bfloat16)}  # run in fp32

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 16,
        modes: int = 12,
        latent_resolution: int = 64,
        depth: int = 2,
        n_res: int = 1,
        n_res_neck: int = 2,
        projection_channels: int | None = None,
        spectral: bool = True,
        multiscale: bool = True,
        coordinates: bool = False,
        norm: str | None = None,
        padding: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.width = check_positive_int(width, "width")
        self.modes = check_positive_int(modes, "modes")
        self.padding = check_padding(padding)
        self.depth = check_positive_int(depth, "depth", minimum=0)
        self.latent_resolution = check_positive_int(
            latent_resolution, "latent_resolution", minimum=2 * self.modes)
        if self.latent_resolution % 2**self.depth:
            raise ValueError(
                f"latent_resolution={latent_resolution} must be divisible by "
                f"2**depth = {2**self.depth}")
        self.n_res = check_positive_int(n_res, "n_res")
        self.n_res_neck = check_positive_int(n_res_neck, "n_res_neck")
        self.projection_channels = check_positive_int(
            width if projection_channels is None else projection_channels,
            "projection_channels")
        self.spectral = bool(spectral)
        self.multiscale = bool(multiscale)
        self.coordinates = bool(coordinates)
        lifted = in_channels + (2 if self.coordinates else 0)
        d_proj = self.projection_channels
        if self.spectral:
            self.lift = SpectralConv2d(lifted, width, modes, modes, bias=True)
            self.proj = SpectralConv2d(width, d_proj, modes, modes, bias=True)
        else:
            self.lift = ChannelLinear(lifted, width)
            self.proj = ChannelLinear(width, d_proj)
        self.lift_norm = nn.BatchNorm2d(width)
        self.lift_conv = nn.Conv2d(width, width, 3, padding=1)
        self.norm = norm
        self.core = MultiScaleCore(width, depth, n_res, n_res_neck, self.multiscale,
                                   norm)
        self.proj_norm = nn.BatchNorm2d(d_proj)
        self.head = ChannelMLP(d_proj, 4 * d_proj, out_channels)

    def _lift(self, x: Tensor) -> Tensor:
        n_lat = self.latent_resolution
        if not self.spectral:
            return self.lift(fourier_resample(x, n_lat))
        if min(x.shape[-2:]) < 2 * self.modes:
            x = fourier_resample(x, n_lat)
        return self.lift(x, output_shape=(n_lat, n_lat))

    def _project(self, v: Tensor, out_shape: tuple[int, int]) -> Tensor:
        if not self.spectral or min(out_shape) < 2 * self.modes:
            return fourier_resample(self.proj(v), out_shape)
        return self.proj(v, output_shape=out_shape)

    def forward(self, x: Tensor, output_shape: int | tuple[int, int] | None = None
                ) -> Tensor:
        """Map ``(B, in_channels, H, W)`` to ``(B, out_channels, *output_shape)``."""
        self._check_input(x, min_size=2)
        h, w = (tuple(x.shape[-2:]) if output_shape is None
                else _check_shape(output_shape))
        if self.coordinates:
            grid = grid_2d(*x.shape[-2:], device=x.device, dtype=x.dtype)
            x = torch.cat([x, grid.expand(x.shape[0], -1, -1, -1)], dim=1)
        if self.padding:
            x = F.pad(x, (0, padding_cells(x.shape[-1], self.padding),
                          0, padding_cells(x.shape[-2], self.padding)))
        v = self.lift_conv(F.gelu(self.lift_norm(self._lift(x))))
        v = self.core(v)
        # On the padded output grid, then cropped to the domain before the BN.
        v = self._project(v, (h + padding_cells(h, self.padding),
                              w + padding_cells(w, self.padding)))[..., :h, :w]
        return self.head(self.proj_norm(v))

    def config(self) -> dict:
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    width=self.width, modes=self.modes,
                    latent_resolution=self.latent_resolution, depth=self.depth,
                    n_res=self.n_res, n_res_neck=self.n_res_neck,
                    projection_channels=self.projection_channels,
                    spectral=self.spectral, multiscale=self.multiscale,
                    coordinates=self.coordinates, norm=self.norm,
                    padding=self.padding)
