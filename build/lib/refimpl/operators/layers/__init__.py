"""Layers of the neural operators: spectral convolutions, coordinate embedding,
point-wise channel maps, linear (Galerkin) attention, the Fourier layer, U-Net, CNO and transform-once blocks,
and FFT-based cosine transforms."""

from .attention import GalerkinAttention, GalerkinEncoderLayer
from .channel_mlp import ChannelLinear, ChannelMLP
from .cno_blocks import (AntiAliasedActivation, CNOBlock2d, CNOResidualBlock2d,
                         resample, resample_matrix)
from .dct import dct, dct_2d, idct, idct_2d
from .fno_block import FNOBlock2d
from .grid import GridEmbedding2d, grid_2d
from .spectral_conv import (SpectralConv1d, SpectralConv2d, spectral_product_bmm,
                            spectral_product_einsum)
from .t1_block import T1Block2d
from .unet_blocks import DownBlock2d, ResidualBlock2d, UpBlock2d

__all__ = [
    "SpectralConv1d", "SpectralConv2d", "spectral_product_bmm",
    "spectral_product_einsum", "GridEmbedding2d", "grid_2d", "ChannelLinear",
    "ChannelMLP", "FNOBlock2d", "ResidualBlock2d", "DownBlock2d", "UpBlock2d",
    "AntiAliasedActivation", "CNOBlock2d", "CNOResidualBlock2d", "resample",
    "resample_matrix", "T1Block2d", "GalerkinAttention", "GalerkinEncoderLayer",
    "dct", "idct", "dct_2d", "idct_2d",
]
