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
from refimpl.training import AdaptiveGradClip, fit

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


@pytest.mark.parametrize("options", [
    dict(grad_clip=1.0),
    # EDM's optimiser and clipping, the FNO's step decay: their state (AMSGrad's
    # maxima, the clipping queue, the step counter) must survive a restart too.
    dict(grad_clip="adaptive", optimizer="adamw_amsgrad", scheduler="step",
         lr_step_epochs=1, lr_gamma=0.5),
], ids=["fixed-clip", "adaptive-clip-amsgrad-step"])
def test_interrupted_run_resumes_to_identical_weights(tmp_path, options):
    data, val = _data(), _data(16, seed=5)
    kw = dict(epochs=4, batch_size=8, val_set=val, lr=1e-2, progress=False,
              device="cpu", ema_decay=0.9, **options)
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


def test_bad_schedule_and_clipping_arguments():
    data, mse = _data(), nn.functional.mse_loss
    kw = dict(epochs=1, batch_size=8, loss_fn=mse, progress=False, device="cpu")
    with pytest.raises(ValueError, match="unknown scheduler 'linear'"):
        fit(_model(), data, scheduler="linear", **kw)
    with pytest.raises(ValueError, match="lr_gamma must lie in"):
        fit(_model(), data, scheduler="step", lr_gamma=0.0, **kw)
    with pytest.raises(ValueError, match="lr_step_epochs must be a positive integer"):
        fit(_model(), data, scheduler="step", lr_step_epochs=0, **kw)
    with pytest.raises(ValueError, match="'adaptive' or None, got 'sometimes'"):
        fit(_model(), data, grad_clip="sometimes", **kw)
    with pytest.raises(ValueError, match="grad_clip must be positive"):
        fit(_model(), data, grad_clip=-1.0, **kw)


def test_step_schedule_decays_at_epoch_boundaries():
    # 32 samples in batches of 8: four steps per epoch; halve every 2 epochs.
    res = fit(_model(), _data(), epochs=5, batch_size=8, lr=1e-2,
              loss_fn=nn.functional.mse_loss, scheduler="step", lr_step_epochs=2,
              lr_gamma=0.5, progress=False, device="cpu")
    assert [h["lr"] for h in res.history] == pytest.approx(
        [1e-2, 5e-3, 5e-3, 2.5e-3, 2.5e-3])


def test_amsgrad_optimizer_is_used(monkeypatch):
    calls = []
    original = torch.optim.AdamW.__init__

    def spy(self, params, **kwargs):
        calls.append(kwargs)
        original(self, params, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "__init__", spy)
    fit(_model(), _data(), epochs=1, batch_size=8, loss_fn=nn.functional.mse_loss,
        optimizer="adamw_amsgrad", progress=False, device="cpu")
    assert calls and calls[0]["amsgrad"] is True


def test_adaptive_clip_threshold_and_queue():
    clip = AdaptiveGradClip(window=3, initial=3000.0)
    assert clip.threshold == pytest.approx(4500.0)  # 1.5 * 3000 + 2 * 0
    w = nn.Parameter(torch.zeros(2))
    w.grad = torch.tensor([3.0, 4.0])
    assert clip([w]) == pytest.approx(5.0)          # below 4500: untouched
    assert torch.allclose(w.grad, torch.tensor([3.0, 4.0]))
    q = torch.tensor([3000.0, 5.0], dtype=torch.float64)
    assert clip.threshold == pytest.approx(float(1.5 * q.mean() + 2 * q.std(unbiased=False)))
    for _ in range(3):                              # the window forgets the 3000
        w.grad = torch.tensor([3.0, 4.0])
        clip([w])
    assert clip.queue == [5.0, 5.0, 5.0] and clip.threshold == pytest.approx(7.5)
    w.grad = torch.tensor([300.0, 400.0])           # a spike is cut to 1.5 x recent
    assert clip([w]) == pytest.approx(500.0)
    assert w.grad.norm().item() == pytest.approx(7.5, rel=1e-5)
    assert clip.queue[-1] == pytest.approx(7.5)
    w.grad = torch.tensor([float("inf"), 0.0])     # an overflow is not recorded
    clip([w])
    assert len(clip.queue) == 3 and clip.queue[-1] == pytest.approx(7.5)
    restored = AdaptiveGradClip()
    restored.load_state_dict(clip.state_dict())
    assert restored.queue == clip.queue and restored.window == 3
    assert "AdaptiveGradClip(window=3" in repr(clip)
    with pytest.raises(ValueError, match="window"):
        AdaptiveGradClip(window=0)


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
from refimpl.training import AdaptiveGradClip, fit
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


