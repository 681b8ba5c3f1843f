r"""Point-wise Gaussian normaliser (the FNO ``UnitGaussianNormalizer``).

.. math::
    \tilde a(x) = \frac{a(x) - \mu(x)}{\sigma(x) + \varepsilon},\qquad
    a(x) = \tilde a(x)\,(\sigma(x)+\varepsilon) + \mu(x),\qquad
    \varepsilon = 10^{-5},

with :math:`\mu(x)`, :math:`\sigma(x)` the mean and (unbiased) standard deviation of
the training samples at every grid point (Li et al., ICLR 2021; spec §3.6). Where
every sample has the same value (e.g. on Dirichlet walls) :math:`\sigma = 0` and
the :math:`\varepsilon` keeps the map finite.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from . import _checks

__all__ = ["UnitGaussianNormalizer"]


class UnitGaussianNormalizer(nn.Module):
    r"""Point-wise unit-Gaussian normaliser, differentiable and device-movable.

    Statistics are buffers (they follow ``.to(device)`` and are saved in the
    ``state_dict``); ``encode``/``decode`` are plain tensor arithmetic, so autograd
    differentiates through them (put the normaliser inside the differentiated
    function to get sensitivities in physical units).

    Args:
        eps (float): :math:`\varepsilon` added to :math:`\sigma` (default 1e-5).
        dim (int or tuple of ints): the dimensions averaged over by :meth:`fit`
            (default 0, the sample axis: one :math:`\mu,\sigma` per grid point and
            channel). Statistics keep these dimensions with size 1 and broadcast.

    Example:
        >>> norm = UnitGaussianNormalizer().fit(x_train)   # x_train (N, C, H, W)
        >>> x = norm.encode(x_train)                        # ~ N(0, 1) per point
        >>> y_phys = norm_y.decode(model(x))
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, eps: float = 1e-5, dim: int | Sequence[int] = 0):
        super().__init__()
        self.eps = _checks.non_negative("eps", eps)
        self.dim = (int(dim),) if isinstance(dim, int) else tuple(int(d) for d in dim)
        if not self.dim:
            raise ValueError("dim must name at least one dimension to average over")
        self.register_buffer("mean", torch.empty(0))
        self.register_buffer("std", torch.empty(0))

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` (or a ``load_state_dict``) has set the statistics."""
        return self.mean.numel() > 0

    def reset_parameters(self) -> None:
        """Forget the statistics."""
        self.mean = torch.empty(0, device=self.mean.device)
        self.std = torch.empty(0, device=self.std.device)

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> "UnitGaussianNormalizer":
        """Set :math:`\\mu`, :math:`\\sigma` from samples ``x``; returns ``self``.

        Statistics are accumulated in float64 and stored in ``x``'s dtype and on
        its device.
        """
        _checks.finite_tensor("x", x)
        dims = tuple(d % x.dim() if -x.dim() <= d < x.dim() else None for d in self.dim)
        if None in dims:
            raise ValueError(f"dim={self.dim} does not fit an input of shape "
                             f"{tuple(x.shape)}")
        count = 1
        for d in dims:
            count *= x.shape[d]
        if count < 2:
            raise ValueError(f"fit needs at least 2 values per statistic, got {count} "
                             f"(input shape {tuple(x.shape)}, dim={self.dim})")
        x64 = x.detach().to(torch.float64)
        std = x64.std(dim=dims, keepdim=True).to(x.dtype)
        if self.eps == 0 and not bool((std > 0).all()):
            raise ValueError(
                f"eps=0 but x is constant at {int((std <= 0).sum())} point(s) (zero "
                "standard deviation): encode would divide by zero; use eps > 0 "
                "(default 1e-5)")
        self.mean = x64.mean(dim=dims, keepdim=True).to(x.dtype)
        self.std = std
        return self

    def _check(self, x: torch.Tensor) -> None:
        if not self.fitted:
            raise RuntimeError("the normaliser is not fitted: call fit(x_train) first")
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
        if x.dim() != self.mean.dim():
            raise ValueError(f"expected an input with {self.mean.dim()} dimensions "
                             f"(statistics shape {tuple(self.mean.shape)}), got shape "
                             f"{tuple(x.shape)}")
        for size, stat in zip(x.shape, self.mean.shape):
            if stat != 1 and size != stat:
                raise ValueError(f"input shape {tuple(x.shape)} does not match the "
                                 f"fitted statistics {tuple(self.mean.shape)}")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`(x - \mu)/(\sigma + \varepsilon)`."""
        self._check(x)
        return (x - self.mean.to(x.dtype)) / (self.std.to(x.dtype) + self.eps)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`x(\sigma + \varepsilon) + \mu`."""
        self._check(x)
        return x * (self.std.to(x.dtype) + self.eps) + self.mean.to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`encode`."""
        return self.encode(x)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the statistics' shape is only known after fit: adopt the saved one
        for name in ("mean", "std"):
            key = prefix + name
            if key in state_dict:
                setattr(self, name, torch.empty_like(state_dict[key],
                                                     device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        shape = tuple(self.mean.shape) if self.fitted else "unfitted"
        return f"shape={shape}, dim={self.dim}, eps={self.eps:g}"
