r"""Plain, portable checkpoints: a ``state_dict`` plus a JSON config.

A checkpoint is two files, ``<path>.pt`` (the ``state_dict``, loadable with
``torch.load(..., weights_only=True)``) and ``<path>.json`` (the model's class
name, its constructor kwargs and free-form metadata such as the ``refimpl``
version, the data seed or the final validation metric, and the SHA-256 of the
weights). Nothing is pickled, so checkpoints survive refactors of the code that
made them. The pair is replaced atomically: the JSON is written last, as the
manifest that commits the new weights, so a save that fails or is killed leaves
the previous checkpoint readable.

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
import os
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
        raise TypeError(f"checkpoint metadata {value!r} ({type(value).__name__}) is not "
                        "JSON-serialisable; pass numbers, strings, lists or dicts")

def _record_text(record: dict[str, Any], what: str) -> str:
    try:
        return json.dumps(record, indent=2, sort_keys=True) + "\n"
    except (TypeError, ValueError) as err:
        raise TypeError(f"{what} is not JSON-serialisable ({err}): {record!r}") from None


def _write_pair(stem: str | Path, state: dict[str, torch.Tensor],
                record: dict[str, Any]) -> Path:
    """Write ``<stem>.pt`` (``state``) and ``<stem>.json`` (``record``) so that a
    process killed at any instant leaves a consistent pair: the old one or the new.

    The JSON is the manifest and records the SHA-256 of its weights. The new
    weights are first written, atomically, to ``<stem>.pt.new``; replacing the JSON
    (one :func:`os.replace`) commits the pair; then the weights are moved into
    place. :func:`load_model` reads ``<stem>.pt.new`` when a kill fell between the
    last two steps.
    """
    from refimpl._io import atomic_write, atomic_write_text, bytes_sha256, serialize

    pt, js = checkpoint_paths(stem)
    if pt.parent.exists() and not pt.parent.is_dir():
        raise ValueError(f"checkpoint folder {pt.parent} is a file; expected a folder")
    blob = serialize(state)
    text = _record_text({**record, "weights_sha256": bytes_sha256(blob)},
                        "checkpoint metadata")
    pt.parent.mkdir(parents=True, exist_ok=True)
    pending = pt.with_name(pt.name + ".new")
    atomic_write(pending, lambda f: f.write(blob))
    atomic_write_text(js, text)  # the commit point
    os.replace(pending, pt)
    return pt


def save_model(model: nn.Module, path: str | Path, **meta: Any) -> Path:
    """Write ``model``'s ``state_dict`` and config to ``path`` (``.pt`` + ``.json``).

    The metadata are checked before anything is written, and the pair is replaced
    atomically (see :func:`_write_pair`): a failed or killed save leaves the
    previous checkpoint intact.

    Args:
        model: a registered model (see :func:`register_model`); a
            ``DistributedDataParallel`` or ``torch.compile`` wrapper is unwrapped.
        path: the checkpoint stem, e.g. ``"weights/fno"``.
        **meta: JSON-serialisable metadata stored beside the config.

    Returns:
        The path of the ``.pt`` file.
    """
    from refimpl import __version__

    if not isinstance(model, nn.Module):
        raise TypeError(f"save_model expects an nn.Module, got {type(model).__name__}")
    model = unwrap(model)
    name = type(model).__name__
    if _REGISTRY.get(name) is not type(model):
        raise TypeError(f"{name} is not registered; decorate it with @register_model")
    record = {"model": name, "config": _to_jsonable(model.config()),
              "refimpl_version": __version__, "meta": _to_jsonable(meta)}
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return _write_pair(path, state, record)


def _read_record(js: Path) -> dict[str, Any]:
    try:
        record = json.loads(js.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"checkpoint {js} is not a readable JSON record "
                         f"({type(err).__name__}: {err}); it is corrupt") from None
    if not isinstance(record, dict):
        raise ValueError(  # noqa: TRY004 - a corrupt file, not a wrong argument
            f"checkpoint {js} holds {type(record).__name__}, expected a JSON object")
    return record


def load_model(path: str | Path, map_location: str | torch.device | None = None,
               ) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model saved with :func:`save_model`.

    Returns:
        ``(model, record)`` where ``record`` is the JSON record (model name,
        config, version, metadata). The model is on ``map_location`` (default:
        CPU) and in eval mode.

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        ValueError: a corrupt or mismatched checkpoint, or an unregistered model.
    """
    from refimpl._io import LOAD_ERRORS

    pt, js = checkpoint_paths(path)
    if not js.is_file() or not (pt.is_file() or pt.with_name(pt.name + ".new").is_file()):
        raise FileNotFoundError(f"no checkpoint at {pt} / {js}")
    record = _read_record(js)
    cls = _REGISTRY.get(record.get("model", ""))
    if cls is None:
        raise ValueError(f"checkpoint {js} names model {record.get('model')!r}, which is "
                         f"not registered (known: {sorted(_REGISTRY)}); import the module "
                         "that defines it first")
    weights = _weights_file(pt, record)
    try:
        model = cls(**record["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"checkpoint {js} has a config that {cls.__name__} does not "
                         f"accept: {err}") from None
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as err:
        raise ValueError(f"checkpoint weights {weights} cannot be read "
                         f"({type(err).__name__}); the file is truncated or "
                         "corrupt") from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise ValueError(f"checkpoint weights {weights} do not fit {cls.__name__}"
                         f"(**{record['config']}): {err}") from None
    if map_location is not None:
        model = model.to(map_location)
    return model.eval(), record


def _weights_file(pt: Path, record: dict[str, Any]) -> Path:
    """The weights file that belongs to ``record`` (checked by its SHA-256)."""
    from refimpl._io import file_sha256

    want = record.get("weights_sha256")
    if want is None:  # written before checksums were recorded
        return pt
    for cand in (pt, pt.with_name(pt.name + ".new")):
        if cand.is_file() and file_sha256(cand) == want:
            return cand
    raise ValueError(f"checkpoint weights {pt} do not match the checksum in "
                     f"{pt.with_suffix('.json')}; the file was replaced or is corrupt")


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP / DataParallel / ``torch.compile`` wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model
