import json

import pytest
import torch
from torch import nn

from refimpl.checkpoint import load_model, register_model, save_model


@register_model
class _Affine(nn.Module):
    def __init__(self, n: int = 3, bias: bool = True):
        super().__init__()
        self.n, self.bias = n, bias
        self.lin = nn.Linear(n, n, bias=bias)

    def config(self):
        return {"n": self.n, "bias": self.bias}


def test_round_trip_is_exact_and_plain(tmp_path):
    model = _Affine(4, bias=False)
    save_model(model, tmp_path / "m", epoch=3, val=torch.tensor(0.5))
    record = json.loads((tmp_path / "m.json").read_text())
    assert record["model"] == "_Affine" and record["meta"] == {"epoch": 3, "val": 0.5}
    # a plain state_dict: loads with weights_only=True
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    assert set(state) == {"lin.weight"}
    again, rec = load_model(tmp_path / "m.pt")
    assert isinstance(again, _Affine) and again.n == 4 and not again.bias
    assert torch.equal(again.lin.weight, model.lin.weight)
    assert not again.training


def test_errors(tmp_path):
    class Unregistered(nn.Module):
        def config(self):
            return {}

    with pytest.raises(TypeError, match="not registered"):
        save_model(Unregistered(), tmp_path / "u")
    with pytest.raises(TypeError, match="config"):
        register_model(type("NoConfig", (nn.Module,), {}))
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing")
    save_model(_Affine(), tmp_path / "x")
    rec = json.loads((tmp_path / "x.json").read_text())
    rec["model"] = "Nope"
    (tmp_path / "x.json").write_text(json.dumps(rec))
    with pytest.raises(ValueError, match="not registered"):
        load_model(tmp_path / "x")
