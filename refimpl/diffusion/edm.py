r"""EDM: the E(3)-equivariant diffusion model for 3-D molecules, with the two
Gaussian-shortcut changes (truncated training and a truncated sampling start) as
options.

**Training** (ε-parametrisation, EDM's "l2" loss :cite:`hoogeboom2022edm`,
:cite:`ho2020ddpm`): draw :math:`t \sim \mathcal{U}\{0,\dots,t_{\max}\}`
(:math:`t_{\max} = T` for EDM, :math:`T^*` for the truncated model of
:cite:`qu2025shortening`), :math:`z_t = \alpha_t z_0 + \sigma_t\varepsilon` and

.. math::
    \mathcal{L} = \tfrac12\,
        \frac{\lVert \varepsilon - \hat\varepsilon(z_t, t/T)\rVert^2}
                             {(D+K)\,N_{\mathrm{pad}}},

where for :math:`t = 0` only the coordinate part enters (EDM's reconstruction term;
its type part carries no gradient). :math:`N_{\mathrm{pad}}` is the padded atom
count of the batch (EDM's normalisation); ``loss_normalization="molecule"`` uses
each molecule's own :math:`N` instead.

**Ancestral reverse step** :math:`s < t` (a stride :math:`t - s > 1` is allowed):

.. math::
    z_s = \frac{z_t}{\alpha_{t|s}} - \frac{\sigma^2_{t|s}}{\alpha_{t|s}\,\sigma_t}\,
          \hat\varepsilon(z_t, t/T) + \frac{\sigma_{t|s}\,\sigma_s}{\sigma_t}\,\xi,
    \qquad \xi \sim \mathcal{N}(0, I) \text{ on the subspace},

followed by a re-projection to zero mean; ``method="ddim"`` uses the deterministic
step :math:`z_s = \alpha_s \hat z_0 + \sigma_s \hat\varepsilon` of DDIM
:cite:`song2021ddim`. **Decoder** at :math:`t=0`: one more network call,
:math:`x = (z_{0,x} - \sigma_0\hat\varepsilon_x)/\alpha_0 + (\sigma_0/\alpha_0)\,\xi`
and atom types by the argmax of :math:`z_{0,h}` over the :math:`K` type channels
(all of them: EDM's slice drops the last type when charges are off).

Every network call increments :attr:`EquivariantDiffusion.nfe`; a sampling run
started at step :math:`t_0` with stride :math:`k` costs :math:`t_0/k + 1` calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

from refimpl.checkpoint import register_model

from .egnn import EGNNDynamics
from .features import decode_types, encode
from .forward import q_sample, sample_noise
from .schedules import NoiseSchedule
from .subspace import center

__all__ = [
    "EquivariantDiffusion",
    "SampleResult",
    "timestep_sequence",
    "node_mask_from_counts",
]


def node_mask_from_counts(
    num_atoms: Tensor, n_max: Optional[int] = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """``[B, N_max, 1]`` mask whose row ``b`` has ``num_atoms[b]`` leading ones."""
    num_atoms = torch.as_tensor(num_atoms)
    if num_atoms.dim() != 1 or num_atoms.is_floating_point():
        raise ValueError("num_atoms must be a 1-D integer tensor")
    if num_atoms.numel() == 0:
        raise ValueError("num_atoms is empty: nothing to sample")
    if int(num_atoms.min()) < 2:
        raise ValueError(
            f"num_atoms: every molecule needs at least 2 atoms, got min "
            f"{int(num_atoms.min())}"
        )
    n_max = int(num_atoms.max()) if n_max is None else int(n_max)
    if n_max < int(num_atoms.max()):
        raise ValueError(f"n_max={n_max} is smaller than the largest molecule")
    ar = torch.arange(n_max, device=num_atoms.device)
    return (ar.unsqueeze(0) < num_atoms.unsqueeze(1)).to(dtype).unsqueeze(-1)


def timestep_sequence(
    start_t: int, *, stride: Optional[int] = None, n_steps: Optional[int] = None
) -> list[int]:
    r"""The decreasing steps :math:`t_0 > t_1 > \dots > 0` a sampler visits.

    Args:
        start_t: first step :math:`t_0` (:math:`T`, or :math:`T^*` for the shortcut).
        stride: uniform stride :math:`k`; it must divide ``start_t`` (the authors'
            code only checked that it divides 1000, so its first step could start
            from the wrong :math:`t`).
        n_steps: alternatively, the number of network-evaluated steps: ``n_steps +
            1`` integer points rounded from ``linspace(start_t, 0)`` (used to match
            the NFE of another sampler exactly).
    """
    if not isinstance(start_t, int) or start_t < 1:
        raise ValueError(f"start_t must be a positive integer, got {start_t!r}")
    if stride is not None and n_steps is not None:
        raise ValueError("give stride or n_steps, not both")
    if n_steps is not None:
        if not isinstance(n_steps, int) or not 1 <= n_steps <= start_t:
            raise ValueError(
                f"n_steps must be an integer in [1, start_t={start_t}], got {n_steps!r}"
            )
        ts = torch.linspace(start_t, 0, n_steps + 1, dtype=torch.float64).round().long()
        return [int(t) for t in ts]
    stride = 1 if stride is None else stride
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    if start_t % stride:
        raise ValueError(
            f"stride k={stride} must divide the start step {start_t} "
            "(otherwise the chain would not start at that step)"
        )
    return list(range(start_t, -1, -stride))


@dataclass
class SampleResult:
    """Generated molecules (dense) and their cost.

    Attributes:
        x: coordinates ``[B, N, D]`` (zero-mean, zero on padding).
        types: atom classes ``[B, N]`` (``-1`` on padding).
        node_mask: ``[B, N, 1]``.
        nfe: network evaluations per molecule.
        chain: the states :math:`z_{t_0}, \\dots, z_0` (``[S, B, N, F]``) when asked.
    """

    x: Tensor
    types: Tensor
    node_mask: Tensor
    nfe: int
    chain: Optional[Tensor] = None

    @property
    def num_atoms(self) -> Tensor:
        return self.node_mask.sum(dim=(1, 2)).long()


class DiffusionSampler(nn.Module):
    r"""EDM's VP schedule, preprocessing and samplers around an ε-prediction network.

    Subclasses provide :meth:`phi`, one network evaluation
    :math:`\hat\varepsilon(z_t, t/T)` on ``z = [x, h]``;
    :class:`EquivariantDiffusion` (this package's EGNN) and
    :class:`~refimpl.diffusion.adapter.EpsilonModelAdapter` (any network with EDM's
    interface) are the two in this package. Everything else — the ancestral and DDIM
    reverse steps, the decoder, full, strided and truncated sampling, the NFE
    counter — lives here and is shared.

    Args:
        num_types: number of atom classes :math:`K`.
        n_dims: spatial dimension.
        T: number of diffusion steps.
        schedule, precision: the noise schedule (EDM: ``"polynomial_2"``, 1e-5).
        center_types: the network was trained on per-molecule centred type one-hots
            with zero-mean type noise (the Gaussian-shortcut recipe); the samplers
            then draw zero-mean type noise and re-centre all of :math:`z` every step.
        type_scale: EDM's normalisation factor of the one-hot (4).
    """

    def __init__(
        self,
        num_types: int,
        n_dims: int = 3,
        T: int = 1000,
        schedule: str = "polynomial_2",
        precision: float = 1e-5,
        center_types: bool = True,
        type_scale: float = 4.0,
    ):
        super().__init__()
        for name, v in dict(num_types=num_types, n_dims=n_dims).items():
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{type(self).__name__}: {name} must be a positive "
                                 f"integer, got {v!r}")
        if type_scale <= 0:
            raise ValueError(f"type_scale must be positive, got {type_scale}")
        self.num_types, self.n_dims = num_types, n_dims
        self.center_types, self.type_scale = center_types, float(type_scale)
        self.schedule = NoiseSchedule(T, schedule, precision)
        self.nfe = 0

    @property
    def T(self) -> int:
        return self.schedule.T

    def phi(self, z: Tensor, t: Union[Tensor, int], node_mask: Tensor) -> Tensor:
        r"""One network evaluation :math:`\hat\varepsilon(z_t, t/T)`,
        ``[B, N, D + K]`` (implemented by subclasses; must increment :attr:`nfe`)."""
        raise NotImplementedError

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        """The first parameter's (else the first floating buffer's outside the
        schedule) device and dtype; the schedule's device and the default dtype for
        a network without either."""
        p = next(self.parameters(), None)
        if p is None:
            p = next(
                (b for n, b in self.named_buffers()
                 if not n.startswith("schedule.") and b.is_floating_point()),
                None,
            )
        if p is None:
            return self.schedule.gamma_table.device, torch.get_default_dtype()
        return p.device, p.dtype

    def encode(self, x: Tensor, onehot: Tensor, node_mask: Tensor) -> Tensor:
        """The preprocessed state :math:`z_0 = [x, h]` ``[B, N, D+K]``."""
        if onehot.shape[-1] != self.num_types:
            raise ValueError(
                f"onehot must have {self.num_types} type channels, got "
                f"{onehot.shape[-1]}"
            )
        if x.shape[-1] != self.n_dims:
            raise ValueError(
                f"x must have {self.n_dims} coordinates, got {x.shape[-1]}"
            )
        xc, h = encode(
            x,
            onehot,
            node_mask,
            center_types=self.center_types,
            type_scale=self.type_scale,
        )
        return torch.cat([xc, h], dim=-1)

    def _noise(
        self, like: Tensor, node_mask: Tensor, generator: Optional[torch.Generator]
    ) -> Tensor:
        return sample_noise(
            like.shape,
            node_mask,
            self.n_dims,
            center_features=self.center_types,
            generator=generator,
            dtype=like.dtype,
        )

    def _project(self, z: Tensor, node_mask: Tensor) -> Tensor:
        if self.center_types:
            return center(z, node_mask, validate=False)
        x = center(z[..., : self.n_dims], node_mask, validate=False)
        return torch.cat([x, z[..., self.n_dims :] * node_mask], dim=-1)

    def posterior(
        self,
        z_t: Tensor,
        t: int,
        s: int,
        node_mask: Tensor,
        eps_hat: Optional[Tensor] = None,
    ) -> tuple[Tensor, Tensor]:
        r"""Mean and standard deviation of the ancestral step
        :math:`p(z_s \mid z_t)`."""
        if eps_hat is None:
            eps_hat = self.phi(
                z_t, torch.full((z_t.shape[0],), t, device=z_t.device), node_mask
            )
        alpha_ts, sigma2_ts = self.schedule.transition(t, s)
        sigma_t, sigma_s = self.schedule.sigma(t), self.schedule.sigma(s)
        mu = (
            z_t / alpha_ts.to(z_t.dtype)
            - (sigma2_ts / (alpha_ts * sigma_t)).to(z_t.dtype) * eps_hat
        )
        sigma_q = (sigma2_ts.sqrt() * sigma_s / sigma_t).to(z_t.dtype)
        return mu, sigma_q

    def reverse_step(
        self,
        z_t: Tensor,
        t: int,
        s: int,
        node_mask: Tensor,
        *,
        method: str = "ancestral",
        generator: Optional[torch.Generator] = None,
    ) -> Tensor:
        r"""One reverse step :math:`z_t \to z_s` (:math:`s < t`), re-projected."""
        tt = torch.full((z_t.shape[0],), t, device=z_t.device)
        eps_hat = self.phi(z_t, tt, node_mask)
        if method == "ancestral":
            mu, sigma_q = self.posterior(z_t, t, s, node_mask, eps_hat)
            z_s = mu + sigma_q * self._noise(z_t, node_mask, generator)
        elif method == "ddim":
            a_t, s_t = (
                self.schedule.alpha(t).to(z_t.dtype),
                self.schedule.sigma(t).to(z_t.dtype),
            )
            a_s, s_s = (
                self.schedule.alpha(s).to(z_t.dtype),
                self.schedule.sigma(s).to(z_t.dtype),
            )
            z0_hat = (z_t - s_t * eps_hat) / a_t
            z_s = a_s * z0_hat + s_s * eps_hat
        else:
            raise ValueError(f"method must be 'ancestral' or 'ddim', got {method!r}")
        return self._project(z_s * node_mask, node_mask)

    def decode(
        self,
        z0: Tensor,
        node_mask: Tensor,
        *,
        generator: Optional[torch.Generator] = None,
    ) -> tuple[Tensor, Tensor]:
        """EDM's decoder :math:`p(x, h \\mid z_0)`: coordinates and atom classes."""
        zeros = torch.zeros(z0.shape[0], dtype=torch.long, device=z0.device)
        eps_hat = self.phi(z0, zeros, node_mask)
        a0 = self.schedule.alpha(0).to(z0.dtype)
        s0 = self.schedule.sigma(0).to(z0.dtype)
        mu_x = (z0[..., : self.n_dims] - s0 * eps_hat[..., : self.n_dims]) / a0
        noise = sample_noise(
            mu_x.shape,
            node_mask,
            self.n_dims,
            center_features=True,
            generator=generator,
            dtype=z0.dtype,
        )
        x = center((mu_x + s0 / a0 * noise) * node_mask, node_mask, validate=False)
        types = decode_types(
            z0[..., self.n_dims : self.n_dims + self.num_types], node_mask
        )
        return x, types

    @torch.no_grad()
    def sample(
        self,
        num_atoms: Tensor,
        *,
        start_t: Optional[int] = None,
        start_variance: Union[float, Sequence[float]] = 1.0,
        start_type_mean: Optional[Sequence[float]] = None,
        stride: Optional[int] = None,
        n_steps: Optional[int] = None,
        timesteps: Optional[Sequence[int]] = None,
        method: str = "ancestral",
        generator: Optional[torch.Generator] = None,
        return_chain: bool = False,
        dtype: Optional[torch.dtype] = None,
    ) -> SampleResult:
        r"""Generate molecules with the given atom counts.

        EDM: ``start_t=T`` and ``start_variance=1``. The Gaussian shortcut:
        ``start_t=T*`` and ``start_variance`` :math:`=\tilde v_{T^*}` (a float: the
        scalar start of the authors; a pair :math:`(\tilde v^x_{T^*},
        \tilde v^h_{T^*})`: the per-channel project variant).

        Args:
            num_atoms: atom counts ``[B]`` (each ≥ 2).
            start_t: first step (default ``T``).
            start_variance: variance of the zero-mean Gaussian start (see above).
            start_type_mean: for a model whose types are *not* centred
                (``center_types=False``), the mean of the type channels of the
                start, ``K`` values in normalised units (see
                :func:`~refimpl.diffusion.shortcut.sample_shortcut`); added on real
                atoms. Not allowed for a centred model (its start has mean zero).
            stride, n_steps, timesteps: the step sequence (see
                :func:`timestep_sequence`); ``timesteps`` gives it explicitly.
            method: ``"ancestral"`` (EDM) or ``"ddim"`` (deterministic).
            generator: seeded generator on the model's device.
            return_chain: also return every intermediate state.
            dtype: computation dtype (default: the parameters' dtype).
        """
        device, default_dtype = self._device_dtype()
        dtype = dtype or default_dtype
        start_t = self.T if start_t is None else start_t
        if not isinstance(start_t, int) or not 1 <= start_t <= self.T:
            raise ValueError(
                f"start_t must be an integer in [1, T={self.T}], got {start_t!r}"
            )
        if timesteps is None:
            steps = timestep_sequence(start_t, stride=stride, n_steps=n_steps)
        else:
            steps = [int(t) for t in timesteps]
            if (
                steps[0] != start_t
                or steps[-1] != 0
                or any(a <= b for a, b in zip(steps, steps[1:]))
            ):
                raise ValueError("timesteps must decrease strictly from start_t to 0")
        node_mask = node_mask_from_counts(
            torch.as_tensor(num_atoms).to(device), dtype=dtype
        )
        B, N = node_mask.shape[:2]
        F = self.n_dims + self.num_types
        v = torch.as_tensor(start_variance, dtype=torch.float64).reshape(-1)
        if (
            v.numel() not in (1, 2)
            or not bool(torch.isfinite(v).all())
            or bool((v <= 0).any())
        ):
            raise ValueError(
                "start_variance must be one positive number or a pair "
                f"(v_x, v_h), got {start_variance!r}"
            )
        scale = torch.ones(F, dtype=dtype, device=device)
        scale[: self.n_dims] = float(v[0].sqrt())
        scale[self.n_dims :] = float(v[-1].sqrt())
        z = (
            self._noise(
                torch.empty(B, N, F, dtype=dtype, device=device), node_mask, generator
            )
            * scale
        )
        if start_type_mean is not None:
            if self.center_types:
                raise ValueError(
                    "start_type_mean is for models with uncentred types; this model "
                    "centres its types (center_types=True), so its start has mean 0"
                )
            mu = torch.as_tensor(start_type_mean, dtype=dtype, device=device)
            if mu.shape != (self.num_types,) or not bool(torch.isfinite(mu).all()):
                raise ValueError(
                    f"start_type_mean must hold {self.num_types} finite numbers, "
                    f"got {start_type_mean!r}"
                )
            z = torch.cat([z[..., : self.n_dims], z[..., self.n_dims :] + mu], -1)
            z = z * node_mask
        chain = [z] if return_chain else None
        nfe0 = self.nfe
        for t, s in zip(steps[:-1], steps[1:]):
            z = self.reverse_step(
                z, t, s, node_mask, method=method, generator=generator
            )
            if chain is not None:
                chain.append(z)
        x, types = self.decode(z, node_mask, generator=generator)
        if not bool(torch.isfinite(x).all()):
            raise FloatingPointError("sampling produced non-finite coordinates")
        return SampleResult(
            x=x,
            types=types,
            node_mask=node_mask,
            nfe=self.nfe - nfe0,
            chain=torch.stack(chain) if chain is not None else None,
        )


