r"""The variance-preserving forward process :math:`q(z_t \mid z_0)`.

.. math::
    q(z_t \mid z_0) = \mathcal{N}\bigl(z_t;\ \alpha_t z_0,\ \sigma_t^2 I\bigr)
    \quad\text{on the zero-mean subspace(s)}, \qquad \alpha_t^2 + \sigma_t^2 = 1,

so :math:`z_t = \alpha_t z_0 + \sigma_t \varepsilon` with :math:`\varepsilon` a
standard Gaussian on the subspace (EDM :cite:`hoogeboom2022edm`, DDPM
:cite:`ho2020ddpm`). With zero-mean data of per-dimension variance :math:`\hat v`,
the marginal has mean 0 and per-dimension variance :math:`\alpha_t^2 \hat v +
\sigma_t^2` (see :mod:`refimpl.diffusion.reference`).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .schedules import NoiseSchedule
from .subspace import check_node_mask, sample_zero_mean_gaussian

__all__ = ["q_sample", "sample_noise"]


def sample_noise(
    shape,
    node_mask: Tensor,
    n_dims: int,
    *,
    center_features: bool,
    generator: Optional[torch.Generator] = None,
    dtype: Optional[torch.dtype] = None,
) -> Tensor:
    r"""Noise for ``z = [x, h]``: zero-mean on the first ``n_dims`` channels (always)
    and on the rest when ``center_features`` (the Gaussian-shortcut recipe), else an
    ordinary masked standard Gaussian on the rest (EDM)."""
    shape = tuple(int(s) for s in shape)
    if center_features:
        return sample_zero_mean_gaussian(
            shape, node_mask, generator=generator, dtype=dtype
        )
    eps_x = sample_zero_mean_gaussian(
        shape[:2] + (n_dims,), node_mask, generator=generator, dtype=dtype
    )
    eps_h = torch.randn(
        shape[:2] + (shape[2] - n_dims,),
        generator=generator,
        device=node_mask.device,
        dtype=dtype or node_mask.dtype,
    )
    return torch.cat([eps_x, eps_h * node_mask], dim=-1)


def q_sample(
    schedule: NoiseSchedule, z0: Tensor, t: Tensor, node_mask: Tensor, eps: Tensor
) -> Tensor:
    r""":math:`z_t = \alpha_t z_0 + \sigma_t\varepsilon` for one step per molecule.

    Args:
        schedule: the noise schedule.
        z0: clean data ``[B, N, F]`` (zero-mean, zero on padding).
        t: integer steps ``[B]`` (or ``[B, 1]``).
        node_mask: ``[B, N, 1]``.
        eps: the noise ``[B, N, F]`` (see :func:`sample_noise`).
    """
    check_node_mask(node_mask, z0)
    if eps.shape != z0.shape:
        raise ValueError(
            f"eps has shape {tuple(eps.shape)}, expected {tuple(z0.shape)}"
        )
    t = torch.as_tensor(t).reshape(-1)
    if t.numel() != z0.shape[0]:
        raise ValueError(
            f"t must hold one step per molecule ({z0.shape[0]}), got {t.numel()}"
        )
    a = schedule.alpha(t).to(z0.dtype).view(-1, 1, 1)
    s = schedule.sigma(t).to(z0.dtype).view(-1, 1, 1)
    return (a * z0 + s * eps) * node_mask
