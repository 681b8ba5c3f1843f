r"""The one training loop every chapter uses.

:func:`fit` is a small, explicit loop: mini-batch gradient descent with a tqdm
progress bar, automatic mixed precision on CUDA, optional gradient clipping, an
optional exponential moving average (EMA) of the weights, best/last checkpoints as
plain ``state_dict`` + JSON, and exact resumption from the last checkpoint.

**Scale-out.** The same call runs unchanged under ``torchrun --nproc_per_node N``:
it joins the process group that ``torchrun`` describes in the environment
(``nccl`` on CUDA, ``gloo`` on CPU), wraps the model in
:class:`~torch.nn.parallel.DistributedDataParallel`, shards each epoch with a
:class:`~torch.utils.data.DistributedSampler` and logs and checkpoints on rank 0.
``batch_size`` is always the *global* batch: with :math:`W` processes each one
takes ``batch_size / W`` samples. Because every process draws the same seeded
permutation :math:`\pi_e` of epoch :math:`e` and rank :math:`r` takes positions
:math:`r, r+W, r+2W, \dots`, the global batch :math:`k` is exactly
:math:`\pi_e[kB:(k+1)B]` for every :math:`W`; with gradients averaged by DDP, a
run on :math:`W` processes follows the same trajectory as a single process up to
floating-point summation order (tested with two CPU processes).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from refimpl.progress import enabled, tqdm

from refimpl._io import LOAD_ERRORS, atomic_save, atomic_write_text, fingerprint
from refimpl.checkpoint import registered_models, save_model, unwrap

__all__ = ["fit", "FitResult", "AdaptiveGradClip", "to_device", "evaluate",
           "distributed_context"]

StepFn = Callable[[nn.Module, Any], Tensor]
ValFn = Callable[[nn.Module, Any], float]


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained model (unwrapped from DDP), in eval mode.
        history: one dict per epoch: ``epoch``, ``train_loss``, ``val`` (if a
            validation set was given), ``lr`` and ``seconds``.
        best_val: the lowest validation value seen (``None`` without validation).
        ema_model: the EMA copy of the weights when ``ema_decay`` was given.
    """

    model: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    best_val: Optional[float] = None
    ema_model: Optional[nn.Module] = None


def to_device(batch: Any, device: torch.device) -> Any:
    """Move a batch (tensor, tuple/list, dict or object with ``.to``) to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        moved = [to_device(b, device) for b in batch]
        return type(batch)(moved) if not hasattr(batch, "_fields") else type(batch)(*moved)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if hasattr(batch, "to"):
        return batch.to(device)
    return batch


@dataclass
class _Dist:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def distributed_context() -> _Dist:
    """Join the process group described by ``torchrun``'s environment, if any.

    Returns a single-process context when ``WORLD_SIZE`` is unset or 1.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        owns = True
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    return _Dist(dist.get_world_size(), dist.get_rank(), local_rank, owns)


def _check_args(epochs: int, batch_size: int, world: int, n: int) -> None:
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if batch_size % world:
        raise ValueError(f"the global batch_size={batch_size} must be divisible by the "
                         f"number of processes ({world})")
    if n == 0:
        raise ValueError("train_set is empty")


_OPTIMIZERS = ("adam", "adamw", "adamw_amsgrad", "sgd")
_SCHEDULERS = ("cosine", "onecycle", "step", None)


def _make_optimizer(name: str, params: Iterable[Tensor], lr: float,
                    weight_decay: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name in ("adamw", "adamw_amsgrad"):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay,
                                 amsgrad=name == "adamw_amsgrad")
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=0.9)
    raise ValueError(f"unknown optimizer {name!r}; valid: "
                     + ", ".join(repr(o) for o in _OPTIMIZERS))