@register_model
class EquivariantDiffusion(DiffusionSampler):
    r"""EDM with an EGNN noise predictor, a fixed VP schedule and samplers.

    Args:
        num_types: number of atom classes :math:`K` (QM9: 5 with H, 4 without).
        n_dims: spatial dimension (3).
        T: number of diffusion steps.
        schedule, precision: the noise schedule (EDM: ``"polynomial_2"``, 1e-5).
        hidden_nf: EGNN settings, with ``n_layers``, ``inv_sublayers``,
            ``attention``, ``tanh``, ``coords_range`` and ``norm_constant`` (see
            :class:`~.egnn.EGNNDynamics`).
        center_types: centre the type one-hots per molecule, draw zero-mean type
            noise, centre the network's type output and re-centre all of
            :math:`z` in every reverse step (the Gaussian-shortcut recipe; EDM:
            ``False``).
        type_scale: EDM's normalisation factor of the one-hot (4).
        loss_normalization: ``"padded"`` (EDM) or ``"molecule"``.
    """

    def __init__(
        self,
        num_types: int,
        n_dims: int = 3,
        T: int = 1000,
        schedule: str = "polynomial_2",
        precision: float = 1e-5,
        hidden_nf: int = 256,
        n_layers: int = 9,
        inv_sublayers: int = 1,
        attention: bool = True,
        tanh: bool = True,
        coords_range: float = 15.0,
        norm_constant: float = 1.0,
        center_types: bool = True,
        type_scale: float = 4.0,
        loss_normalization: str = "padded",
    ):
        for name, value in (("hidden_nf", hidden_nf), ("n_layers", n_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"EquivariantDiffusion: {name} must be a positive "
                                 f"integer, got {value!r}")
        if loss_normalization not in ("padded", "molecule"):
            raise ValueError(
                f"loss_normalization must be 'padded' or 'molecule', "
                f"got {loss_normalization!r}"
            )
        super().__init__(
            num_types, n_dims, T, schedule, precision, center_types, type_scale
        )
        self.loss_normalization = loss_normalization
        self.dynamics = EGNNDynamics(
            num_types,
            n_dims,
            hidden_nf,
            n_layers,
            inv_sublayers,
            attention,
            tanh,
            coords_range,
            norm_constant,
            center_h=center_types,
        )
        self._cfg = dict(
            num_types=num_types,
            n_dims=n_dims,
            T=T,
            schedule=schedule,
            precision=precision,
            hidden_nf=hidden_nf,
            n_layers=n_layers,
            inv_sublayers=inv_sublayers,
            attention=attention,
            tanh=tanh,
            coords_range=coords_range,
            norm_constant=norm_constant,
            center_types=center_types,
            type_scale=type_scale,
            loss_normalization=loss_normalization,
        )

    # ------------------------------------------------------------------ basics
    def config(self) -> dict:
        return dict(self._cfg)

    def reset_parameters(self) -> None:
        self.dynamics.reset_parameters()

    def extra_repr(self) -> str:
        return (
            f"num_types={self.num_types}, T={self.T}, "
            f"center_types={self.center_types}, "
            f"loss_normalization={self.loss_normalization!r}"
        )

    def phi(self, z: Tensor, t: Union[Tensor, int], node_mask: Tensor) -> Tensor:
        r"""One network evaluation :math:`\hat\varepsilon(z_t, t/T)` (counted in
        :attr:`nfe`)."""
        self.nfe += 1
        t = torch.as_tensor(t, device=z.device)
        tau = (t.to(z.dtype) / self.T).reshape(-1)
        eps_x, eps_h = self.dynamics(
            z[..., : self.n_dims], z[..., self.n_dims :], tau, node_mask
        )
        return torch.cat([eps_x, eps_h], dim=-1)

    # ---------------------------------------------------------------- training
    def sample_timesteps(
        self,
        batch_size: int,
        t_max: Optional[int] = None,
        *,
        device: Optional[torch.device] = None,
        generator: Optional[torch.Generator] = None,
    ) -> Tensor:
        r""":math:`t \sim \mathcal{U}\{0, \dots, t_{\max}\}` per molecule (``[B]``)."""
        t_max = self.T if t_max is None else t_max
        if not isinstance(t_max, int) or not 1 <= t_max <= self.T:
            raise ValueError(
                f"t_max must be an integer in [1, T={self.T}], got {t_max!r}"
            )
        return torch.randint(
            0, t_max + 1, (batch_size,), device=device, generator=generator
        )

    def forward(
        self,
        x: Tensor,
        onehot: Tensor,
        node_mask: Tensor,
        *,
        t_max: Optional[int] = None,
        t: Optional[Tensor] = None,
        generator: Optional[torch.Generator] = None,
        reduction: str = "mean",
    ) -> Tensor:
        r"""The training loss (see the module docstring).

        Args:
            x: coordinates ``[B, N, D]``; onehot: ``[B, N, K]``;
                node_mask: ``[B, N, 1]``.
            t_max: largest training step (``T`` for EDM, ``T*`` for truncated training).
            t: optional fixed steps ``[B]`` (tests, evaluation at a given ``t``).
            generator: optional generator for ``t`` and the noise.
            reduction: ``"mean"`` over molecules or ``"none"`` (``[B]``).
        """
        z0 = self.encode(x, onehot, node_mask)
        weight = next(self.parameters(), None)
        if (weight is not None and x.dtype != weight.dtype
                and not torch.is_autocast_enabled(x.device.type)):
            raise TypeError(
                f"x has dtype {x.dtype} but the model's parameters are {weight.dtype}; "
                f"pass x.to({weight.dtype}) (and onehot, node_mask) or convert the "
                f"model with .to({x.dtype})")
        B, N, F = z0.shape
        if B == 0:
            raise ValueError("EquivariantDiffusion got an empty batch (x of shape "
                             f"{tuple(x.shape)}); expected at least one molecule")
        if t is None:
            t = self.sample_timesteps(B, t_max, device=z0.device, generator=generator)
        else:
            t = torch.as_tensor(t, device=z0.device).reshape(-1)
            if t.numel() != B:
                raise ValueError(
                    f"t must hold one step per molecule ({B}), got {t.numel()}"
                )
        eps = self._noise(z0, node_mask, generator)
        zt = q_sample(self.schedule, z0, t, node_mask, eps)
        sq = (eps - self.phi(zt, t, node_mask)).pow(2) * node_mask
        err_x = sq[..., : self.n_dims].sum(dim=(1, 2))
        err = torch.where(t == 0, err_x, sq.sum(dim=(1, 2)))
        if self.loss_normalization == "padded":
            denom = torch.full_like(err, float(F * N))
        else:
            denom = node_mask.sum(dim=(1, 2)) * F
        loss = 0.5 * err / denom
        if reduction == "none":
            return loss
        if reduction != "mean":
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        return loss.mean()
