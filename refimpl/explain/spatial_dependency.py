r"""Gradient-based spatial dependency (effective receptive field) of a field-to-field
model, and a score to compare two dependency maps.

For a model :math:`\mathcal G_\theta` that maps an input field :math:`u` on an
:math:`H\times W` grid to an output field, the *spatial dependency* of the output
point :math:`x_0` (the *probe*) is the magnitude of the functional derivative

.. math::
    m(\xi) = \Big|\frac{\partial\,\mathcal G_\theta(u)(x_0)}{\partial\,u(\xi)}\Big|,

the *effective receptive field* (ERF) of Luo et al. (NeurIPS 2016) applied to neural
operators as in Gao et al. (arXiv:2510.02683). For a linear PDE solution operator
:math:`u(x_0, t) = \int G_t(x_0, \xi)\,u_0(\xi)\,d\xi` the exact map is the Green's
function :math:`|G_t(x_0, \cdot)|` (up to the grid weight :math:`h^2`), which is what a
trained model's map is compared with (:func:`compare_maps`).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["spatial_dependency", "compare_maps", "projected_scores"]

_NORMALIZE = ("l2", "max", "sum", None)


def _check_probe(probe: Any) -> tuple[int, int]:
    if isinstance(probe, Tensor):
        probe = probe.tolist()
    if not isinstance(probe, (tuple, list, np.ndarray)) or len(probe) != 2:
        raise TypeError("probe must be a pair of grid indices (row, column), got "
                        f"{probe!r}")
    out = []
    for p in probe:
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer)):
            raise TypeError(f"probe indices must be integers, got {probe!r}")
        out.append(int(p))
    return out[0], out[1]


def _split_normalizer(normalizer: Any) -> tuple[Any, Any]:
    """``None``, one object with ``encode``/``decode``, or ``(input, output)``."""
    if normalizer is None:
        return None, None
    if isinstance(normalizer, (tuple, list)):
        if len(normalizer) != 2:
            raise TypeError("normalizer must be None, an object with encode/decode, or "
                            f"a pair (input_normalizer, output_normalizer); got "
                            f"a sequence of length {len(normalizer)}")
        enc, dec = normalizer
    else:
        enc = dec = normalizer
    if enc is not None and not callable(getattr(enc, "encode", None)):
        raise TypeError(f"the input normalizer {type(enc).__name__} has no encode()")
    if dec is not None and not callable(getattr(dec, "decode", None)):
        raise TypeError(f"the output normalizer {type(dec).__name__} has no decode()")
    return enc, dec


def _model_placement(model: Callable) -> tuple[Optional[torch.device],
                                                 Optional[torch.dtype]]:
    """Device and floating dtype of a module's first parameter (or buffer)."""
    if isinstance(model, nn.Module):
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                return t.device, t.dtype
    return None, None


def _per_sample_norm(g: Tensor, normalize: Optional[str]) -> Tensor:
    """Per-sample scale of ``g`` (shape ``(B, H, W)``) used by ``normalize``."""
    flat = g.flatten(1)
    if normalize == "l2":
        return flat.norm(dim=1)
    if normalize == "max":
        return flat.amax(dim=1)
    if normalize == "sum":
        return flat.sum(dim=1)
    return torch.ones(g.shape[0], dtype=g.dtype, device=g.device)


