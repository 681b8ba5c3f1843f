r"""Plain, portable checkpoints: a ``state_dict`` plus a JSON config.

A checkpoint is two files, ``<path>.pt`` (the ``state_dict``, loadable with
``torch.load(..., weights_only=True)``) and ``<path>.json`` (the model's class
name, its constructor kwargs and free-form metadata such as the ``refimpl``
version, the data seed or the final validation metric). Nothing is pickled, so
checkpoints survive refactors of the code that made them.

A model class takes part by being decorated with :func:`register_model` and by
returning its JSON-serialisable constructor kwargs from ``config()``::

    @register_model
    class FNO(nn.Module):
        def config(self) -> dict:
            return dict(in_channels=..., out_channels=..., modes=..., ...)

This mirrors, lightly, the name registry of ``neuraloperator``'s ``BaseModel``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

__all__ = ["register_model", "registered_models", "save_model", "load_model",
           "checkpoint_paths", "unwrap"]

_REGISTRY: dict[str, type[nn.Module]] = {}
_M = TypeVar("_M", bound=type)

def register_model(cls: _M) -> _M:
    """Class decorator: make ``cls`` loadable by name from a checkpoint."""
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"register_model expects an nn.Module subclass, got {cls!r}")
    if not callable(getattr(cls, "config", None)):
        raise TypeError(f"{cls.__name__} must define config() -> dict to be registered")
    other = _REGISTRY.get(cls.__name__)
    if other is not None and other.__module__ != cls.__module__:
        raise ValueError(f"two models are named {cls.__name__!r}: "
                         f"{other.__module__} and {cls.__module__}")
    _REGISTRY[cls.__name__] = cls
    return cls

def registered_models() -> dict[str, type[nn.Module]]:
    """A copy of the name → class registry."""
    return dict(_REGISTRY)

def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """The ``(.pt, .json)`` pair for a checkpoint stem (a suffix is ignored)."""
    stem = Path(path)
    if stem.suffix in (".pt", ".json"):
        stem = stem.with_suffix("")
    return stem.with_suffix(".pt"), stem.with_suffix(".json")

def _to_jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            return value.item()
        if isinstance(value, (tuple, list)):
            return [_to_jsonable(v) for v in value]
        if isinstance(value, dict):
            return {str(k): _to_jsonable(v) for k, v in value.items()}
        raise TypeError(f"checkpoint metadata {value!r} is not JSON-serialisable")

def save_model(model: nn.Module, path: str | Path, **meta: Any) -> Path:
    """Write ``model``'s ``state_dict`` and config to ``path`` (``.pt`` + ``.json``).

    Args:
        model: a registered model (see :func:`register_model`); a
            ``DistributedDataParallel`` or ``torch.compile`` wrapper is unwrapped.
        path: the checkpoint stem, e.g. ``"weights/fno"``.
        **meta: JSON-serialisable metadata stored beside the config.

    Returns:
        The path of the ``.pt`` file.
    """
    from refimpl import __version__

    model = unwrap(model)
    name = type(model).__name__
    if _REGISTRY.get(name) is not type(model):
        raise TypeError(f"{name} is not registered; decorate it with @register_model")
    pt, js = checkpoint_paths(path)
    pt.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(state, pt)
    record = {"model": name, "config": _to_jsonable(model.config()),
              "refimpl_version": __version__, "meta": _to_jsonable(meta)}
    js.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return pt

def load_model(path: str | Path, map_location: str | torch.device | None = None,
               ) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model saved with :func:`save_model`.

    Returns:
        ``(model, record)`` where ``record`` is the JSON record (model name,
        config, version, metadata). The model is on ``map_location`` (default:
        CPU) and in eval mode.
    """
    pt, js = checkpoint_paths(path)
    if not pt.exists() or not js.exists():
        raise FileNotFoundError(f"no checkpoint at {pt} / {js}")
    record = json.loads(js.read_text())
    cls = _REGISTRY.get(record.get("model", ""))
    if cls is None:
        raise ValueError(f"checkpoint {js} names model {record.get('model')!r}, which is "
                         f"not registered (known: {sorted(_REGISTRY)}); import the module "
                         "that defines it first")
    model = cls(**record["config"])
    state = torch.load(pt, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    if map_location is not None:
        model = model.to(map_location)
    return model.eval(), record

def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP / DataParallel / ``torch.compile`` wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model
