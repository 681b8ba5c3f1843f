r"""The Gaussian shortcut: truncated training and sampling from the characteristic
step :math:`T^*` :cite:`qu2025shortening`.

As released, the method changes EDM in three places, all available in
:class:`~refimpl.diffusion.edm.EquivariantDiffusion`:

1. atom-type one-hots are centred per molecule (``center_types=True``);
2. training draws :math:`t \sim \mathcal{U}\{0,\dots,T^*\}` (``model(..., t_max=T*)``);
3. sampling starts at :math:`T^*` from :math:`\mathcal{N}(0, \tilde v_{T^*} I)` on the
   zero-mean subspace of *both* channels, :math:`\tilde v_t = \alpha_t^2\hat v +
   \sigma_t^2`, and runs the unchanged reverse chain: NFE :math:`= T^*/k + 1` for a
   stride :math:`k` (which must divide :math:`T^*`).

The scalar start (one :math:`\hat v` for coordinates and types) is the authors'
choice; a pair :math:`(\hat v_x, \hat v_h)` gives the per-channel project variant.
Nothing has a hidden default: :math:`T^*` and :math:`\hat v` are always passed.

**Any EDM-style model.** :func:`sample_shortcut` takes any
:class:`~refimpl.diffusion.edm.DiffusionSampler`: this package's model, or any
ε-network wrapped by :class:`~refimpl.diffusion.adapter.EpsilonModelAdapter`.
**Type-mean correction.** A model trained *without* type centring (EDM) sees type
channels whose mean at step :math:`t` is :math:`\alpha_t \mu_h`, with
:math:`\mu_h` the atom-type frequencies divided by the type scale (4); a zero-mean
start would be biased in every type channel. For such a model ``type_mean`` (the
frequencies) is required and the start becomes
:math:`\mathcal{N}(\alpha_{T^*}\mu_h, \tilde v_{T^*} I)` on the type channels (the
alternative that the spec, §4.2, describes; :math:`\hat v` is then the variance
about that mean).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from .edm import DiffusionSampler, SampleResult
from .reference import reference_variance

__all__ = ["shortcut_start_variance", "shortcut_type_mean", "sample_shortcut"]


def _check_model(model) -> None:
    if not isinstance(model, DiffusionSampler):
        raise TypeError(
            "model must be a DiffusionSampler (EquivariantDiffusion, or any "
            "ε-network wrapped by refimpl.diffusion.EpsilonModelAdapter), got "
            f"{type(model).__name__}"
        )


def _check_t_star(model: DiffusionSampler, t_star: int) -> None:
    if not isinstance(t_star, int) or not 1 <= t_star <= model.T:
        raise ValueError(
            f"t_star must be an integer in [1, T={model.T}], got {t_star!r}"
        )


def shortcut_start_variance(
    model: DiffusionSampler, t_star: int, v_hat: Union[float, Sequence[float]]
) -> list[float]:
    r""":math:`\tilde v_{T^*}` (one value, or one per channel for a pair ``v_hat``)."""
    _check_model(model)
    _check_t_star(model, t_star)
    v = torch.as_tensor(v_hat, dtype=torch.float64).reshape(-1)
    if v.numel() not in (1, 2):
        raise ValueError(
            f"v_hat must be one number or a pair (v_x, v_h), got {v_hat!r}"
        )
    return [float(reference_variance(model.schedule, t_star, float(vi))) for vi in v]


def shortcut_type_mean(
    model: DiffusionSampler, t_star: int, type_mean: Sequence[float]
) -> list[float]:
    r"""The type-channel mean :math:`\alpha_{T^*}\,\mu_h` of the start of a model
    with uncentred types; ``type_mean`` = the atom-type frequencies (``K`` values in
    [0, 1], e.g. :func:`~refimpl.diffusion.metrics.type_frequencies` of the training
    set)."""
    _check_model(model)
    _check_t_star(model, t_star)
    mu = torch.as_tensor(type_mean, dtype=torch.float64).reshape(-1)
    if (
        mu.numel() != model.num_types
        or not bool(torch.isfinite(mu).all())
        or bool((mu < 0).any() | (mu > 1).any())
    ):
        raise ValueError(
            f"type_mean must hold the {model.num_types} atom-type frequencies "
            f"(numbers in [0, 1]), got {type_mean!r}"
        )
    alpha = float(model.schedule.alpha(t_star))
    return [alpha * float(m) / model.type_scale for m in mu]


def sample_shortcut(
    model: DiffusionSampler,
    num_atoms: Tensor,
    *,
    t_star: int,
    v_hat: Union[float, Sequence[float]],
    type_mean: Optional[Sequence[float]] = None,
    stride: int = 1,
    method: str = "ancestral",
    generator: Optional[torch.Generator] = None,
    **kwargs,
) -> SampleResult:
    """Sample from :math:`T^*` (see the module docstring).

    Args:
        model: a :class:`~refimpl.diffusion.edm.DiffusionSampler`.
        num_atoms: atom counts ``[B]``.
        t_star: the start step :math:`T^*`.
        v_hat: the data variance (one value, or ``(v_x, v_h)``).
        type_mean: atom-type frequencies; required for a model with uncentred
            types (the type-mean correction), not allowed for a centred one.
        stride, method, generator, ``**kwargs``: passed to ``model.sample``.

    NFE = ``t_star / stride + 1``."""
    _check_model(model)
    v = shortcut_start_variance(model, t_star, v_hat)
    if model.center_types and type_mean is not None:
        raise ValueError(
            "type_mean is only for models with uncentred types; this model centres "
            "its types, so its start has mean zero"
        )
    if not model.center_types:
        if type_mean is None:
            raise ValueError(
                "this model does not centre its atom types (center_types=False): its "
                "type channels have mean alpha_t * frequencies / type_scale, so "
                "sample_shortcut needs type_mean (the atom-type frequencies of the "
                "training set) for the start"
            )
        kwargs["start_type_mean"] = shortcut_type_mean(model, t_star, type_mean)
    return model.sample(
        num_atoms,
        start_t=t_star,
        start_variance=v,
        stride=stride,
        method=method,
        generator=generator,
        **kwargs,
    )
