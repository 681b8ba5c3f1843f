"""The common base of the neural-operator models: family label, parameter count,
config, input checks and a recursive ``reset_parameters``."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .._checks import check_field, check_finite, check_input_dtype

__all__ = ["NeuralOperator", "count_parameters"]


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of real parameters of ``model`` (complex spectral weights are stored as
    two reals, so they count twice, as in the literature's tables).

    Args:
        model: any module.
        trainable_only: count only parameters with ``requires_grad`` (default).
    """
    return sum(p.numel() for p in model.parameters()
               if p.requires_grad or not trainable_only)


def _reset_children(module: nn.Module) -> None:
    for child in module.children():
        reset = getattr(child, "reset_parameters", None)
        if callable(reset):
            reset()
        else:  # containers (Sequential, ModuleList) have no reset of their own
            _reset_children(child)


class NeuralOperator(nn.Module):
    """Base class of the operators in :mod:`refimpl.operators.models`.

    Subclasses set :attr:`family` (``"spatial"``, ``"functional"`` or ``"dual"``, the
    taxonomy of the book's chapter 1), implement :meth:`config` (the JSON-serialisable
    constructor kwargs used by :mod:`refimpl.checkpoint`) and map ``(B, C_in, H, W)``
    fields to ``(B, C_out, H, W)`` fields.
    """

    #: ``"spatial"`` (weights and activations on the grid), ``"functional"`` (weights
    #: on basis coefficients or a basis-expansion output) or ``"dual"`` (both).
    family: ClassVar[str] = "spatial"
    #: Input dtypes accepted besides the parameters' dtype, per parameter dtype (the
    #: conversions a model makes inside).
    extra_input_dtypes: ClassVar[dict[torch.dtype, tuple[torch.dtype, ...]]] = {}
    in_channels: int
    out_channels: int

    @property
    def fixed_input_grid(self) -> tuple[int, int] | None:
        """The grid the model reads its input on whatever grid it is given (inputs
        on other grids are resampled to it first), or :obj:`None` if the model
        works on the input grid itself. CNO's latent grid and DeepONet's sensors
        are such grids; :func:`refimpl.operators.benchmark.train_and_evaluate`
        uses it to separate the error of the resampling from that of the model."""
        return None

    @property
    def n_params(self) -> int:
        """Number of trainable real parameters (see :func:`count_parameters`)."""
        return count_parameters(self)

    def config(self) -> dict[str, Any]:  # pragma: no cover - every model overrides
        raise NotImplementedError

    def reset_parameters(self) -> None:
        """Re-initialise every sub-module (drawn from the global torch RNG, so
        ``torch.manual_seed(s)`` before the call makes it reproducible)."""
        _reset_children(self)

    def _check_input(self, x: Tensor, min_size: int | tuple[int, int] = 2) -> None:
        """Shape, channels, grid size, a non-empty batch, the dtype (that of the
        parameters, or one of :attr:`extra_input_dtypes`, or anything under
        autocast) and finite values: a clear error instead of a raw torch one."""
        owner = type(self).__name__
        check_field(x, owner=owner, channels=self.in_channels, spatial_dims=2,
                    min_size=min_size)
        weight = next(self.parameters(), None)
        also = self.extra_input_dtypes.get(weight.dtype, ()) if weight is not None \
            else ()
        check_input_dtype(x, weight, owner=owner, also=also)
        check_finite(x, owner=owner)

    def extra_repr(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{items}, family={self.family!r}"
