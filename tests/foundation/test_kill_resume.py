"""Kill a training process at random instants (SIGKILL) and resume it: the last
good checkpoint must survive every kill, and the finished run must be bit-identical
to an uninterrupted one."""

import json
import multiprocessing
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from refimpl.checkpoint import _read_record, _weights_file, load_model, register_model
from refimpl.training import fit

EPOCHS = 10
KILLS = 6


@register_model
class KillTiny(nn.Module):
    def __init__(self, d: int = 3):
        super().__init__()
        self.d = d
        self.lin = nn.Linear(d, 1)

    def config(self):
        return {"d": self.d}

    def forward(self, x):
        return self.lin(x)


def _train(folder: str) -> None:
    """The child: a tiny model trained for many short epochs, so that much of the
    run is spent writing checkpoints (where a kill is most dangerous)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 3, generator=g)
    data = TensorDataset(x, x.sum(1, keepdim=True)
                         + 0.1 * torch.randn(24, 1, generator=g))
    val = TensorDataset(x[:8], x[:8].sum(1, keepdim=True))

    def step(m, batch):  # the gradient depends on the global RNG: it must be restored
        return (1 + 0.1 * torch.randn(())) * nn.functional.mse_loss(m(batch[0]),
                                                                   batch[1])
    torch.manual_seed(1)
    fit(KillTiny(), data, epochs=EPOCHS, batch_size=8, step_fn=step, val_set=val,
        lr=0.05, ema_decay=0.5, progress=False, device="cpu", checkpoint_dir=folder)


def _start(folder: Path):
    # A forked child starts at once (no second import of torch).
    proc = multiprocessing.get_context("fork").Process(target=_train,
                                                       args=(str(folder),))
    proc.start()
    return proc


def _epoch(folder: Path) -> int:
    """The last completed epoch, from the readable copy ``last.json`` (written
    after ``last.pt``, atomically)."""
    try:
        return json.loads((folder / "last.json").read_text())["epoch"]
    except FileNotFoundError:
        return 0


def _wait_for_epoch(proc, folder: Path, epoch: int) -> list[float]:
    """Poll until ``epoch`` is completed (or the child ends); the times at which
    new epochs appeared."""
    seen, times = _epoch(folder), []
    while seen < epoch and proc.is_alive():
        time.sleep(0.002)
        now = _epoch(folder)
        if now != seen:
            seen = now
            times.append(time.perf_counter())
    return times


def _best(folder: Path) -> tuple[dict, dict]:
    """The best weights and their record, as load_model reads them (the weights
    must match the checksum of the record)."""
    record = _read_record(folder / "best.json")
    weights = _weights_file(folder / "best.pt", record)
    return torch.load(weights, weights_only=True), record


def _final(folder: Path) -> tuple[dict, dict, dict]:
    last = torch.load(folder / "last.pt", weights_only=True)
    return (last, *_best(folder))


@pytest.mark.skipif(sys.platform == "win32", reason="needs fork and SIGKILL")
def test_sigkill_at_random_instants_then_resume_is_bit_identical(tmp_path):
    # The reference runs here, uninterrupted. A first run imports what the first
    # optimiser step imports lazily, so that forked children start warm.
    _train(str(tmp_path / "warm"))
    ref = tmp_path / "ref"
    t0 = time.perf_counter()
    _train(str(ref))
    epoch_time = (time.perf_counter() - t0) / EPOCHS
    ref_last, ref_best, ref_record = _final(ref)

    # Each kill waits for 0 to 2 more completed epochs, then a random part of an
    # epoch (which includes its checkpoint writes), so kills land all over the run.
    rng = random.Random(2024)
    cut = tmp_path / "cut"
    resumed_from = []
    while True:
        done = _epoch(cut)
        resumed_from.append(done)
        proc = _start(cut)
        if len(resumed_from) <= KILLS:
            _wait_for_epoch(proc, cut, min(done + rng.randint(0, 2), EPOCHS - 1))
            time.sleep(rng.uniform(0.0, epoch_time))
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGKILL)
                proc.join()
                # The last good checkpoint is readable after every kill.
                if (cut / "last.pt").exists():
                    state = torch.load(cut / "last.pt", weights_only=True)
                    assert 1 <= state["meta"]["epoch"] <= EPOCHS
                    load_model(cut / "best")
                continue
        proc.join(timeout=120)
        assert proc.exitcode == 0
        break
    # Most runs resumed from a checkpoint part-way through training.
    assert sum(0 < e < EPOCHS for e in resumed_from) >= 3, resumed_from
    last, best, record = _final(cut)

    def untimed(history):
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history]
    assert len(last["meta"]["history"]) == EPOCHS
    assert untimed(last["meta"]["history"]) == untimed(ref_last["meta"]["history"])
    for key in ("model", "ema", "optimizer", "scheduler", "rng_cpu"):
        torch.testing.assert_close(last[key], ref_last[key], rtol=0, atol=0)
    for k in ref_best:
        assert torch.equal(best[k], ref_best[k]), k
    assert record["meta"] == ref_record["meta"]
    assert not list(cut.glob(".*.tmp"))  # interrupted writes were cleaned up
    print(f"resumed from epochs {resumed_from}; one epoch takes {epoch_time:.3f}s")


# ---------------------------------------------------- deterministic fault injection
class _Crash(BaseException):
    """Stands for a kill: not an Exception, so no handler in the code under test
    can swallow it."""


def _tiny_run(folder: Path, epochs: int = 3):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 3, generator=g)
    data = TensorDataset(x, x.sum(1, keepdim=True))
    torch.manual_seed(1)
    model = nn.Linear(3, 1)

    def step(m, batch):
        return (1 + 0.1 * torch.randn(())) * nn.functional.mse_loss(m(batch[0]),
                                                                   batch[1])
    return fit(model, data, epochs=epochs, batch_size=4, step_fn=step,
               val_set=TensorDataset(x[:4], x[:4].sum(1, keepdim=True)), lr=0.05,
               progress=False, device="cpu", checkpoint_dir=folder)


def test_a_crash_at_every_file_operation_leaves_a_resumable_checkpoint(tmp_path,
                                                                      monkeypatch):
    """Crash at the k-th file operation of a run (half of a file written, or just
    before an fsync or a rename), for every k; the resumed run must equal the
    uninterrupted one bit for bit, and the best pair must stay readable."""
    ref = _tiny_run(tmp_path / "ref")
    ref_best = _best(tmp_path / "ref")[0]
    real_save, real_replace, real_fsync = torch.save, os.replace, os.fsync
    calls = {"n": 0, "crash_at": -1}

    def tick():
        calls["n"] += 1
        return calls["n"] == calls["crash_at"]

    def save(obj, f, *args, **kwargs):
        if tick():
            import io
            buf = io.BytesIO()
            real_save(obj, buf)
            blob = buf.getvalue()[: len(buf.getvalue()) // 2]
            if hasattr(f, "write"):
                f.write(blob)
            else:
                Path(f).write_bytes(blob)
            raise _Crash
        return real_save(obj, f, *args, **kwargs)

    def replace(a, b):
        if tick():
            raise _Crash
        return real_replace(a, b)

    def fsync(fd):
        if tick():
            raise _Crash
        return real_fsync(fd)

    monkeypatch.setattr(torch, "save", save)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "fsync", fsync)
    _tiny_run(tmp_path / "count")
    total = calls["n"]
    assert total >= 12  # three epochs of best + last writes
    for k in range(1, total + 1):
        folder = tmp_path / f"crash{k}"
        calls.update(n=0, crash_at=k)
        with pytest.raises(_Crash):
            _tiny_run(folder)
        calls.update(n=0, crash_at=-1)
        if (folder / "best.json").exists():  # the best pair is consistent
            _best(folder)
        resumed = _tiny_run(folder)
        for p, q in zip(ref.model.parameters(), resumed.model.parameters()):
            assert torch.equal(p, q), f"crash at file operation {k}"
        assert [h["train_loss"] for h in resumed.history] == \
            [h["train_loss"] for h in ref.history]
        best = _best(folder)[0]
        assert all(torch.equal(best[n], ref_best[n]) for n in ref_best), k