def spatial_dependency(
    model: Callable[[Tensor], Tensor],
    inputs: Tensor,
    probe: Sequence[int],
    normalizer: Any = None,
    channel: int = 0,
    out_channel: int = 0,
    *,
    normalize: Optional[str] = "l2",
    batch_size: Optional[int] = None,
    mask: Optional[Tensor] = None,
    signed: bool = False,
) -> Tensor:
    r"""Effective receptive field of one output point of a field-to-field model.

    For each input sample :math:`u_n` the map

    .. math::
        g_n(\xi) = \Big|\frac{\partial\, y_n(x_0)}{\partial\, u_n(\xi)}\Big|,
        \qquad y_n = D\big(\mathcal G_\theta(E(u_n))\big),

    is taken with respect to the **raw physical input** :math:`u_n` (channel
    ``channel``) at the output point :math:`x_0 =` ``probe`` of output channel
    ``out_channel``. The optional normaliser (encode :math:`E`, decode :math:`D`) is
    *inside* the differentiated function, so the chain rule removes its point-wise
    scaling: for :math:`E(u) = (u-\mu_a)/(\sigma_a+\varepsilon)` the map is not
    re-weighted by :math:`\sigma_a(\xi)` (Gao et al.'s released code differentiates
    the normalised quantities instead, which multiplies the map by
    :math:`\sigma_a(\xi)`). Gradients with respect to other input channels (such as
    constant coordinate channels) are not part of the map.

    Each per-sample map is divided by its own norm (``normalize``, default its L2
    norm :math:`\|g_n\|_2`, as in the authors' code), so that every sample weighs the
    same whatever its amplitude, and the maps are averaged:
    :math:`m = \frac1N\sum_n g_n/\|g_n\|`. With ``"l2"`` or ``"sum"`` one bright
    pixel cannot set the scale of a sample the way it would with ``"max"``;
    ``normalize=None`` returns the plain mean :math:`\frac1N\sum_n g_n` in physical
    units (output units per input unit), for exact checks. Samples whose gradient
    vanishes identically carry no information and are left out of the average.

    ``signed=True`` keeps the sign: :math:`\frac1N\sum_n \partial y_n(x_0)/
    \partial u_n\,/\,\|g_n\|` (same per-sample scale as the display map). This
    is the map the projected metrics of :func:`projected_scores` need; for a linear
    model with ``normalize=None`` it is the exact Jacobian row.

    **Where the map is defined.** A ``mask`` restricts the map to the input points
    that the data actually vary: for Dirichlet data the wall values are always zero,
    so the model's sensitivity to them is never fitted, and through a point-wise
    normaliser with :math:`\sigma_a = 0` on the walls it is multiplied by
    :math:`1/\varepsilon`; such points would dominate the per-sample norm. Points
    outside the mask are set to zero *before* the per-sample normalisation.

    **Batched.** All samples go through one forward and one backward pass: the
    probe outputs are summed over the batch, :math:`s=\sum_n y_n(x_0)`, and
    :math:`\partial s/\partial u_n = \partial y_n(x_0)/\partial u_n` because the
    samples do not interact. This assumes the model has *no cross-sample
    coupling*; BatchNorm in training mode couples samples, so the model is put in
    ``eval()`` mode for the computation and every sub-module's mode is restored
    afterwards. Pass ``batch_size`` to bound memory with chunks (the result is the
    same). Parameter gradients are neither computed nor touched.

    Args:
        model: any callable mapping ``(B, C, H, W)`` to ``(B, C_out, H', W')`` (or
            ``(B, H', W')``); an :class:`~torch.nn.Module` with parameters gets the
            inputs moved to its parameters' device and dtype.
        inputs (Tensor): raw physical inputs, ``(B, H, W)`` (one channel) or
            ``(B, C, H, W)``, floating point, finite, :math:`B\ge1`.
        probe: grid indices ``(row, column)`` of the output point, inside the
            output grid.
        normalizer: ``None``; one object with ``encode`` (applied to the inputs)
            and ``decode`` (applied to the outputs); or a pair
            ``(input_normalizer, output_normalizer)``, either of which may be
            ``None``. Both must be differentiable torch operations.
        channel (int): the input channel the map is taken with respect to.
        out_channel (int): the output channel of the probed value.
        normalize (str, optional): per-sample normalisation before averaging:
            ``"l2"`` (default), ``"max"``, ``"sum"`` or ``None``.
        batch_size (int, optional): samples per forward/backward pass
            (default: all at once).
        mask (Tensor, optional): boolean ``(H, W)`` map of the input points kept
            (default: all).
        signed (bool): return the signed mean gradient instead of the mean
            magnitude (default ``False``).

    Returns:
        Tensor: the non-negative map (signed with ``signed=True``), shape
        ``(H, W)``, on the model's device, detached, in the dtype of the
        computation.

    Raises:
        ValueError: empty batch, non-finite inputs, a wrong shape, a probe outside
            the output grid, an unknown ``normalize``, a channel out of range, or a
            probed output that does not depend on the input channel (zero
            gradient for every sample).
        TypeError: non-floating inputs, a malformed probe or normaliser.

    Example:
        >>> conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
        >>> m = spatial_dependency(conv, torch.randn(4, 16, 16), probe=(8, 8))
        >>> m.shape
        torch.Size([16, 16])
    """
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
    if not inputs.is_floating_point():
        raise TypeError(f"inputs must be a floating-point tensor, got {inputs.dtype}")
    if inputs.dim() == 3:
        inputs = inputs.unsqueeze(1)
    if inputs.dim() != 4:
        raise ValueError("inputs must have shape (B, H, W) or (B, C, H, W), got "
                         f"{tuple(inputs.shape)}")
    if inputs.shape[0] == 0:
        raise ValueError("inputs is an empty batch (B = 0); give at least one sample")
    if not torch.isfinite(inputs).all():
        raise ValueError("inputs contain NaN or infinite values")
    p, q = _check_probe(probe)
    if normalize not in _NORMALIZE:
        raise ValueError(f"normalize must be one of {_NORMALIZE}, got {normalize!r}")
    n_channels = inputs.shape[1]
    if not isinstance(channel, int) or not 0 <= channel < n_channels:
        raise ValueError(f"channel must be an integer in [0, {n_channels}), got "
                         f"{channel!r}")
    if not isinstance(out_channel, int) or out_channel < 0:
        raise ValueError(f"out_channel must be a non-negative integer, got "
                         f"{out_channel!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None, got "
                         f"{batch_size!r}")
    if mask is not None:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool \
                or tuple(mask.shape) != tuple(inputs.shape[-2:]):
            raise ValueError("mask must be a boolean tensor of the input grid's shape "
                             f"{tuple(inputs.shape[-2:])}, got "
                             f"{getattr(mask, 'dtype', type(mask).__name__)} "
                             f"{tuple(getattr(mask, 'shape', ()))}")
        if not bool(mask.any()):
            raise ValueError("mask keeps no grid point")
    if not callable(model):
        raise TypeError(f"model must be callable, got {type(model).__name__}")
    enc, dec = _split_normalizer(normalizer)

    dev, dtype = _model_placement(model)
    if dev is not None:
        inputs = inputs.to(dev, dtype)
    modes = ([(m, m.training) for m in model.modules()]
             if isinstance(model, nn.Module) else [])
    if isinstance(model, nn.Module):
        model.eval()
    try:
        chunks = inputs.split(batch_size or inputs.shape[0])
        grads = [_probe_gradient(model, c, p, q, enc, dec, channel, out_channel)
                 for c in chunks]
    finally:
        for m, mode in modes:
            m.training = mode
    g = torch.cat(grads)  # (B, H, W), signed
    if not signed:
        g = g.abs()
    if mask is not None:
        g = g * mask.to(g.device)

    scale = _per_sample_norm(g.abs(), normalize)
    alive = g.flatten(1).abs().amax(dim=1) > 0
    if not bool(alive.any()):
        raise ValueError(
            f"the output at probe {(p, q)} (channel {out_channel}) does not depend on "
            f"input channel {channel}: its gradient is zero for every sample"
            + (" inside the mask" if mask is not None else ""))
    g = g[alive] / scale[alive].view(-1, 1, 1)
    return g.mean(dim=0)


