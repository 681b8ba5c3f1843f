"""refimpl: the reference implementation behind the executable textbook on
interpretable and efficient scientific machine learning.

The package is organised by topic (``refimpl.pde``, ``refimpl.operators``,
``refimpl.molecules``, ``refimpl.diffusion``, ``refimpl.explain``) with a shared
training loop (:mod:`refimpl.training`) and plotting helpers
(:mod:`refimpl.plotting`). This top-level module holds the three switches every
chapter uses: the compute device, the random seed and the scale.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Mapping, TypeVar

import numpy as np
import torch

__version__ = "0.1.0"

__all__ = [
    "__version__", "SCALES", "device", "seed_everything", "scale", "check_scale",
    "preset", "cache_dir",
]

#: The four scales of every chapter, smallest first. ``full`` is the converged
#: configuration (the default on CUDA); ``paper`` is the published setting and is
#: never a default.
SCALES: tuple[str, ...] = ("smoke", "book", "full", "paper")

_T = TypeVar("_T")


def device() -> torch.device:
    """The device chapters run on: ``cuda`` (the current CUDA device) when one is
    available, else ``cpu``.

    The CUDA device is returned without an index so that ``CUDA_VISIBLE_DEVICES``
    and ``torch.cuda.set_device`` (as set by ``torchrun``) decide which GPU is used.
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and all CUDA devices) generators.

    Args:
        seed (int): a non-negative integer seed.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))  # also seeds every CUDA device


def check_scale(value: str, source: str = "scale") -> str:
    """Return ``value`` lower-cased if it names one of :data:`SCALES`.

    Raises:
        ValueError: naming ``source`` (e.g. ``REFIMPL_SCALE`` or ``--scale``), the
            value it got and the four valid values.
    """
    name = str(value).strip().lower()
    if name not in SCALES:
        raise ValueError(
            f"{source}={value!r} is not a scale; valid values are {', '.join(SCALES)}"
        )
    return name


def scale(override: str | None = None) -> str:
    """The run scale: ``override`` if given, else the environment variable
    ``REFIMPL_SCALE``, else the device's default.

    * ``smoke``: seconds per notebook (CI and nbval); figures are not meant to be read.
    * ``book``: the default on a CPU; each chapter shows its phenomenon in minutes.
    * ``full``: the default when CUDA is available; each chapter's converged
      configuration (<= 15 min per chapter on a T4-class GPU, <= 2 h on a 2-core
      CPU). Its committed results live under ``book/data/<topic>/full/``.
    * ``paper``: the published setting (GPU hours to days); only when asked for.

    An explicit ``override`` (a CLI's ``--scale``) wins over a bad environment
    variable, which is then not read at all.

    Raises:
        ValueError: if ``override`` or ``REFIMPL_SCALE`` is not one of :data:`SCALES`.
    """
    if override is not None:
        return check_scale(override, "scale")
    value = os.environ.get("REFIMPL_SCALE", "").strip()
    if not value:
        return "full" if torch.cuda.is_available() else "book"
    return check_scale(value, "REFIMPL_SCALE")


def preset(table: Mapping[str, _T], scale_name: str | None = None) -> _T:
    """Pick the entry of a per-chapter preset table for the current scale.

    Every chapter keeps all its sizes (epochs, samples, resolution, ...) in one
    table keyed by scale, ``{"smoke": {...}, "book": {...}, "full": {...},
    "paper": {...}}``, and
    reads its row with ``P = refimpl.preset(PRESETS)``.

    Args:
        table: a mapping with exactly the keys of :data:`SCALES`.
        scale_name: override of :func:`scale` (default: :obj:`None`).
    """
    missing = [s for s in SCALES if s not in table]
    extra = [k for k in table if k not in SCALES]
    if missing or extra:
        raise ValueError(
            f"a preset table needs exactly the keys {SCALES}; "
            f"missing {missing}, unexpected {extra}"
        )
    return table[scale(scale_name)]


def cache_dir(*parts: str) -> Path:
    """The on-disk cache for generated datasets and parsed files (created on demand).

    ``$REFIMPL_CACHE`` if set, else ``~/.cache/refimpl``; ``parts`` name a
    sub-folder, e.g. ``cache_dir("pde", "darcy")``.

    Raises:
        ValueError: if the cache root is a file or the folder cannot be created.
    """
    env = os.environ.get("REFIMPL_CACHE")
    root = Path(env or os.path.join(os.path.expanduser("~"), ".cache", "refimpl"))
    source = f"REFIMPL_CACHE={env!r}" if env else f"the default cache {str(root)!r}"
    if root.exists() and not root.is_dir():
        raise ValueError(f"{source} is a file; expected a folder (or a path that does "
                         "not exist yet) for the cache")
    path = Path(root, *parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the cache folder {str(path)!r} under {source} "
                         f"({err.strerror or err}); expected a writable folder") from None
    return path


def _describe() -> dict[str, Any]:  # pragma: no cover - printed by chapters
    return {"refimpl": __version__, "torch": torch.__version__,
            "device": str(device()), "scale": scale()}
