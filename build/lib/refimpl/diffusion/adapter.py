r"""Run this package's samplers (EDM, strided, DDIM, Gaussian shortcut) on *any*
ε-prediction network with EDM's interface.

EDM :cite:`hoogeboom2022edm` and the models built on it (GeoLDM, EquiFM's EDM
baselines, the Gaussian shortcut of :cite:`qu2025shortening`) share one interface:
a network

.. math::
    (\hat\varepsilon_x, \hat\varepsilon_h) = f(x_t, h_t, \mathrm{node\_mask}, \tau),
    \qquad \tau = t / T,

that takes the noised coordinates ``[B, N, 3]``, the noised (scaled one-hot) atom
types ``[B, N, K]``, the node mask ``[B, N, 1]`` and the normalised time ``[B]``,
and predicts the noise of both channels. :class:`EpsilonModelAdapter` wraps such a
callable (an ``nn.Module`` or a plain function) into a
:class:`~refimpl.diffusion.edm.DiffusionSampler`, so that ``adapter.sample(...)``
and :func:`~refimpl.diffusion.shortcut.sample_shortcut` work unchanged; the network
is evaluated once per reverse step and counted in ``adapter.nfe``.

What the adapter needs to know about the network (no hidden defaults):

* ``T``, the schedule and its precision: those the network was trained with;
* ``centered_types``: whether its training centred the type one-hots per molecule
  (Gaussian shortcut) or not (EDM). A non-centred model's type channels have mean
  :math:`\alpha_t \mu_h` at step :math:`t`, so a shortcut start needs that mean
  (``type_mean`` in :func:`~refimpl.diffusion.shortcut.sample_shortcut`, the
  *type-mean correction*);
* ``time_input``: ``"normalized"`` (:math:`t/T`, EDM) or ``"integer"`` (:math:`t`).

The adapter projects :math:`\hat\varepsilon_x` to the zero-mean subspace (EDM's
network does this itself; a network that does not would otherwise push the chain
off the subspace) and, for a centred model, :math:`\hat\varepsilon_h` as well.
Differences from EDM's released code: EDM's dynamics takes ``(t, xh, node_mask,
edge_mask, context)`` with ``xh`` concatenated; wrap it with a two-line function
(see :class:`EpsilonModelAdapter`).
"""

from __future__ import annotations

from typing import Callable, Protocol, Union, runtime_checkable

import torch
from torch import Tensor, nn

from .edm import DiffusionSampler
from .subspace import center

__all__ = ["EpsilonModel", "EpsilonModelAdapter"]


@runtime_checkable
class EpsilonModel(Protocol):
    """A noise predictor with EDM's interface: ``f(x, h, node_mask, t)`` returns
    ``(eps_x, eps_h)`` (shapes of ``x`` and ``h``) or one ``[B, N, D + K]`` tensor;
    ``t`` is ``[B]`` (normalised :math:`t/T` unless stated otherwise)."""

    def __call__(
        self, x: Tensor, h: Tensor, node_mask: Tensor, t: Tensor
    ) -> Union[Tensor, tuple[Tensor, Tensor]]: ...


class EpsilonModelAdapter(DiffusionSampler):
    r"""A :class:`~refimpl.diffusion.edm.DiffusionSampler` around any
    :class:`EpsilonModel`.

    Args:
        network: the ε-network (``nn.Module`` — registered as a submodule, so
            ``.to(device)`` moves it — or any callable).
        num_types: :math:`K`, the type channels the network expects.
        T: diffusion steps of its training.
        centered_types: ``True`` if it was trained on centred types with zero-mean
            type noise (Gaussian shortcut), ``False`` for EDM's uncentred types.
        n_dims, schedule, precision, type_scale: as in EDM (3, ``"polynomial_2"``,
            1e-5, 4).
        time_input: ``"normalized"`` (:math:`t/T`) or ``"integer"``.

    Example (wrapping EDM's released ``EGNN_dynamics_QM9``, whose forward is
    ``_forward(t, xh, node_mask, edge_mask, context)``)::

        def eps(x, h, node_mask, t):
            B, N, _ = x.shape
            edge_mask = (node_mask @ node_mask.transpose(1, 2)).view(B, N * N, 1)
            return edm_dynamics._forward(t.view(B, 1), torch.cat([x, h], -1),
                                         node_mask, edge_mask, None)

        model = EpsilonModelAdapter(eps, num_types=5, T=1000, centered_types=False)
        res = model.sample(num_atoms)                     # EDM, NFE = T + 1
    """

    def __init__(
        self,
        network: Union[nn.Module, Callable],
        num_types: int,
        *,
        T: int,
        centered_types: bool,
        n_dims: int = 3,
        schedule: str = "polynomial_2",
        precision: float = 1e-5,
        type_scale: float = 4.0,
        time_input: str = "normalized",
    ):
        if not callable(network):
            raise TypeError(
                f"network must be callable f(x, h, node_mask, t), got "
                f"{type(network).__name__}"
            )
        if not isinstance(centered_types, bool):
            raise ValueError(
                f"centered_types must be True or False, got {centered_types!r}"
            )
        if time_input not in ("normalized", "integer"):
            raise ValueError(
                f"time_input must be 'normalized' or 'integer', got {time_input!r}"
            )
        super().__init__(
            num_types, n_dims, T, schedule, precision, centered_types, type_scale
        )
        if isinstance(network, nn.Module):
            self.network = network
        else:
            self._fn = network
        self.time_input = time_input

    @property
    def _net(self) -> Callable:
        return self.network if "network" in self._modules else self._fn

    def phi(self, z: Tensor, t: Union[Tensor, int], node_mask: Tensor) -> Tensor:
        self.nfe += 1
        B = z.shape[0]
        t = torch.as_tensor(t, device=z.device).reshape(-1)
        if t.numel() == 1:
            t = t.expand(B)
        tau = t.to(z.dtype) / self.T if self.time_input == "normalized" else t
        x, h = z[..., : self.n_dims], z[..., self.n_dims :]
        out = self._net(x, h, node_mask, tau)
        if isinstance(out, (tuple, list)):
            if len(out) != 2:
                raise ValueError(
                    f"the network returned {len(out)} tensors; expected "
                    "(eps_x, eps_h) or one [B, N, D + K] tensor"
                )
            out = torch.cat([out[0], out[1]], dim=-1)
        if not isinstance(out, Tensor) or out.shape != z.shape:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"the network must predict noise of shape {tuple(z.shape)} "
                f"([B, N, {self.n_dims} + {self.num_types}]), got {got}"
            )
        out = out * node_mask
        if self.center_types:
            return center(out, node_mask, validate=False)
        eps_x = center(out[..., : self.n_dims], node_mask, validate=False)
        return torch.cat([eps_x, out[..., self.n_dims :]], dim=-1)

    def extra_repr(self) -> str:
        return (
            f"num_types={self.num_types}, T={self.T}, "
            f"centered_types={self.center_types}, time_input={self.time_input!r}"
        )
