"""Neural operators: layers (:mod:`refimpl.operators.layers`), models
(:mod:`refimpl.operators.models`), losses (:mod:`refimpl.operators.losses`) and the
side-by-side training benchmark of chapter 1 (:mod:`refimpl.operators.benchmark`)."""

from . import benchmark, layers, losses, models
from .layers import GridEmbedding2d, SpectralConv1d, SpectralConv2d
from .losses import median_relative_l1, relative_l2
from .models import (CNO, FNO, T1, DeepONet, GalerkinTransformer, NeuralOperator, UNet,
                     count_parameters)
from .normalized import NormalizedOperator

__all__ = [
    "layers", "models", "losses", "benchmark", "SpectralConv1d", "SpectralConv2d",
    "GridEmbedding2d", "FNO", "UNet", "DeepONet", "CNO", "T1", "GalerkinTransformer", "NeuralOperator",
    "NormalizedOperator", "count_parameters", "relative_l2", "median_relative_l1",
]
