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


def test_failed_save_keeps_the_previous_checkpoint(tmp_path):
    good = _Affine(3)
    save_model(good, tmp_path / "m", epoch=1)
    before = {p: (tmp_path / p).read_bytes() for p in ("m.pt", "m.json")}
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        save_model(_Affine(3), tmp_path / "m", epoch=object())
    assert {p: (tmp_path / p).read_bytes() for p in before} == before
    assert not [p.name for p in tmp_path.iterdir() if p.name not in before]
    again, _ = load_model(tmp_path / "m")
    assert torch.equal(again.lin.weight, good.lin.weight)


def test_corrupt_or_mismatched_checkpoints_are_clear_errors(tmp_path):
    save_model(_Affine(3), tmp_path / "m")
    save_model(_Affine(3), tmp_path / "other")
    (tmp_path / "m.pt").write_bytes((tmp_path / "other.pt").read_bytes())
    with pytest.raises(ValueError, match="do not match the checksum"):
        load_model(tmp_path / "m")
    (tmp_path / "m.json").write_text('{"model": "_Aff')
    with pytest.raises(ValueError, match="not a readable JSON record"):
        load_model(tmp_path / "m")
    record = json.loads((tmp_path / "other.json").read_text())
    record["config"]["n"] = 5
    (tmp_path / "other.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="do not fit _Affine"):
        load_model(tmp_path / "other")
    record["config"] = {"n": 3, "colour": "red"}
    (tmp_path / "other.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="config that _Affine does not accept"):
        load_model(tmp_path / "other")


def test_a_save_interrupted_after_its_commit_point_loads_the_new_weights(tmp_path):
    old, new = _Affine(3), _Affine(3)
    save_model(old, tmp_path / "m")
    pending = tmp_path / "m.pt.new"
    save_model(new, tmp_path / "m")
    # Undo the last step (the rename of the weights) as a kill would have.
    (tmp_path / "m.pt").rename(pending)
    save_model(old, tmp_path / "tmp")
    (tmp_path / "tmp.pt").rename(tmp_path / "m.pt")
    again, _ = load_model(tmp_path / "m")
    assert torch.equal(again.lin.weight, new.lin.weight)
