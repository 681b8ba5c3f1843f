import pytest
import torch

from refimpl import runtime


def test_measure_step_counts_linear_flops_exactly():
    B, I, O = 8, 16, 4
    model = torch.nn.Linear(I, O, bias=False)
    x = torch.randn(B, I)
    cost = runtime.measure_step(lambda: model(x).square().sum(), model, repeats=2)
    # forward 2BIO, backward for the weight 2BIO (x needs no gradient)
    assert cost.flops == 4 * B * I * O
    assert cost.seconds > 0 and cost.device == "cpu"
    assert model.weight.grad is None  # cleared after measuring


def test_t4_estimate_scales_with_steps_and_flops():
    one = runtime.t4_seconds(1e9, 1)
    assert runtime.t4_seconds(1e9, 10) == pytest.approx(10 * one)
    assert one == pytest.approx(1e9 / (runtime.T4_EFFICIENCY * runtime.T4_PEAK_FLOPS)
                                + runtime.T4_STEP_FLOOR_S)
    assert runtime.human_time(30) == "30 s" and runtime.human_time(600) == "10 min"
    assert runtime.human_time(3 * 3600) == "3.0 h"


def test_announce_only_at_paper_scale(monkeypatch, capsys):
    monkeypatch.setenv("REFIMPL_SCALE", "book")
    assert runtime.announce("dual_space", "python -m x") is None
    monkeypatch.setenv("REFIMPL_SCALE", "paper")
    text = runtime.announce("dual_space", "python -m refimpl.experiments.dual_space")
    assert "python -m refimpl.experiments.dual_space" in text and "paper" in text
    assert text in capsys.readouterr().out


def test_measure_step_rejects_bad_repeats():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="repeats"):
        runtime.measure_step(lambda: model(torch.ones(1, 2)).sum(), model, repeats=0)
