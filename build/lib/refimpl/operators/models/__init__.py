"""Neural-operator models, all ``(B, C_in, H, W) -> (B, C_out, H, W)``, each with a
``family`` attribute (``"spatial"`` / ``"functional"`` / ``"dual"``), ``n_params``,
``config()`` and ``reset_parameters()``."""

from .base import NeuralOperator, count_parameters
from .cno import CNO
from .deeponet import DeepONet
from .dual_space import DualSpaceFNO, DualSpaceMultiScale
from .fno import FNO
from .galerkin import GalerkinTransformer
from .t1 import T1
from .unet import UNet

__all__ = ["NeuralOperator", "count_parameters", "FNO", "UNet", "DeepONet", "CNO",
           "T1", "GalerkinTransformer", "DualSpaceFNO", "DualSpaceMultiScale"]

