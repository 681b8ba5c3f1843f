r"""PDE data for the neural-operator chapters: exact and numerical generators,
Gaussian random fields, a point-wise normaliser and a disk cache.

Modules:

* :mod:`~refimpl.pde.wave` — 2-D wave equation with Dirichlet walls, exact closed
  form and analytic Green's function (``sample``, ``dependency_map``,
  ``input_std``, ``oracle``).
* :mod:`~refimpl.pde.heat` — 2-D heat equation, same structure and its heat kernel.
* :mod:`~refimpl.pde.darcy` — Darcy flow, sparse 5-point solve (scipy).
* :mod:`~refimpl.pde.navier_stokes` — 2-D vorticity on the torus, pseudo-spectral.
* :mod:`~refimpl.pde.burgers` — 1-D viscous Burgers, pseudo-spectral IF-RK4.
* :mod:`~refimpl.pde.grf` — periodic, Neumann (cosine) and Dirichlet (sine) GRFs.
* :mod:`~refimpl.pde.sine` — the sine-series machinery behind wave and heat.
* :mod:`~refimpl.pde.normalizer` — :class:`UnitGaussianNormalizer`.
* :mod:`~refimpl.pde.cache` / :func:`load` — cached datasets keyed by parameters.
"""

from . import burgers, cache, darcy, grf, heat, navier_stokes, normalizer, sine, wave
from .cache import cached
from .datasets import EQUATIONS, load
from .normalizer import UnitGaussianNormalizer
from .sine import SineOracle

__all__ = [
    "wave", "heat", "darcy", "navier_stokes", "burgers", "grf", "sine", "normalizer",
    "cache", "load", "EQUATIONS", "cached", "UnitGaussianNormalizer", "SineOracle",
]
