"""Tests of the side-by-side training helpers (refimpl.operators.benchmark)."""

import math

import matplotlib
import pytest
import torch

from refimpl.operators import CNO, FNO, DeepONet, UNet
from refimpl.operators.benchmark import (darcy_data, evaluate_operator,
                                         plot_predictions, train_and_evaluate,
                                         wave_data)
from refimpl.operators.normalized import NormalizedOperator

matplotlib.use("Agg")


def test_wave_data_splits_and_extra_grids():
    data = wave_data(1.0, 6, 2, 3, resolution=9, test_resolutions=(17,), K=4)
    assert data.x_train.shape == (6, 1, 9, 9) and data.y_val.shape == (2, 1, 9, 9)
    x17, y17 = data.extra_tests["17x17"]
    assert x17.shape == (3, 1, 17, 17)
    # the same test functions on the finer (nested) grid
    torch.testing.assert_close(x17[:, :, ::2, ::2], data.x_test, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(y17[:, :, ::2, ::2], data.y_test, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="n_val"):
        wave_data(1.0, 4, 0, 2)


def test_darcy_data_on_nested_grids():
    data = darcy_data(3, 1, 2, resolution=5, test_resolutions=(9,), oversample=2)
    a9, u9 = data.extra_tests["9x9"]
    torch.testing.assert_close(a9[:, :, ::2, ::2], data.x_test)
    torch.testing.assert_close(u9[:, :, ::2, ::2], data.y_test)
    assert data.label == "5x5" and "9x9" in repr(data)


def test_normalized_operator_decodes_to_physical_units():
    x = 1e-3 * torch.randn(8, 1, 6, 6) + 2.0
    y = 5.0 * torch.randn(8, 1, 6, 6) - 1.0
    net = NormalizedOperator.fit(torch.nn.Identity(), x, y)
    z = (x - x.mean()) / x.std()
    torch.testing.assert_close(net(x), z * y.std() + y.mean(), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="positive"):
        NormalizedOperator(torch.nn.Identity(), [0.0], [0.0], [0.0], [1.0])


def test_train_and_evaluate_tiny(tmp_path):
    data = wave_data(1.0, 8, 4, 4, resolution=9, test_resolutions=(17,), K=4)
    models = {"FNO": lambda: FNO(1, 1, modes=2, width=4, n_layers=1),
              "UNet": lambda: UNet(1, 1, width=2, depth=1)}
    res = train_and_evaluate(models, [data], epochs=2, batch_size=4, progress=False)
    assert res.models == ["FNO", "UNet"] and res.datasets == ["wave t=1"]
    run = res.get("FNO", "wave t=1")
    assert run.family == "functional" and run.n_params == FNO(1, 1, 2, 4, 1).n_params
    assert len(run.history) == 2 and run.val == min(h["val"] for h in run.history)
    errors = evaluate_operator(run.net, data.x_test, data.y_test)
    assert errors.shape == (4,) and abs(errors.mean().item() - run.test) < 1e-6
    assert set(run.extra) == {"17x17"}
    table = res.table()
    assert table.count("\n") == 3 and "| FNO | functional |" in table
    assert "ratio 17x17" in res.transfer_table("wave t=1")
    fig = plot_predictions(res, data)
    # truth and 2 predictions above, input and 2 errors below, one colour bar
    assert len(fig.axes) == 2 * (1 + 2) + 1
    fig = plot_predictions(res, data, grid="17x17", models=["UNet"])
    assert fig.axes[0].images[0].get_array().shape == (17, 17)
    lines = res.verdicts("17x17").splitlines()
    assert len(lines) == 2
    assert all(("transfers" in t) != ("degrades" in t) for t in lines)
    # same seed, same protocol -> identical result
    again = train_and_evaluate({"FNO": models["FNO"]}, [data], epochs=2, batch_size=4,
                               progress=False)
    assert again.get("FNO", "wave t=1").test == run.test
    with pytest.raises(KeyError):
        res.get("CNO", "wave t=1")
    with pytest.raises(ValueError, match="models is empty"):
        train_and_evaluate({}, [data], epochs=1, batch_size=2)


def test_exact_input_transfer_separates_resampling_from_the_model():
    """CNO and DeepONet read their input on a fixed grid; with that grid equal to
    the training grid, the extra grid is also scored from exact samples, and the
    input change by their own resampling is recorded."""
    from refimpl.operators.benchmark import input_resampling_error

    data = wave_data(1.0, 8, 4, 4, resolution=9, test_resolutions=(17,), K=4)
    models = {"CNO": lambda: CNO(1, 1, width=2, depth=1, n_res=1, n_res_neck=1,
                                 latent_resolution=9),
              "DeepONet": lambda: DeepONet(1, 1, n_basis=4, width=2, n_down=1,
                                           sensors=9, trunk_width=8, trunk_layers=1),
              "UNet": lambda: UNet(1, 1, width=2, depth=1)}
    res = train_and_evaluate(models, [data], epochs=1, batch_size=4, progress=False)
    x17, y17 = data.extra_tests["17x17"]
    for name in ("CNO", "DeepONet"):
        run = res.get(name, "wave t=1")
        assert set(run.exact) == set(run.resampling) == {"17x17"}
        # the exact-input score is the model fed the training-grid samples
        direct = evaluate_operator(run.net, data.x_test, y17, output_shape=(17, 17))
        assert abs(direct.mean().item() - run.exact["17x17"]) < 1e-6
        # ... which differ from the resampled fine-grid input
        assert run.resampling["17x17"] > 0.01
        op = run.net.operator
        assert run.resampling["17x17"] == input_resampling_error(op, x17, data.x_test)
    assert res.get("UNet", "wave t=1").exact == {}
    table = res.transfer_table("wave t=1")
    assert "exact input" in table and "input change" in table
    assert math.isnan(input_resampling_error(UNet(1, 1, width=2, depth=1), x17,
                                             data.x_test))  # no fixed grid
    with pytest.raises(ValueError, match="latent_resolution"):
        CNO(1, 1, width=2, depth=1)(data.x_test, output_shape=(17, 17))


def test_model_factories_and_transfer_plot():
    from refimpl.operators.benchmark import (BenchmarkResults, RunResult,
                                             model_factories, model_table,
                                             plot_transfer)

    factories = model_factories({"FNO": dict(modes=2, width=4, n_layers=1),
                                 "T1": dict(modes=3, width=4, n_layers=1)})
    a, b = factories["FNO"](), factories["FNO"]()
    assert isinstance(a, FNO) and a is not b and a.in_channels == 1
    assert factories["T1"]().family == "functional"
    with pytest.raises(ValueError, match="unknown model"):
        model_factories({"NeuralOperator": {}})
    table = model_table(factories)
    assert "| FNO | functional | " + f"{a.n_params:,}" in table
    runs = [RunResult(m, d, "spatial" if m == "UNet" else "functional", 10, 0.1,
                      0.1, {"65x65": 0.2}, 1.0, [], torch.nn.Identity())
            for m in ("FNO", "UNet") for d in ("a", "b")]
    ax = plot_transfer(BenchmarkResults(runs), "65x65")
    assert len(ax.patches) == 4
    assert [round(p.get_height(), 6) for p in ax.patches] == [2.0] * 4
