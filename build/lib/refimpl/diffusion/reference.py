r"""The closed-form Gaussian reference of the Gaussian-shortcut method.

With every channel centred, the forward marginal at step :math:`t` has mean zero
and per-dimension variance

.. math::
    \tilde v_t = \alpha_t^2\,\hat v + \sigma_t^2 = 1 - \alpha_t^2\,(1 - \hat v),

where :math:`\hat v` is the data variance per subspace dimension
:cite:`qu2025shortening`. The shortcut sampler starts the reverse chain at
:math:`T^*` from :math:`\mathcal{N}(0, \tilde v_{T^*} I)` on the zero-mean subspace.

**Estimators of** :math:`\hat v` (``z`` = centred, normalised data of one
molecule, :math:`N` real atoms, :math:`F` channels):

* ``"unbiased_subspace"`` (default): :math:`\lVert z\rVert^2/((N-1)F)` averaged over
  molecules — the second moment per subspace dimension, so that
  :math:`\mathcal{N}(0, \tilde v_t I)` has exactly the second moment of :math:`q_t`;
* ``"pooled"``: :math:`\sum\lVert z\rVert^2 / \sum (N-1)F`;
* ``"mean_square"``: the mean of the :math:`NF` squared entries, averaged;
* ``"rms"``: the *square root* of the mean square, averaged — what the authors'
  released code uses (a standard deviation where a variance is needed). Offered
  only to reproduce that code; never the default.
"""

from __future__ import annotations

from typing import Union

import torch
from torch import Tensor

from .schedules import NoiseSchedule
from .subspace import check_node_mask, is_centered

__all__ = ["VARIANCE_ESTIMATORS", "data_variance", "reference_variance"]

VARIANCE_ESTIMATORS = ("unbiased_subspace", "pooled", "mean_square", "rms")


def data_variance(
    z: Tensor, node_mask: Tensor, estimator: str = "unbiased_subspace"
) -> Tensor:
    r"""The data variance :math:`\hat v` of centred molecules (a 0-d float64 tensor).

    Args:
        z: centred data ``[B, N, F]`` (one channel block or the concatenation).
        node_mask: ``[B, N, 1]``; every molecule needs at least 2 atoms.
        estimator: one of :data:`VARIANCE_ESTIMATORS`.
    """
    if estimator not in VARIANCE_ESTIMATORS:
        raise ValueError(
            f"unknown estimator {estimator!r}; valid: {VARIANCE_ESTIMATORS}"
        )
    n = check_node_mask(node_mask, z, min_atoms=2).double()
    if not bool(torch.isfinite(z).all()):
        raise ValueError("z contains NaN or infinite values")
    if not is_centered(z, node_mask, atol=1e-4):
        raise ValueError(
            "z must be centred per molecule (use refimpl.diffusion.center) and "
            "zero on padding"
        )
    F = z.shape[-1]
    sq = (z.double() * node_mask).pow(2).sum(dim=(1, 2))
    if estimator == "unbiased_subspace":
        return (sq / ((n - 1) * F)).mean()
    if estimator == "pooled":
        return sq.sum() / ((n - 1) * F).sum()
    ms = sq / (n * F)
    return ms.mean() if estimator == "mean_square" else ms.sqrt().mean()


def reference_variance(
    schedule: NoiseSchedule, t: Union[Tensor, int], v_hat: Union[float, Tensor]
) -> Tensor:
    r""":math:`\tilde v_t = \alpha_t^2 \hat v + \sigma_t^2` (float64, shaped like
    ``t``)."""
    v = torch.as_tensor(v_hat, dtype=torch.float64, device=schedule.gamma_table.device)
    if not bool(torch.isfinite(v).all()) or bool((v <= 0).any()):
        raise ValueError(f"v_hat must be positive and finite, got {v_hat!r}")
    return schedule.alpha2(t) * v + schedule.sigma2(t)
