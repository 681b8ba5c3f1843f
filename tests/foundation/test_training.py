import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from refimpl.checkpoint import load_model, register_model
from refimpl.training import fit

REPO = Path(__file__).resolve().parents[2]


@register_model
class TinyRegressor(nn.Module):
    def __init__(self, d_in: int = 4, hidden: int = 8):
        super().__init__()
        self.d_in, self.hidden = d_in, hidden
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def config(self) -> dict:
        return {"d_in": self.d_in, "hidden": self.hidden}

    def forward(self, x):
        return self.net(x)


def _data(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = torch.tanh(x.sum(1, keepdim=True)) + 0.1 * torch.randn(n, 1, generator=g)
    return TensorDataset(x, y)


def _model(seed=1):
    torch.manual_seed(seed)
    return TinyRegressor()


def test_fit_reduces_loss_and_is_reproducible():
    data = _data()
    a = fit(_model(), data, epochs=15, batch_size=8, loss_fn=nn.functional.mse_loss,
            lr=1e-2, progress=False, device="cpu")
    b = fit(_model(), data, epochs=15, batch_size=8, loss_fn=nn.functional.mse_loss,
            lr=1e-2, progress=False, device="cpu")
    assert a.history[-1]["train_loss"] < 0.5 * a.history[0]["train_loss"]
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)


class _Crash(RuntimeError):
    pass


def _noisy_step(crash_at=None):
    """An MSE step whose gradient also depends on the global RNG (as dropout or a
    diffusion step's noise would), so resumption must restore the RNG state."""
    calls = {"n": 0}

    def step(m, batch):
        if m.training:
            calls["n"] += 1
            if calls["n"] == crash_at:
                raise _Crash
        scale = 1.0 + 0.1 * torch.randn(())
        return scale * nn.functional.mse_loss(m(batch[0]), batch[1])
    return step


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    data, val = _data(), _data(16, seed=5)
    kw = dict(epochs=4, batch_size=8, val_set=val, lr=1e-2, progress=False,
              device="cpu", ema_decay=0.9, grad_clip=1.0)
    full = fit(_model(), data, step_fn=_noisy_step(), checkpoint_dir=tmp_path / "full",
               **kw)
    crashing_step = _noisy_step(crash_at=2 * 4 + 2)  # mid-way through epoch 3
    with pytest.raises(_Crash):
        fit(_model(), data, step_fn=crashing_step, checkpoint_dir=tmp_path / "cut", **kw)
    meta = json.loads((tmp_path / "cut" / "last.json").read_text())
    assert meta["epoch"] == 2
    resumed = fit(_model(seed=99), data, step_fn=crashing_step,
                  checkpoint_dir=tmp_path / "cut", **kw)
    for p, q in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(p, q)
    for p, q in zip(full.ema_model.parameters(), resumed.ema_model.parameters()):
        assert torch.equal(p, q)
    assert [h["train_loss"] for h in full.history] == \
        [h["train_loss"] for h in resumed.history]

    best, record = load_model(tmp_path / "cut" / "best")
    assert isinstance(best, TinyRegressor) and record["config"] == {"d_in": 4, "hidden": 8}
    assert record["meta"]["val"] == pytest.approx(resumed.best_val)


def test_bad_arguments():
    data = _data()
    with pytest.raises(ValueError, match="exactly one"):
        fit(_model(), data, epochs=1, batch_size=4)
    with pytest.raises(ValueError, match="epochs"):
        fit(_model(), data, epochs=0, batch_size=4, loss_fn=nn.functional.mse_loss)
    with pytest.raises(ValueError, match="empty"):
        fit(_model(), TensorDataset(torch.zeros(0, 4), torch.zeros(0, 1)), epochs=1,
            batch_size=4, loss_fn=nn.functional.mse_loss)
    with pytest.raises(ValueError, match="unknown optimizer"):
        fit(_model(), data, epochs=1, batch_size=4, loss_fn=nn.functional.mse_loss,
            optimizer="lion", progress=False)


def test_non_finite_loss_is_reported():
    data = _data()
    with pytest.raises(FloatingPointError, match="non-finite"):
        fit(_model(), data, epochs=1, batch_size=8, progress=False, device="cpu",
            step_fn=lambda m, b: m(b[0]).sum() * float("nan"))


def test_device_placement(device):
    res = fit(_model(), _data(), epochs=1, batch_size=8, loss_fn=nn.functional.mse_loss,
              progress=False, device=device)
    assert next(res.model.parameters()).device.type == device.type


_DDP_SCRIPT = r"""
import json, sys, torch
from torch import nn
sys.path.insert(0, {tests!r})
from foundation.test_training import _data, _model
from refimpl.training import fit
res = fit(_model(), _data(), epochs=3, batch_size=8, loss_fn=nn.functional.mse_loss,
          lr=1e-2, progress=False, device="cpu", scheduler=None)
if torch.distributed.is_initialized() is False:
    pass
import os
if int(os.environ.get("RANK", "0")) == 0:
    torch.save({{k: v for k, v in res.model.state_dict().items()}}, {out!r})
"""


def test_torchrun_two_processes_match_single_process(tmp_path):
    script = tmp_path / "ddp_fit.py"
    script.write_text(_DDP_SCRIPT.format(tests=str(REPO / "tests"),
                                         out=str(tmp_path / "ddp.pt")))
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--standalone", str(script)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    single = fit(_model(), _data(), epochs=3, batch_size=8,
                 loss_fn=nn.functional.mse_loss, lr=1e-2, progress=False,
                 device="cpu", scheduler=None).model.state_dict()
    for k in single:
        torch.testing.assert_close(ddp[k], single[k], rtol=1e-5, atol=1e-6)