def _probe_gradient(model: Callable, u: Tensor, p: int, q: int, enc: Any, dec: Any,
                    channel: int, out_channel: int) -> Tensor:
    """Signed ``d y_n(p, q) / d u_n[channel]`` for a chunk, shape ``(b, H, W)``."""
    with torch.enable_grad():
        u = u.detach().clone().requires_grad_(True)
        x = enc.encode(u) if enc is not None else u
        y = model(x)
        if dec is not None:
            y = dec.decode(y)
        if not isinstance(y, Tensor):
            raise TypeError(f"the model returned {type(y).__name__}, not a Tensor")
        if y.dim() == 3:
            y = y.unsqueeze(1)
        if y.dim() != 4 or y.shape[0] != u.shape[0]:
            raise ValueError("the model output must have shape (B, C_out, H', W') or "
                             f"(B, H', W') with B = {u.shape[0]}, got "
                             f"{tuple(y.shape)}")
        if out_channel >= y.shape[1]:
            raise ValueError(f"out_channel={out_channel} but the output has "
                             f"{y.shape[1]} channel(s)")
        h, w = y.shape[-2:]
        if not (0 <= p < h and 0 <= q < w):
            raise ValueError(f"probe {(p, q)} is outside the output grid of size "
                             f"{h}x{w}; indices must satisfy 0 <= row < {h}, "
                             f"0 <= column < {w}")
        s = y[:, out_channel, p, q].sum()
        if not bool(torch.isfinite(s)):
            raise ValueError(
                f"the model's output at probe {(p, q)} (channel {out_channel}) is NaN "
                "or infinite for finite inputs: check the model's weights (a NaN "
                "weight) or its numerical range; expected a finite output")
        if not s.requires_grad:
            return torch.zeros_like(u[:, channel])
        (g,) = torch.autograd.grad(s, u, allow_unused=True)
    if g is None:
        return torch.zeros_like(u[:, channel])
    if not bool(torch.isfinite(g).all()):
        raise ValueError(f"the gradient of the output at probe {(p, q)} is NaN or "
                         "infinite: check the model's weights; expected finite values")
    return g[:, channel].detach()


