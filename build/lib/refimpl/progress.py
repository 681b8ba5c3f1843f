"""Progress bars for every loop that runs longer than a few seconds.

:func:`tqdm` is :func:`tqdm.auto.tqdm` (a widget in Jupyter and Colab when
``ipywidgets`` is installed, a text bar elsewhere) with one switch: a function's
``progress`` argument when given, else the environment variable
``REFIMPL_PROGRESS`` (``0``/``false``/``off`` turn bars off; the book build and
the notebook tests set it so that rendered pages carry no bars), else on.
"""

from __future__ import annotations

import os
from typing import Any

from tqdm.auto import tqdm as _tqdm

__all__ = ["enabled", "tqdm"]


def enabled(progress: bool | None = None) -> bool:
    """Whether to show a bar: ``progress`` if not :obj:`None`, else
    ``REFIMPL_PROGRESS`` (default on)."""
    if progress is not None:
        return bool(progress)
    value = os.environ.get("REFIMPL_PROGRESS", "").strip().lower()
    return value not in ("0", "false", "no", "off")


def tqdm(*args: Any, progress: bool | None = None, **kwargs: Any) -> Any:
    """:func:`tqdm.auto.tqdm`, disabled unless :func:`enabled` (``progress``)."""
    return _tqdm(*args, disable=not enabled(progress), **kwargs)
