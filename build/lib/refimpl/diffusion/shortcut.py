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
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from .edm import EquivariantDiffusion, SampleResult
from .reference import reference_variance

__all__ = ["shortcut_start_variance", "sample_shortcut"]


def shortcut_start_variance(
    model: EquivariantDiffusion, t_star: int, v_hat: Union[float, Sequence[float]]
) -> list[float]:
    r""":math:`\tilde v_{T^*}` (one value, or one per channel for a pair ``v_hat``)."""
    if not isinstance(t_star, int) or not 1 <= t_star <= model.T:
        raise ValueError(
            f"t_star must be an integer in [1, T={model.T}], got {t_star!r}"
        )
    v = torch.as_tensor(v_hat, dtype=torch.float64).reshape(-1)
    if v.numel() not in (1, 2):
        raise ValueError(
            f"v_hat must be one number or a pair (v_x, v_h), got {v_hat!r}"
        )
    return [float(reference_variance(model.schedule, t_star, float(vi))) for vi in v]


def sample_shortcut(
    model: EquivariantDiffusion,
    num_atoms: Tensor,
    *,
    t_star: int,
    v_hat: Union[float, Sequence[float]],
    stride: int = 1,
    method: str = "ancestral",
    generator: Optional[torch.Generator] = None,
    **kwargs,
) -> SampleResult:
    """Sample from :math:`T^*` (see the module docstring).

    NFE = ``t_star / stride + 1``."""
    v = shortcut_start_variance(model, t_star, v_hat)
    return model.sample(
        num_atoms,
        start_t=t_star,
        start_variance=v,
        stride=stride,
        method=method,
        generator=generator,
        **kwargs,
    )