def _as_map(x: Any, name: str) -> Tensor:
    t = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if t.dim() != 2:
        raise ValueError(f"{name} must be a 2-D map (H, W), got shape {tuple(t.shape)}")
    if t.numel() < 2:
        raise ValueError(f"{name} needs at least two grid points")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def compare_maps(a: Union[Tensor, np.ndarray], b: Union[Tensor, np.ndarray]
                 ) -> dict[str, float]:
    r"""Agreement of two dependency maps (e.g. learned ``a`` vs analytic ``b``).

    Both maps are first scaled to a peak of one, :math:`\hat a = a/\max|a|`, the way
    they are displayed; a learned map carries an arbitrary overall scale (it was
    normalised per sample and averaged) while the analytic one is in physical
    units, so only the shape can be compared. Returned scores:

    * ``"pearson"``: Pearson correlation
      :math:`r = \frac{\sum(\hat a-\bar a)(\hat b-\bar b)}
      {\sqrt{\sum(\hat a-\bar a)^2\sum(\hat b-\bar b)^2}}\in[-1,1]` over all grid
      points (higher is better). It is invariant to scale *and* offset, so a
      uniform background haze does not count against a map that has the right
      pattern, and it is the score used for ERF comparisons in the book.
    * ``"rel_l2"``: :math:`\|\hat a-\hat b\|_2/\|\hat b\|_2` (lower is better). It
      does count offsets and misplaced mass, so it complements Pearson; with
      max-normalisation it compares the pictures as the reader sees them, which
      an L2-normalised distance would not (one bright pixel at the probe would
      dominate the L2 norm of a learned map).
    * ``"cosine"``: :math:`\hat a\cdot\hat b/(\|\hat a\|\|\hat b\|)`.

    Args:
        a, b: maps of the same shape ``(H, W)`` (tensors or arrays), finite, not
            identically zero and not constant.

    Returns:
        dict: ``{"pearson": float, "rel_l2": float, "cosine": float}``.

    Raises:
        ValueError: different shapes, not 2-D, non-finite, all zero or constant.
    """
    a, b = _as_map(a, "a"), _as_map(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"maps must have the same shape, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    for name, t in (("a", a), ("b", b)):
        if t.abs().max() == 0:
            raise ValueError(f"map {name} is identically zero")
        if t.std() == 0:
            raise ValueError(f"map {name} is constant; its correlation is undefined")
    a = a / a.abs().max()
    b = b / b.abs().max()
    da, db = a - a.mean(), b - b.mean()
    pearson = float((da * db).sum()
                    / math.sqrt(float((da * da).sum() * (db * db).sum())))
    rel_l2 = float((a - b).norm() / b.norm())
    cosine = float((a * b).sum() / (a.norm() * b.norm()))
    return {"pearson": pearson, "rel_l2": rel_l2, "cosine": cosine}


def projected_scores(g: Union[Tensor, np.ndarray], reference: Union[Tensor, np.ndarray],
                     basis: Union[Tensor, np.ndarray]) -> dict[str, float]:
    r"""How much of a **signed** gradient map is identified by the data, and how
    well that part matches the exact kernel (spec §5.5, the *projected ERF*).

    When every training input lies in the span :math:`V` of the columns of
    ``basis`` (:math:`S\in\mathbb R^{n\times K}`, e.g. the :math:`K` sine modes
    per direction of the wave data), only the component of the model's gradient
    inside :math:`V\otimes V` is pinned down by the data; the rest (higher
    frequencies, wall values) is never fitted and can be arbitrary speckle. With
    the orthogonal projector :math:`P = S(S^\top S)^{-1}S^\top` (for the sine basis
    on :math:`x_k = k/(n-1)`, :math:`P = \frac{2}{n-1}SS^\top`),

    .. math::
        g_P = P\,g\,P^\top,\qquad
        r_\text{proj} = \mathrm{Pearson}(g_P,\ G_t(x_0,\cdot)),\qquad
        \phi = \frac{\|g-g_P\|_2}{\|g\|_2}.

    :math:`r_\text{proj}` is **signed** (the kernel changes sign across the
    wavefront and the wake), so a featureless positive blob, which a Pearson
    correlation of magnitudes rewards for being centred on the probe, scores near
    zero; for an exact model :math:`g_P = h^2G_t` and :math:`r_\text{proj} = 1`.
    :math:`\phi\in[0,1]` is the share of the map the data cannot identify (lower
    is better); it explains speckle in a model that predicts well.

    Args:
        g: the signed map ``(n, n)`` (e.g. :func:`spatial_dependency` with
            ``signed=True``), not identically zero.
        reference: the signed exact kernel ``(n, n)`` (e.g.
            ``wave.dependency_map(t, probe, signed=True)``), not constant.
        basis: ``(n, K)`` with independent columns spanning the inputs along
            each axis (e.g. :func:`refimpl.pde.sine.sine_basis`).

    Returns:
        dict: ``{"r_proj": float, "phi": float}``.

    Raises:
        ValueError: maps of different shapes, a basis whose rows do not match
            the grid or whose columns are dependent, a zero map or a constant
            reference.

    Example:
        >>> from refimpl.pde import wave
        >>> from refimpl.pde.sine import sine_basis
        >>> G = wave.dependency_map(1.0, (31, 31), signed=True, dtype=torch.float64)
        >>> s = projected_scores(G, G, sine_basis(64, 24))
        >>> round(s["r_proj"], 6), round(s["phi"], 6)
        (1.0, 0.0)
    """
    g, ref = _as_map(g, "g"), _as_map(reference, "reference")
    if g.shape != ref.shape:
        raise ValueError(f"g and reference must have the same shape, got "
                         f"{tuple(g.shape)} and {tuple(ref.shape)}")
    S = torch.as_tensor(basis).detach().to("cpu", torch.float64)
    if S.dim() != 2 or S.shape[0] != g.shape[0] or g.shape[0] != g.shape[1]:
        raise ValueError(f"basis must be (n, K) with n = {g.shape[0]} for square "
                         f"(n, n) maps; got basis {tuple(S.shape)} and maps "
                         f"{tuple(g.shape)}")
    if g.abs().max() == 0:
        raise ValueError("map g is identically zero")
    if ref.std() == 0:
        raise ValueError("reference is constant; its correlation is undefined")
    gram = S.T @ S
    if torch.linalg.matrix_rank(gram) < S.shape[1]:
        raise ValueError(f"the {S.shape[1]} basis columns are linearly dependent")
    P = S @ torch.linalg.solve(gram, S.T)
    gp = P @ g @ P.T
    phi = float((g - gp).norm() / g.norm())
    dp, dr = gp - gp.mean(), ref - ref.mean()
    denom = float(dp.norm() * dr.norm())
    r_proj = float((dp * dr).sum()) / denom if denom > 0 else 0.0
    return {"r_proj": r_proj, "phi": phi}
