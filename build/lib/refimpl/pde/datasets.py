"""One entry point for every generated PDE dataset, with a disk cache.

``refimpl.pde.load(equation, **params)`` calls the ``sample`` function of the
equation's module with ``params`` and caches the result on disk keyed by all of
its parameters (defaults included), so the second call with the same parameters
is a file read. The analytic datasets (``wave``, ``heat``) are not cached by
default: generating them is as fast as reading them.

Example:
    >>> u0, ut = load("wave", n=2000, t=[1, 2, 3, 4, 5, 6])
    >>> a, u = load("darcy", n=1200, resolution=64)
    >>> w0, w = load("navier_stokes", n=200, viscosity=1e-5, T=20.0)
    >>> x, y = w[:, :10], w[:, 10:20]      # FNO: 10 unit-time steps in, 10 out
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch

import refimpl

from . import burgers, darcy, heat, navier_stokes, wave
from .cache import cached

__all__ = ["EQUATIONS", "load"]

#: equation name -> (generator, cached by default, generate on the compute device)
_REGISTRY: dict[str, tuple[Callable[..., Any], bool, bool]] = {
    "wave": (wave.sample, False, False),
    "heat": (heat.sample, False, False),
    "darcy": (darcy.sample, True, False),
    "navier_stokes": (navier_stokes.sample, True, True),
    "burgers": (burgers.sample, True, True),
}
_ALIASES = {"ns": "navier_stokes", "navier-stokes": "navier_stokes"}
#: The valid equation names (aliases: ``ns``, ``navier-stokes``).
EQUATIONS: tuple[str, ...] = tuple(_REGISTRY)
# options that do not change the generated values, left out of the cache key
_NOT_IN_KEY = ("progress", "device", "batch_size")


def load(equation: str, *, cache: bool | None = None, refresh: bool = False,
         progress: bool | None = None, device=None, **params: Any) -> Any:
    """Generate (or read from the cache) a dataset of ``equation``.

    Args:
        equation (str): one of :data:`EQUATIONS` (``"wave"``, ``"heat"``,
            ``"darcy"``, ``"navier_stokes"``, ``"burgers"``).
        cache (bool, optional): use the disk cache (default: yes, except for the
            analytic ``wave`` and ``heat``).
        refresh (bool): regenerate even if cached.
        progress (bool): progress bar while generating the slow ones.
        device: where the returned tensors live (default CPU). Navier–Stokes and
            Burgers are integrated on ``refimpl.device()`` (the GPU if there is one).
        **params: arguments of the equation's ``sample`` function (e.g. ``n``,
            ``resolution``, ``viscosity``, ``t``, ``seed``).

    Returns:
        What the equation's ``sample`` returns, e.g. ``(u0, ut)`` or ``(a, u)``.

    Raises:
        ValueError: unknown equation, or a bad parameter (non-positive
            resolution, viscosity, ...).
        TypeError: a parameter the generator does not take.
    """
    if not isinstance(equation, str):
        raise TypeError(f"equation must be a string, got {equation!r}")
    name = _ALIASES.get(equation.lower(), equation.lower())
    if name not in _REGISTRY:
        raise ValueError(f"unknown equation {equation!r}; valid equations are "
                         f"{', '.join(EQUATIONS)}")
    fn, cache_default, on_device = _REGISTRY[name]
    sig = inspect.signature(fn)
    try:
        bound = sig.bind(**params)
    except TypeError as err:
        raise TypeError(f"bad parameters for {name}: {err}; it takes "
                        f"{', '.join(sig.parameters)}") from None
    bound.apply_defaults()
    args = dict(bound.arguments)
    call = dict(args)
    if "progress" in sig.parameters:
        call["progress"] = progress
    if on_device:
        call["device"] = refimpl.device()

    def generate():
        return fn(**call)

    use_cache = cache_default if cache is None else bool(cache)
    if use_cache:
        # a bad parameter never produced a file: generate() raises its ValueError
        key = {k: v for k, v in args.items() if k not in _NOT_IN_KEY}
        result = cached(name, key, generate, refresh=refresh)
    else:
        result = generate()
    target = torch.device("cpu") if device is None else torch.device(device)
    return tuple(x.to(target) for x in result)
