"""A disk cache for generated datasets, keyed by their parameters.

Files live in ``refimpl.cache_dir("pde", name)`` (``$REFIMPL_CACHE/pde/<name>``)
as plain ``.pt`` files holding only tensors (a tensor, or a tuple, list or dict of
tensors), written atomically (a unique temporary file in the same folder, then
one rename) and read back with ``torch.load(..., weights_only=True)``. The file
name spells out the parameters and ends with a hash of them, so changing any
parameter (or :data:`CACHE_VERSION`, bumped when a generator's output changes)
gives a new file instead of a stale one.

Every file also stores its dataset name, its parameters and a fingerprint of its
tensors (shapes, dtypes and a SHA-256 of the bytes), checked on every read: a
truncated, corrupt or foreign file is regenerated with a :class:`UserWarning`
instead of being used as data.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import torch

import refimpl

__all__ = ["CACHE_VERSION", "cache_path", "cached"]

#: Bump when a generator's output for the same parameters changes (or the file
#: format does: 2 added the checked fingerprint).
CACHE_VERSION = 2

_T = TypeVar("_T")
_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in params.items():
        if isinstance(value, torch.dtype):
            value = str(value).replace("torch.", "")
        elif hasattr(value, "tolist"):  # tensors, arrays, NumPy scalars
            value = value.tolist()
        elif isinstance(value, (tuple, list)):
            value = [v.tolist() if hasattr(v, "tolist") else v for v in value]
        try:
            json.dumps(value)
        except TypeError:
            raise TypeError(f"cache parameter {key}={value!r} is not "
                            "JSON-serialisable") from None
        out[str(key)] = value
    return out


def cache_path(name: str, params: Mapping[str, Any]) -> Path:
    """The cache file for dataset ``name`` generated with ``params``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError("cache name must be letters, digits, '_' or '-', got "
                         f"{name!r}")
    params = _jsonable(params)
    blob = json.dumps({"v": CACHE_VERSION, **params}, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:12]
    readable = "_".join(f"{k}={params[k]}" for k in sorted(params))
    readable = re.sub(r"[^A-Za-z0-9=.\-_]", "", readable.replace(",", "-"))[:120]
    return refimpl.cache_dir("pde", name) / f"{readable}-{digest}.pt"


def _check_payload(obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        return
    if isinstance(obj, (tuple, list)):
        for item in obj:
            _check_payload(item)
        return
    if isinstance(obj, dict):
        for key, item in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"cached dict keys must be strings, got {key!r}")
            _check_payload(item)
        return
    raise TypeError("a cached dataset must be tensors (or a tuple, list or dict of "
                    f"tensors), got {type(obj).__name__}")


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().contiguous()
    if isinstance(obj, tuple):
        return tuple(_to_cpu(o) for o in obj)
    if isinstance(obj, list):
        return [_to_cpu(o) for o in obj]
    return {k: _to_cpu(v) for k, v in obj.items()}


def cached(name: str, params: Mapping[str, Any], fn: Callable[[], _T], *,
           refresh: bool = False) -> _T:
    """Return ``fn()``, loading it from disk if it was generated with ``params``.

    Args:
        name (str): dataset name, the cache sub-folder (e.g. ``"darcy"``).
        params (dict): everything the result depends on (JSON-serialisable values;
            dtypes are allowed). Options that do not change the result (progress
            bars, devices) must not be included.
        fn: generates the dataset: a tensor or a tuple/list/dict of tensors.
        refresh (bool): regenerate and overwrite even if a file exists.

    A file that cannot be read, or whose fingerprint or parameters do not match,
    is regenerated with a :class:`UserWarning`.

    Returns:
        The dataset, on the CPU (tuples come back as tuples).
    """
    from refimpl._io import load_checked, save_checked

    path = cache_path(name, params)
    key = {"name": name, "params": _jsonable(params), "version": CACHE_VERSION}
    if not refresh:
        data = load_checked(path, what=f"{name!r} cache file", meta=key)
        if data is not None:
            return tuple(data["items"]) if data["kind"] == "tuple" else data["items"]
    result = fn()
    _check_payload(result)
    result = _to_cpu(result)
    kind = "tuple" if isinstance(result, tuple) else "other"
    payload = {"kind": kind, "items": list(result) if kind == "tuple" else result}
    save_checked(payload, path, **key)
    return result
