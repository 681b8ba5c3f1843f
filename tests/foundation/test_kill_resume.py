"""Kill a training process at random instants (SIGKILL) and resume it: the last
good checkpoint must survive every kill, and the finished run must be bit-identical
to an uninterrupted one."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from refimpl.checkpoint import _read_record, _weights_file

REPO = Path(__file__).resolve().parents[2]

# A tiny model trained for many short epochs, so that much of the run is spent
# writing checkpoints (where a kill is most dangerous).
CHILD = r"""
import sys
import torch
from torch import nn
from torch.utils.data import TensorDataset
from refimpl.checkpoint import register_model
from refimpl.training import fit

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

g = torch.Generator().manual_seed(0)
x = torch.randn(24, 3, generator=g)
data = TensorDataset(x, x.sum(1, keepdim=True) + 0.1 * torch.randn(24, 1, generator=g))
val = TensorDataset(x[:8], x[:8].sum(1, keepdim=True))

def step(m, batch):  # the gradient depends on the global RNG: it must be restored
    return (1 + 0.1 * torch.randn(())) * nn.functional.mse_loss(m(batch[0]), batch[1])

torch.manual_seed(1)
print("ready", flush=True)
fit(KillTiny(), data, epochs=int(sys.argv[2]), batch_size=8, step_fn=step,
    val_set=val, lr=0.05, ema_decay=0.5, progress=False, device="cpu",
    checkpoint_dir=sys.argv[1])
"""

EPOCHS = 25


def _start(folder: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", CHILD, str(folder), str(EPOCHS)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            text=True)


def _wait_ready(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    if "ready" not in line:
        proc.wait()
        pytest.fail(f"child failed to start: {proc.stderr.read()}")


def _best(folder: Path) -> tuple[dict, dict]:
    """The best weights and their record, as load_model reads them (the weights
    must match the checksum of the record)."""
    record = _read_record(folder / "best.json")
    weights = _weights_file(folder / "best.pt", record)
    return torch.load(weights, weights_only=True), record


def _final(folder: Path) -> tuple[dict, dict, dict]:
    last = torch.load(folder / "last.pt", weights_only=True)
    return (last, *_best(folder))


def test_sigkill_at_random_instants_then_resume_is_bit_identical(tmp_path):
    ref = tmp_path / "ref"
    proc = _start(ref)
    _wait_ready(proc)
    t0 = time.perf_counter()
    _, err = proc.communicate(timeout=120)
    duration = time.perf_counter() - t0
    assert proc.returncode == 0, err
    ref_last, ref_best, ref_record = _final(ref)

    rng = random.Random(2024)
    cut = tmp_path / "cut"
    kills = 0
    while True:
        proc = _start(cut)
        _wait_ready(proc)
        if kills < 10:
            time.sleep(rng.uniform(0.0, duration / 3))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                # The last good checkpoint is readable after every kill.
                if (cut / "last.pt").exists():
                    state = torch.load(cut / "last.pt", weights_only=True)
                    assert 1 <= state["meta"]["epoch"] <= EPOCHS
                    _best(cut)
                continue
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        break
    assert kills >= 5, "the child finished too fast to be killed"
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
    print(f"{kills} kills, uninterrupted run {duration:.2f}s")


# ---------------------------------------------------- deterministic fault injection
class _Crash(BaseException):
    """Stands for a kill: not an Exception, so no handler in the code under test
    can swallow it."""


def _tiny_run(folder: Path, epochs: int = 3):
    from torch import nn
    from torch.utils.data import TensorDataset

    from refimpl.training import fit

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