# ------------------------------------------------------------------ run identity
def _quick(folder, **kw):
    args = {"epochs": 3, "batch_size": 8, "loss_fn": nn.functional.mse_loss,
            "lr": 1e-2, "progress": False, "device": "cpu", "checkpoint_dir": folder}
    model = kw.pop("model", None) or _model()
    data = kw.pop("data", None) or _data()
    return fit(model, data, **(args | kw))


@pytest.mark.parametrize("change, match", [
    ({"seed": 1}, r"seed: 0 there, 1 here"),
    ({"epochs": 1}, r"epochs: 3 there, 1 here"),
    ({"epochs": 5}, r"epochs: 3 there, 5 here"),
    ({"lr": 2e-2}, r"lr: 0.01 there, 0.02 here"),
    ({"batch_size": 4}, r"batch_size: 8 there, 4 here"),
    ({"optimizer": "sgd"}, r"optimizer: 'adam' there, 'sgd' here"),
    ({"scheduler": None}, r"scheduler: 'cosine' there, None here"),
    ({"ema_decay": 0.9}, r"ema_decay: None there, 0.9 here"),
    ({"data": _data(seed=3)}, r"train_set\.samples"),
    ({"data": _data(n=40)}, r"train_set\.len: 32 there, 40 here"),
    ({"model": TinyRegressor(hidden=16)}, r"model\.config\.hidden: 8 there, 16 here"),
], ids=["seed", "fewer-epochs", "more-epochs", "lr", "batch", "optimizer",
        "scheduler", "ema", "data-content", "data-length", "model-config"])
def test_resume_refuses_a_different_run(tmp_path, change, match):
    _quick(tmp_path)
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(ValueError, match=match):
        _quick(tmp_path, **change)
    assert (tmp_path / "last.pt").read_bytes() == before  # nothing was mixed in


def test_resume_of_a_finished_run_returns_it_and_resume_false_starts_over(tmp_path):
    first = _quick(tmp_path)
    again = _quick(tmp_path, model=_model(seed=5))
    for p, q in zip(first.model.parameters(), again.model.parameters()):
        assert torch.equal(p, q)
    fresh = _quick(tmp_path, seed=1, resume=False)
    assert json.loads((tmp_path / "last.json").read_text())["seed"] == 1
    assert any(not torch.equal(p, q) for p, q in
               zip(first.model.parameters(), fresh.model.parameters()))


def test_resume_refuses_a_legacy_or_corrupt_last_checkpoint(tmp_path):
    _quick(tmp_path)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    del state["meta"]
    torch.save(state, tmp_path / "last.pt")
    with pytest.raises(ValueError, match="records no run identity"):
        _quick(tmp_path)
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot be read"):
        _quick(tmp_path)


def test_checkpoint_dir_that_is_a_file_fails_before_training(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("x")
    calls = []

    def step(m, batch):
        calls.append(1)
        return nn.functional.mse_loss(m(batch[0]), batch[1])
    with pytest.raises(ValueError, match="checkpoint_dir .* is a file; expected a folder"):
        fit(_model(), _data(), epochs=1, batch_size=8, step_fn=step, progress=False,
            device="cpu", checkpoint_dir=path)
    assert not calls


def test_nan_or_empty_validation_set_is_an_error(tmp_path):
    val = _data(8, seed=2)
    val.tensors[1][3] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite validation value nan at "
                                                 "epoch 1.*val_set"):
        _quick(tmp_path / "nan", val_set=val)
    assert not (tmp_path / "nan" / "best.pt").exists()
    with pytest.raises(ValueError, match="val_set is empty"):
        _quick(tmp_path / "empty",
               val_set=TensorDataset(torch.zeros(0, 4), torch.zeros(0, 1)))


def test_data_fingerprint_reads_numpy_and_dataclass_samples_without_moving_rngs():
    import dataclasses
    import random

    import numpy as np

    from refimpl.training import _data_fingerprint

    @dataclasses.dataclass
    class Item:
        x: np.ndarray
        label: int

    class Noisy(torch.utils.data.Dataset):
        def __init__(self, shift=0.0):
            self.shift = shift

        def __len__(self):
            return 5

        def __getitem__(self, i):  # draws from every global RNG
            noise = random.random() + np.random.rand() + float(torch.rand(()))
            return Item(np.full(3, i + self.shift + 0 * noise), i)

    states = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    a, b = _data_fingerprint(Noisy()), _data_fingerprint(Noisy())
    assert a == b and a["len"] == 5
    assert _data_fingerprint(Noisy(shift=1.0)) != a  # the content is read
    assert random.getstate() == states[0]
    assert np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.get_rng_state(), states[2])
