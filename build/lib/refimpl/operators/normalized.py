r"""Wrap an operator so that it reads and writes physical units."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["NormalizedOperator"]


class NormalizedOperator(nn.Module):
    r"""An operator between physical fields, trained on standardised ones,

    .. math::
        \tilde{\mathcal G}(a) = \sigma_u\odot\mathcal G_\theta\Big(
        \frac{a-\mu_a}{\sigma_a}\Big) + \mu_u,

    with one mean and one standard deviation **per channel** (over samples and grid
    points of the training set). A per-channel scalar, unlike the point-wise
    normaliser of the FNO code, does not depend on the grid, so the wrapped model can
    be evaluated at any resolution. Losses are computed on the decoded output, in
    physical units.

    Args:
        operator: the model :math:`\mathcal G_\theta`.
        input_mean, input_std: ``(C_in,)`` statistics of the inputs.
        output_mean, output_std: ``(C_out,)`` statistics of the targets.
    """

    def __init__(self, operator: nn.Module, input_mean: Tensor, input_std: Tensor,
                 output_mean: Tensor, output_std: Tensor) -> None:
        super().__init__()
        self.operator = operator
        for name, value in (("input_mean", input_mean), ("input_std", input_std),
                            ("output_mean", output_mean), ("output_std", output_std)):
            value = torch.as_tensor(value, dtype=torch.float32).reshape(-1)
            if not torch.isfinite(value).all():
                raise ValueError(f"{name} must be finite, got {value.tolist()}")
            if name.endswith("std") and not (value > 0).all():
                raise ValueError(f"{name} must be positive, got {value.tolist()}")
            self.register_buffer(name, value.view(1, -1, 1, 1))

    @classmethod
    def fit(cls, operator: nn.Module, x: Tensor, y: Tensor) -> "NormalizedOperator":
        """Wrap ``operator`` with the per-channel statistics of ``x`` and ``y``,
        both ``(N, C, H, W)``."""
        for name, t in (("x", x), ("y", y)):
            if t.dim() != 4:
                raise ValueError(f"{name} must be (N, C, H, W), got {tuple(t.shape)}")
        dims = (0, 2, 3)
        return cls(operator, x.mean(dims), x.std(dims), y.mean(dims), y.std(dims))

    @property
    def family(self) -> str:
        return getattr(self.operator, "family", "unknown")

    @property
    def fixed_input_grid(self) -> tuple[int, int] | None:
        return getattr(self.operator, "fixed_input_grid", None)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.operator.parameters() if p.requires_grad)

    def config(self) -> dict[str, Any]:
        return getattr(self.operator, "config", dict)()

    def forward(self, x: Tensor, **kwargs: Any) -> Tensor:
        """Decode ``operator(encode(x), **kwargs)``; keyword arguments (such as
        ``output_shape``) go to the wrapped operator."""
        z = (x - self.input_mean.to(x.dtype)) / self.input_std.to(x.dtype)
        out = self.operator(z, **kwargs)
        return out * self.output_std.to(out.dtype) + self.output_mean.to(out.dtype)
