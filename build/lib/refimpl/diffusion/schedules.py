r"""Noise schedules of the variance-preserving (VP) diffusion process.

EDM :cite:`hoogeboom2022edm` stores a schedule as the table
:math:`\gamma_t = -\log \mathrm{SNR}_t = \log(\sigma_t^2/\alpha_t^2)`,
:math:`t = 0,\dots,T`, so that

.. math::
    \alpha_t^2 = \operatorname{sigmoid}(-\gamma_t), \qquad
    \sigma_t^2 = \operatorname{sigmoid}(\gamma_t), \qquad
    \alpha_t^2 + \sigma_t^2 = 1.

Two tables are provided:

* ``polynomial_2`` (EDM's default): :math:`a_t = (1-(t/T)^2)^2`, step ratios
  :math:`a_t/a_{t-1}` clipped to :math:`[10^{-3}, 1]` and re-multiplied, then the
  precision map :math:`\alpha_t^2 = (1-2s)\,a_t + s` with :math:`s = 10^{-5}`,
  which bounds :math:`\mathrm{SNR}` to about :math:`[10^{-5}, 10^{5}]`. Since
  :math:`\alpha_t` depends only on :math:`t/T`, a truncation step carries over
  between step counts (:math:`T^*/T` is what matters).
* ``cosine`` :cite:`nichol2021improved`, in EDM's discrete form (betas clipped to
  0.999).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "polynomial_schedule",
    "cosine_schedule",
    "clip_noise_schedule",
    "NoiseSchedule",
]


def _check_T(T: int) -> None:
    if not isinstance(T, int) or isinstance(T, bool) or T < 1:
        raise ValueError(
            f"T (number of diffusion steps) must be a positive integer, got {T!r}"
        )


def clip_noise_schedule(alpha2: Tensor, clip_value: float = 1e-3) -> Tensor:
    r"""EDM's stabilisation: clip the ratios :math:`\alpha_t^2/\alpha_{t-1}^2` (with
    :math:`\alpha_{-1}^2 = 1`) to ``[clip_value, 1]`` and rebuild the cumulative
    product. For ``polynomial_2`` this only acts at :math:`t = T`, where the raw
    :math:`a_T` would be exactly zero."""
    if not 0.0 < clip_value <= 1.0:
        raise ValueError(f"clip_value must lie in (0, 1], got {clip_value}")
    padded = torch.cat([alpha2.new_ones(1), alpha2])
    ratios = (padded[1:] / padded[:-1]).clamp(clip_value, 1.0)
    return torch.cumprod(ratios, dim=0)


def polynomial_schedule(T: int, power: float = 2.0, s: float = 1e-5) -> Tensor:
    r"""EDM's ``polynomial_<power>`` table :math:`\alpha_t^2`, :math:`t=0..T` (float64).

    Args:
        T: number of steps.
        power: the exponent :math:`p` in :math:`(1-(t/T)^p)^2` (EDM: 2).
        s: precision, :math:`\alpha_0^2 = 1-s` (EDM: ``1e-5``).
    """
    _check_T(T)
    if power <= 0:
        raise ValueError(f"power must be positive, got {power}")
    if not 0.0 < s < 0.5:
        raise ValueError(f"precision s must lie in (0, 0.5), got {s}")
    tau = torch.arange(T + 1, dtype=torch.float64) / T
    a = (1.0 - tau.pow(power)).pow(2)
    a = clip_noise_schedule(a, clip_value=1e-3)
    return (1.0 - 2.0 * s) * a + s


def cosine_schedule(T: int, s: float = 0.008) -> Tensor:
    r"""The cosine table :math:`\bar\alpha_t` of Nichol & Dhariwal as EDM discretises
    it (``cosine_beta_schedule``; betas clipped to ``[0, 0.999]``), float64, length
    :math:`T+1`."""
    _check_T(T)
    if s <= 0:
        raise ValueError(f"offset s must be positive, got {s}")
    steps = T + 2
    x = torch.linspace(0, steps, steps, dtype=torch.float64)
    ac = torch.cos(((x / steps) + s) / (1 + s) * math.pi * 0.5).pow(2)
    ac = ac / ac[0]
    betas = (1 - ac[1:] / ac[:-1]).clamp(0.0, 0.999)
    return torch.cumprod(1.0 - betas, dim=0)


class NoiseSchedule(nn.Module):
    r"""A fixed lookup table :math:`\gamma_t`, :math:`t = 0..T`, with the VP
    quantities and the transition :math:`q(z_t\mid z_s)` of EDM.

    For :math:`s < t`, in the numerically stable form of EDM,

    .. math::
        \sigma^2_{t|s} = -\operatorname{expm1}\bigl(\operatorname{softplus}(\gamma_s)
        - \operatorname{softplus}(\gamma_t)\bigr), \qquad
        \log \alpha^2_{t|s} = \log\operatorname{sigmoid}(-\gamma_t)
        - \log\operatorname{sigmoid}(-\gamma_s).

    Args:
        T: number of diffusion steps.
        kind: ``"polynomial_2"`` (any ``"polynomial_<p>"``) or ``"cosine"``.
        precision: :math:`s` of the polynomial schedule.

    Every method takes integer steps ``t`` (a ``LongTensor`` of any shape) and returns
    float64 values of the same shape on the buffer's device; cast as needed.
    """

    def __init__(
        self, T: int = 1000, kind: str = "polynomial_2", precision: float = 1e-5
    ):
        super().__init__()
        _check_T(T)
        self.T = T
        self.kind = kind
        self.precision = float(precision)
        if kind == "cosine":
            alpha2 = cosine_schedule(T)
        elif kind.startswith("polynomial_"):
            try:
                power = float(kind.split("_", 1)[1])
            except ValueError:
                raise ValueError(
                    f"unknown schedule {kind!r}; expected 'polynomial_<p>' or 'cosine'"
                ) from None
            alpha2 = polynomial_schedule(T, power=power, s=precision)
        else:
            raise ValueError(
                f"unknown schedule {kind!r}; expected 'polynomial_<p>' or 'cosine'"
            )
        gamma = torch.log1p(-alpha2) - torch.log(alpha2)
        # Not persistent: the table is a pure function of (T, kind, precision).
        self.register_buffer("gamma_table", gamma, persistent=False)

    def config(self) -> dict:
        return dict(T=self.T, kind=self.kind, precision=self.precision)

    def extra_repr(self) -> str:
        return f"T={self.T}, kind={self.kind!r}, precision={self.precision:g}"

    def _index(self, t: Tensor | int) -> Tensor:
        t = torch.as_tensor(t, device=self.gamma_table.device)
        if t.is_floating_point() or t.dtype == torch.bool:
            raise TypeError(f"diffusion steps must be integers, got dtype {t.dtype}")
        t = t.to(self.gamma_table.device)
        if t.numel() and (int(t.min()) < 0 or int(t.max()) > self.T):
            raise ValueError(
                f"diffusion steps must lie in [0, T={self.T}], got "
                f"[{int(t.min())}, {int(t.max())}]"
            )
        return t.long()

    def gamma(self, t: Tensor | int) -> Tensor:
        r""":math:`\gamma_t = -\log\mathrm{SNR}_t`."""
        return self.gamma_table[self._index(t)]

    def alpha2(self, t: Tensor | int) -> Tensor:
        return torch.sigmoid(-self.gamma(t))

    def sigma2(self, t: Tensor | int) -> Tensor:
        return torch.sigmoid(self.gamma(t))

    def alpha(self, t: Tensor | int) -> Tensor:
        return self.alpha2(t).sqrt()

    def sigma(self, t: Tensor | int) -> Tensor:
        return self.sigma2(t).sqrt()

    def snr(self, t: Tensor | int) -> Tensor:
        return torch.exp(-self.gamma(t))

    def transition(self, t: Tensor | int, s: Tensor | int) -> tuple[Tensor, Tensor]:
        r""":math:`(\alpha_{t|s}, \sigma^2_{t|s})` of :math:`q(z_t \mid z_s)` for
        :math:`s < t`."""
        g_t, g_s = self.gamma(t), self.gamma(s)
        if bool((self._index(s) >= self._index(t)).any()):
            raise ValueError("transition(t, s) needs s < t")
        sigma2_ts = -torch.expm1(F.softplus(g_s) - F.softplus(g_t))
        log_alpha2_ts = F.logsigmoid(-g_t) - F.logsigmoid(-g_s)
        return torch.exp(0.5 * log_alpha2_ts), sigma2_ts

    def forward(self, t: Tensor | int) -> Tensor:
        return self.gamma(t)