def _make_scheduler(name: Optional[str], opt: torch.optim.Optimizer, total_steps: int,
                    steps_per_epoch: int, lr_step_epochs: int, lr_gamma: float):
    if name is None:
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total_steps, 1))
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=max(total_steps, 1))
    if name == "step":
        if not isinstance(lr_step_epochs, int) or lr_step_epochs < 1:
            raise ValueError(f"lr_step_epochs must be a positive integer, got "
                             f"{lr_step_epochs!r}")
        if not 0.0 < lr_gamma <= 1.0:
            raise ValueError(f"lr_gamma must lie in (0, 1], got {lr_gamma}")
        # fit steps its scheduler once per optimiser step, so the period is counted
        # in steps: the rate drops at the same epochs whatever the batch size.
        return torch.optim.lr_scheduler.StepLR(
            opt, step_size=lr_step_epochs * steps_per_epoch, gamma=lr_gamma)
    raise ValueError(f"unknown scheduler {name!r}; valid: "
                     + ", ".join(repr(s) for s in _SCHEDULERS))


class AdaptiveGradClip:
    r"""EDM's adaptive gradient clipping :cite:`hoogeboom2022edm`.

    Keeps the last ``window`` recorded gradient norms :math:`q` (initialised with
    one entry ``initial``) and, before each step, clips the global :math:`L^2` norm
    of the gradient to

    .. math::
        \tau = 1.5\,\overline{q} + 2\,\operatorname{std}(q)

    (population standard deviation), then records :math:`\min(\lVert g\rVert,
    \tau)`. A rare spike is cut to the recent scale without a hand-set threshold.
    The queue is part of :func:`fit`'s checkpoint, so a resumed run clips as an
    uninterrupted one.

    Args:
        window (int): number of recent norms kept. (default: :obj:`50`)
        initial (float): the first entry of the queue. (default: :obj:`3000.0`)
    """

    def __init__(self, window: int = 50, initial: float = 3000.0) -> None:
        if not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be a positive integer, got {window!r}")
        if not initial > 0:
            raise ValueError(f"initial must be positive, got {initial}")
        self.window = window
        self.queue: list[float] = [float(initial)]

    @property
    def threshold(self) -> float:
        q = torch.tensor(self.queue, dtype=torch.float64)
        return float(1.5 * q.mean() + 2.0 * q.std(unbiased=False))

    def __call__(self, parameters: Iterable[Tensor]) -> float:
        """Clip the gradients of ``parameters`` in place; return their norm before."""
        threshold = self.threshold
        norm = float(nn.utils.clip_grad_norm_(parameters, threshold))
        # A non-finite norm (an fp16 overflow, which the grad scaler then skips)
        # is not recorded: one NaN in the queue would disable clipping for good.
        if math.isfinite(norm):
            self.queue.append(min(norm, threshold))
            del self.queue[:-self.window]
        return norm

    def state_dict(self) -> dict[str, Any]:
        return {"window": self.window, "queue": list(self.queue)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.window, self.queue = int(state["window"]), [float(v) for v in state["queue"]]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(window={self.window}, "
                f"threshold={self.threshold:.4g})")


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, val_fn: ValFn, *, batch_size: int,
             device: torch.device, collate_fn: Optional[Callable] = None) -> float:
    """Sample-weighted mean of ``val_fn(model, batch)`` over ``data`` (model in eval)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate_fn)
    for batch in loader:
        batch = to_device(batch, device)
        n = _batch_len(batch)
        total += float(val_fn(model, batch)) * n
        count += n
    model.train(was_training)
    if count == 0:
        raise ValueError("evaluate got an empty data set (0 samples); expected at "
                         "least one sample to score")
    return total / count


def _batch_len(batch: Any) -> int:
    if isinstance(batch, Tensor):
        return batch.shape[0]
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_len(batch[0])
    if isinstance(batch, dict) and batch:
        return _batch_len(next(iter(batch.values())))
    for attr in ("num_graphs", "batch_size"):
        if hasattr(batch, attr):
            return int(getattr(batch, attr))
    return 1


def _save_best(model: nn.Module, directory: Path, **meta: Any) -> None:
    from refimpl.checkpoint import _write_pair

    plain = unwrap(model)
    if registered_models().get(type(plain).__name__) is type(plain):
        save_model(plain, directory / "best", **meta)
    else:
        state = {k: v.detach().cpu() for k, v in plain.state_dict().items()}
        _write_pair(directory / "best", state,
                    {"model": type(plain).__name__, "meta": meta})


# ------------------------------------------------------------------ run identity
def _plain(value: Any) -> Any:
    """``value`` as plain, comparable data (tensors summarised by their bytes)."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Tensor):
        return fingerprint(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain({f.name: getattr(value, f.name)
                       for f in dataclasses.fields(value)})
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if callable(getattr(value, "to_dict", None)):  # torch_geometric Data
        return _plain(value.to_dict())
    return type(value).__name__


def _data_fingerprint(data: Dataset | None) -> Any:
    """The type, length and the content of the first, middle and last samples.

    Reading the samples must not move any random state (a dataset may draw random
    numbers in ``__getitem__``), so it happens under a fixed, then restored, seed.
    """
    if data is None:
        return None
    n = len(data)
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            random.seed(0)
            np.random.seed(0)
            torch.manual_seed(0)
            samples = [_plain(data[i]) for i in sorted({0, n // 2, n - 1}) if n]
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {"type": type(data).__name__, "len": n, "samples": samples}


def _run_identity(model: nn.Module, train_set: Dataset, val_set: Dataset | None,
                  **settings: Any) -> dict[str, Any]:
    """What makes a run: the model (class, config, parameter shapes), the
    optimisation settings, the seed, the epochs and the data."""
    from refimpl.checkpoint import _to_jsonable

    config = None
    if callable(getattr(model, "config", None)):
        try:
            config = _to_jsonable(model.config())
        except (TypeError, ValueError):
            config = None
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    return {"model": {"class": type(model).__name__, "config": config,
                      "shapes": shapes},
            **settings,
            "train_set": _data_fingerprint(train_set),
            "val_set": _data_fingerprint(val_set)}


def _differences(there: Any, here: Any, prefix: str = "") -> list[str]:
    if isinstance(there, dict) and isinstance(here, dict):
        out = []
        for key in sorted(set(there) | set(here), key=str):
            out += _differences(there.get(key), here.get(key),
                                f"{prefix}.{key}" if prefix else str(key))
        return out
    if there != here:
        def short(v: Any) -> str:
            text = repr(v)
            return text if len(text) <= 60 else text[:57] + "..."
        return [f"{prefix or 'identity'}: {short(there)} there, {short(here)} here"]
    return []


def _load_last(ckpt: Path, identity: dict[str, Any], device: torch.device
               ) -> dict[str, Any]:
    """Read ``last.pt`` and check that it belongs to the run described by
    ``identity``; a clear :class:`ValueError` otherwise."""
    path = ckpt / "last.pt"
    hint = ("use another checkpoint_dir, or resume=False to start over in this one "
            "(overwriting it)")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except LOAD_ERRORS as err:
        raise ValueError(f"cannot resume from {path}: the file cannot be read "
                         f"({type(err).__name__}); {hint}") from None
    meta = state.get("meta") if isinstance(state, dict) else None
    if not isinstance(meta, dict) or "identity" not in meta:
        raise ValueError(f"cannot resume from {path}: it records no run identity "
                         f"(written by an older refimpl); {hint}")
    diff = _differences(meta["identity"], identity)
    if diff:
        shown = "; ".join(diff[:6]) + ("; ..." if len(diff) > 6 else "")
        raise ValueError(f"checkpoint_dir {ckpt} holds a different run, so it is not "
                         f"resumed: {shown}. To continue it, call fit with the same "
                         f"model, data and settings; otherwise {hint}")
    return state


def fit(
    model: nn.Module,
    train_set: Dataset,
    *,
    epochs: int,
    batch_size: int,
    loss_fn: Optional[Callable[[Tensor, Tensor], Tensor]] = None,
    step_fn: Optional[StepFn] = None,
    val_set: Optional[Dataset] = None,
    val_fn: Optional[ValFn] = None,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    optimizer: str = "adam",
    scheduler: Optional[str] = "cosine",
    lr_step_epochs: int = 100,
    lr_gamma: float = 0.5,
    grad_clip: Optional[float | str] = None,
    amp: bool = True,
    collate_fn: Optional[Callable] = None,
    checkpoint_dir: Optional[str | Path] = None,
    resume: bool = True,
    seed: int = 0,
    device: Optional[torch.device | str] = None,
    progress: bool | None = None,
    ema_decay: Optional[float] = None,
) -> FitResult:
    r"""Train ``model`` on ``train_set``.

    Args:
        model: any ``nn.Module``; moved to ``device``.
        train_set: a map-style dataset; a batch is what its ``DataLoader`` yields.
        epochs: number of passes over ``train_set``.
        batch_size: the global batch size (split over ``torchrun`` processes).
        loss_fn: ``loss_fn(model(x), y)`` for batches ``(x, y)`` (default step).
        step_fn: ``step_fn(model, batch) -> loss`` for any other batch layout; it
            must call ``model(...)`` (not another method) for DDP to synchronise.
        val_set: optional validation set; selects the best checkpoint (never pass
            the test set here).
        val_fn: ``val_fn(model, batch) -> float`` (batch mean); default ``loss_fn``
            or ``step_fn``.
        lr, weight_decay, optimizer: ``"adam"``, ``"adamw"``, ``"adamw_amsgrad"``
            (AdamW with AMSGrad, EDM's) or ``"sgd"`` (momentum 0.9).
        scheduler: ``"cosine"`` (per step, to zero), ``"onecycle"``, ``"step"``
            (multiply the rate by ``lr_gamma`` every ``lr_step_epochs`` epochs; the
            FNO paper's schedule is 100 and 0.5) or :obj:`None` (constant).
        lr_step_epochs, lr_gamma: the ``"step"`` schedule's period and factor.
        grad_clip: clip the global gradient norm to this value, or
            ``"adaptive"`` for :class:`AdaptiveGradClip` (default: off).
        amp: mixed precision on CUDA (bf16 where supported, else fp16 with a grad
            scaler); ignored on CPU.
        collate_fn: passed to the ``DataLoader`` (e.g. PyG's ``Batch.from_data_list``).
        checkpoint_dir: where ``last.pt`` (full training state with its metadata
            and the run's identity, one atomic file; ``last.json`` is a readable
            copy of the metadata) and ``best.pt``/``best.json`` (weights + config,
            replaced as a pair, see :func:`~refimpl.checkpoint.save_model`) go;
            rank 0 writes. A kill at any instant leaves the last completed epoch.
        resume: continue from ``checkpoint_dir/last.pt`` if it exists. The folder
            records the run's identity (model class, config and parameter shapes;
            optimiser, schedule, clipping, EMA and precision settings; seed, batch
            size, epochs; the type, length and a checksum of the first, middle and
            last samples of ``train_set`` and ``val_set``); a folder of another run
            (even one that differs only in ``epochs``) is refused with a
            :class:`ValueError` naming what differs. ``resume=False`` starts over
            and overwrites the folder. The loss/step functions are not part of the
            identity.
        seed: seeds the epoch permutations and the global torch RNG (used by, e.g.,
            dropout or a diffusion step's noise); a resumed run restores the RNG.
        device: default :func:`refimpl.device` (the local rank's GPU under torchrun).
        progress: show a tqdm bar (rank 0 only).
        ema_decay: keep an EMA of the weights (``torch.optim.swa_utils``); the EMA
            weights are validated and checkpointed as "best".

    Returns:
        :class:`FitResult`.

    Raises:
        ValueError: bad arguments, an empty ``train_set``/``val_set``, a
            ``checkpoint_dir`` that is a file, or one that holds another run.
        FloatingPointError: a non-finite training loss or validation value.
    """
    import refimpl

    if (loss_fn is None) == (step_fn is None):
        raise ValueError("give exactly one of loss_fn (for (x, y) batches) or step_fn")
    ctx = distributed_context()
    _check_args(epochs, batch_size, ctx.world_size, len(train_set))
    if val_set is not None and len(val_set) == 0:
        raise ValueError("val_set is empty (0 samples); pass a validation set with "
                         "at least one sample, or val_set=None")
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckpt is not None:
        if ckpt.exists() and not ckpt.is_dir():
            raise ValueError(f"checkpoint_dir {str(ckpt)!r} is a file; expected a "
                             "folder (or a path that does not exist yet)")
        if ctx.is_main:
            try:
                ckpt.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise ValueError(f"checkpoint_dir {str(ckpt)!r} cannot be created "
                                 f"({err.strerror or err}); expected a writable "
                                 "folder") from None
            # Temporary files of writes that a kill interrupted (never read).
            for stem in ("last.pt", "last.json", "best.pt.new", "best.json"):
                for tmp in ckpt.glob(f".{stem}.*.tmp"):
                    tmp.unlink(missing_ok=True)
    if device is None:
        device = (torch.device("cuda", ctx.local_rank)
                  if ctx.world_size > 1 and torch.cuda.is_available() else refimpl.device())
    device = torch.device(device)

    if step_fn is None:
        def step_fn(m: nn.Module, batch: Any) -> Tensor:
            x, y = batch
            return loss_fn(m(x), y)
    if val_fn is None:
        def val_fn(m: nn.Module, batch: Any) -> float:
            return float(step_fn(m, batch))

    torch.manual_seed(seed)
    model = model.to(device)
    net: nn.Module = model
    if ctx.world_size > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    sampler = DistributedSampler(train_set, num_replicas=ctx.world_size, rank=ctx.rank,
                                 shuffle=True, seed=seed, drop_last=False)
    loader = DataLoader(train_set, batch_size=batch_size // ctx.world_size,
                        sampler=sampler, collate_fn=collate_fn,
                        pin_memory=device.type == "cuda")
    opt = _make_optimizer(optimizer, model.parameters(), lr, weight_decay)
    sched = _make_scheduler(scheduler, opt, epochs * len(loader), len(loader),
                            lr_step_epochs, lr_gamma)
    clipper: Optional[Callable[[Iterable[Tensor]], Any]] = None
    if grad_clip == "adaptive":
        clipper = AdaptiveGradClip()
    elif isinstance(grad_clip, str):
        raise ValueError(f"grad_clip must be a positive number, 'adaptive' or None, "
                         f"got {grad_clip!r}")
    elif grad_clip is not None:
        if not grad_clip > 0:
            raise ValueError(f"grad_clip must be positive, got {grad_clip}")
        max_norm = float(grad_clip)

        def clipper(params: Iterable[Tensor]) -> Tensor:
            return nn.utils.clip_grad_norm_(params, max_norm)

    use_amp = amp and device.type == "cuda"
    amp_dtype = (torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported()
                 else torch.float16)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    ema = None
    if ema_decay is not None:
        if not 0.0 < ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in (0, 1), got {ema_decay}")
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema_decay))

    history: list[dict[str, float]] = []
    best_val: Optional[float] = None
    start_epoch = 0
    identity = None
    if ckpt is not None:
        identity = _run_identity(
            model, train_set, val_set, epochs=epochs, batch_size=batch_size, seed=seed,
            optimizer=optimizer, lr=lr, weight_decay=weight_decay, scheduler=scheduler,
            lr_step_epochs=lr_step_epochs if scheduler == "step" else None,
            lr_gamma=lr_gamma if scheduler == "step" else None,
            grad_clip=grad_clip, ema_decay=ema_decay,
            amp=str(amp_dtype).replace("torch.", "") if use_amp else None)
    if ckpt is not None and resume and (ckpt / "last.pt").exists():
        state = _load_last(ckpt, identity, device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None and "scheduler" in state:
            sched.load_state_dict(state["scheduler"])
        if "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        if ema is not None and "ema" in state:
            ema.load_state_dict(state["ema"])
        if isinstance(clipper, AdaptiveGradClip) and "grad_clip" in state:
            clipper.load_state_dict(state["grad_clip"])
        torch.set_rng_state(state["rng_cpu"].cpu())
        if torch.cuda.is_available() and "rng_cuda" in state:
            torch.cuda.set_rng_state(state["rng_cuda"].cpu())
        meta = state["meta"]
        history, best_val, start_epoch = meta["history"], meta["best_val"], meta["epoch"]

    bar = tqdm(range(start_epoch, epochs), initial=start_epoch, total=epochs,
               progress=enabled(progress) and ctx.is_main, desc=type(model).__name__,
               unit="epoch", dynamic_ncols=True)
    for epoch in bar:
        sampler.set_epoch(epoch)
        net.train()
        t0, total, count = time.perf_counter(), 0.0, 0
        for batch in loader:
            batch = to_device(batch, device)
            with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                loss = step_fn(net, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss {loss.item()} at "
                                         f"epoch {epoch}; lower lr or enable grad_clip")
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if clipper is not None:
                scaler.unscale_(opt)
                clipper(model.parameters())
            scaler.step(opt)
            scaler.update()
            if sched is not None:
                sched.step()
            if ema is not None:
                ema.update_parameters(model)
            n = _batch_len(batch)
            total += loss.detach().item() * n
            count += n
        train_loss = total / max(count, 1)
        if ctx.world_size > 1:  # mean over all processes for the log
            t = torch.tensor([total, count], dtype=torch.float64, device=device)
            dist.all_reduce(t)
            train_loss = (t[0] / t[1]).item()
        record = {"epoch": epoch + 1, "train_loss": train_loss,
                  "lr": opt.param_groups[0]["lr"],
                  "seconds": time.perf_counter() - t0}
        scored = ema.module if ema is not None else model
        improved = False
        if val_set is not None:
            # Every rank scores the whole (small) validation set, so all ranks agree
            # on the best epoch without a broadcast.
            record["val"] = evaluate(scored, val_set, val_fn, batch_size=batch_size,
                                     device=device, collate_fn=collate_fn)
            if not math.isfinite(record["val"]):
                raise FloatingPointError(
                    f"non-finite validation value {record['val']} at epoch {epoch + 1}: "
                    "val_set holds NaN/inf or the model diverged; no best checkpoint "
                    "is chosen from it")
            improved = best_val is None or record["val"] < best_val
            best_val = record["val"] if improved else best_val
        history.append(record)
        bar.set_postfix({k: f"{v:.3g}" for k, v in record.items()
                         if k in ("train_loss", "val")})
        if ckpt is not None and ctx.is_main:
            if improved or val_set is None:
                _save_best(scored, ckpt, epoch=epoch + 1, val=record.get("val"))
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                     "scaler": scaler.state_dict(), "rng_cpu": torch.get_rng_state()}
            if sched is not None:
                state["scheduler"] = sched.state_dict()
            if ema is not None:
                state["ema"] = ema.state_dict()
            if isinstance(clipper, AdaptiveGradClip):
                state["grad_clip"] = clipper.state_dict()
            if torch.cuda.is_available():
                state["rng_cuda"] = torch.cuda.get_rng_state()
            meta = {"epoch": epoch + 1, "epochs": epochs, "history": history,
                    "best_val": best_val, "seed": seed, "batch_size": batch_size,
                    "world_size": ctx.world_size}
            # One file holds the training state and its metadata, written
            # atomically: a kill at any instant leaves the last good epoch.
            atomic_save({**state, "meta": {**meta, "identity": identity}},
                        ckpt / "last.pt")
            # A readable copy for people; resuming reads only last.pt.
            atomic_write_text(ckpt / "last.json", json.dumps(meta, indent=2) + "\n",
                              fsync=False)
        if ctx.world_size > 1:
            dist.barrier()
    bar.close()

    if ctx.owns_group:
        dist.destroy_process_group()
    model.eval()
    return FitResult(model=model, history=history, best_val=best_val,
                     ema_model=ema.module.eval() if ema is not None else None)

