"""Tests of the dataset cache and the ``refimpl.pde.load`` dispatcher."""

import pytest
import torch

import refimpl.pde as pde
from refimpl.pde import cache, darcy, wave


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path))
    return tmp_path


def test_cached_generates_once_and_round_trips(_tmp_cache):
    calls = []

    def make():
        calls.append(1)
        return torch.arange(6.0).reshape(2, 3), {"b": torch.ones(2)}

    params = dict(n=2, resolution=3, dtype=torch.float32, t=[1, 2])
    first = pde.cached("toy", params, make)
    second = pde.cached("toy", params, make)
    assert len(calls) == 1 and isinstance(second, tuple)
    assert torch.equal(first[0], second[0])
    assert torch.equal(second[1]["b"], torch.ones(2))
    path = cache.cache_path("toy", params)
    assert path.exists() and path.parent == _tmp_cache / "pde" / "toy"
    assert "resolution=3" in path.name
    torch.load(path, weights_only=True)  # plain tensors only
    pde.cached("toy", params, make, refresh=True)
    assert len(calls) == 2
    assert cache.cache_path("toy", params | {"n": 3}) != path


def test_cached_bad_input():
    with pytest.raises(TypeError, match="tensors"):
        pde.cached("toy", {}, lambda: {"a": 1})
    with pytest.raises(ValueError, match="cache name"):
        pde.cached("../escape", {}, lambda: torch.zeros(1))
    with pytest.raises(TypeError, match="JSON"):
        pde.cached("toy", {"f": object()}, lambda: torch.zeros(1))


def test_load_wave_equals_sample():
    u0, ut = pde.load("wave", n=2, t=[1.0, 2.0], resolution=8, K=3)
    v0, vt = wave.sample(2, [1.0, 2.0], resolution=8, K=3)
    assert torch.equal(u0, v0) and torch.equal(ut, vt)


def test_load_darcy_is_cached_with_defaults_in_the_key(_tmp_cache):
    a, u = pde.load("darcy", n=2, resolution=9, progress=False)
    files = list((_tmp_cache / "pde" / "darcy").glob("*.pt"))
    assert len(files) == 1
    # the same parameters spelled differently hit the same file
    a2, u2 = pde.load("darcy", n=2, resolution=9, seed=0, progress=False)
    assert len(list((_tmp_cache / "pde" / "darcy").glob("*.pt"))) == 1
    assert torch.equal(a, a2) and torch.equal(u, u2)
    ref = darcy.sample(2, 9)
    assert torch.equal(a, ref[0]) and torch.allclose(u, ref[1])


def test_load_time_dependent_equations_tiny(device):
    w0, w = pde.load("ns", n=1, resolution=8, T=0.1, record_steps=1, progress=False,
                     device=device)
    assert w.shape == (1, 1, 8, 8) and w.device.type == device.type
    u0, u = pde.load("burgers", n=1, resolution=8, T=0.05, oversample=1,
                     progress=False)
    assert u.shape == (1, 1, 8)


@pytest.mark.parametrize("equation, params, err, match", [
    ("maxwell", {}, ValueError, "valid equations are wave, heat, darcy"),
    ("navier_stokes", dict(n=1, resolution=8, T=0.1, viscosity=0.0), ValueError,
     "viscosity"),
    ("navier_stokes", dict(n=1, resolution=-8, T=0.1), ValueError, "resolution"),
    ("burgers", dict(n=1, resolution=8, viscosity=-0.1), ValueError, "viscosity"),
    ("darcy", dict(n=1, resolution=0), ValueError, "resolution"),
    ("wave", dict(n=1, t=1.0, resolution=0), ValueError, "resolution"),
    ("darcy", dict(n=1, viscosity=1.0), TypeError, "bad parameters"),
])
def test_load_bad_input(equation, params, err, match):
    with pytest.raises(err, match=match):
        pde.load(equation, progress=False, **params)


def test_equations_listed():
    assert set(pde.EQUATIONS) == {"wave", "heat", "darcy", "navier_stokes", "burgers"}


def _one_entry(_tmp_cache):
    calls = []

    def make():
        calls.append(1)
        return torch.arange(6.0).reshape(2, 3), {"b": torch.ones(2)}
    params = {"n": 2}
    pde.cached("toy", params, make)
    return cache.cache_path("toy", params), params, make, calls


@pytest.mark.parametrize("damage, match", [
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
     "cannot be read"),
    (lambda p: p.write_bytes(bytes(range(256)) * 8), "cannot be read"),
    (lambda p: torch.save(torch.zeros(3), p), "no fingerprint"),
    (lambda p: torch.save({"kind": "tuple", "items": [torch.zeros(2, 3)]}, p),
     "no fingerprint"),
], ids=["truncated", "random-bytes", "foreign-tensor", "old-format"])
def test_a_damaged_cache_file_is_regenerated_with_a_warning(_tmp_cache, damage, match):
    path, params, make, calls = _one_entry(_tmp_cache)
    damage(path)
    with pytest.warns(UserWarning, match=f"ignoring the 'toy' cache file .*{match}"):
        again = pde.cached("toy", params, make)
    assert len(calls) == 2 and torch.equal(again[0], torch.arange(6.0).reshape(2, 3))
    assert torch.equal(pde.cached("toy", params, make)[1]["b"], torch.ones(2))
    assert len(calls) == 2  # the regenerated file is good


def test_a_tampered_or_misplaced_cache_file_is_regenerated(_tmp_cache):
    path, params, make, calls = _one_entry(_tmp_cache)
    record = torch.load(path, weights_only=True)
    record["data"]["items"][0] = record["data"]["items"][0] + 1  # same shape, new data
    torch.save(record, path)
    with pytest.warns(UserWarning, match="does not match its fingerprint"):
        pde.cached("toy", params, make)
    # The right content filed under the name of other parameters.
    other = cache.cache_path("toy", {"n": 3})
    other.write_bytes(path.read_bytes())
    with pytest.warns(UserWarning, match="it was made with"):
        pde.cached("toy", {"n": 3}, make)
    assert len(calls) == 3
    assert not list(path.parent.glob("*.tmp"))


def test_refimpl_cache_pointing_at_a_file_is_a_clear_error(tmp_path, monkeypatch):
    import refimpl

    target = tmp_path / "file"
    target.write_text("x")
    monkeypatch.setenv("REFIMPL_CACHE", str(target))
    with pytest.raises(ValueError, match="REFIMPL_CACHE=.* is a file; expected a folder"):
        refimpl.cache_dir("pde")
    with pytest.raises(ValueError, match="REFIMPL_CACHE"):
        pde.cached("toy", {}, lambda: torch.zeros(1))
