import pytest
import torch

from refimpl.checkpoint import load_model, save_model
from refimpl.molecules.schnet import (
    EdgeListGraph,
    SchNetOnEdges,
    SchNetRegressor,
    message_mask,
)
from small_molecules import batch_of, tiny_model


def test_shapes_and_device(device):
    model = tiny_model().to(device)
    z, pos, batch = batch_of([0, 1, 2], device=device)
    out = model(z, pos, batch)
    assert out.shape == (3,) and out.device.type == device.type
    assert model(z[:5], pos[:5]).shape == (1,)


def test_batched_equals_separate():
    model = tiny_model()
    z, pos, batch = batch_of([0, 1, 2])
    out = model(z, pos, batch)
    for g in range(3):
        zg, pg, _ = batch_of([g])
        assert torch.allclose(out[g], model(zg, pg)[0], atol=1e-12)


def test_invariant_under_rigid_motion():
    model = tiny_model()
    z, pos, batch = batch_of([2, 0])
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    moved = pos @ q.T + torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    assert torch.allclose(model(z, pos, batch), model(z, moved, batch), atol=1e-10)


def test_radius_graph_is_the_models_graph():
    model = tiny_model(cutoff=1.2)
    z, pos, batch = batch_of([2])
    edges = model.edges(pos, batch)
    d = (pos[edges[0]] - pos[edges[1]]).norm(dim=-1)
    assert bool((d < 1.2).all())
    # every pair closer than the cutoff, both directions, is present
    full = torch.cdist(pos, pos)
    n_pairs = int(((full < 1.2) & ~torch.eye(len(z), dtype=torch.bool)).sum())
    assert edges.size(1) == n_pairs
    assert torch.allclose(model(z, pos, batch),
                          model(z, pos, batch, edge_index=edges), atol=0)


def test_mask_ones_is_full_graph_and_zeros_is_empty_graph():
    model = tiny_model()
    z, pos, batch = batch_of([0, 2])
    edges = model.edges(pos, batch)
    full = model(z, pos, batch)
    ones = model(z, pos, batch, edge_index=edges,
                 edge_mask=torch.ones(edges.size(1), dtype=torch.float64))
    zeros = model(z, pos, batch, edge_index=edges,
                  edge_mask=torch.sigmoid(torch.full((edges.size(1),), -1e9,
                                                     dtype=torch.float64)))
    empty = model(z, pos, batch, edge_index=edges[:, :0])
    assert torch.allclose(ones, full, atol=1e-12)
    assert torch.equal(zeros, empty)
    assert not torch.allclose(full, empty)


def test_hard_mask_equals_subgraph():
    model = tiny_model()
    z, pos, batch = batch_of([1, 2])
    edges = model.edges(pos, batch)
    keep = torch.rand(edges.size(1)) < 0.4
    masked = model(z, pos, batch, edge_index=edges, edge_mask=keep.double())
    sub = model(z, pos, batch, edge_index=edges[:, keep])
    assert torch.allclose(masked, sub, atol=1e-12)


def test_mask_is_differentiable():
    model = tiny_model()
    z, pos, batch = batch_of([2])
    edges = model.edges(pos, batch)
    mask = torch.full((edges.size(1),), 0.7, dtype=torch.float64,
                      requires_grad=True)
    model(z, pos, batch, edge_index=edges, edge_mask=mask).sum().backward()
    assert mask.grad is not None and bool(mask.grad.abs().sum() > 0)
    # the context removes the masks again: no explain state remains
    assert all(m.explain is not True for m in model.modules()
               if hasattr(m, "_edge_mask"))


def test_mask_gradient_survives_gnnexplainer_slot():
    # PyG pitfall: after GNNExplainer, each layer holds an `_edge_mask` parameter
    # slot and set_masks would re-wrap our mask as a new leaf Parameter.
    from torch_geometric.explain import Explainer
    from torch_geometric.explain.algorithm import GNNExplainer

    model = tiny_model()
    z, pos, batch = batch_of([2])
    edges = model.edges(pos, batch)
    explainer = Explainer(SchNetOnEdges(model), GNNExplainer(epochs=2),
                          explanation_type="model", edge_mask_type="object",
                          model_config=dict(mode="regression", task_level="graph",
                                            return_type="raw"))
    explainer(z.view(-1, 1), edges, pos=pos)
    assert any("_edge_mask" in m._parameters for m in model.modules())
    mask = torch.full((edges.size(1),), 0.7, dtype=torch.float64,
                      requires_grad=True)
    model(z, pos, batch, edge_index=edges, edge_mask=mask).sum().backward()
    assert mask.grad is not None


def test_target_stats_and_reference():
    model = tiny_model()
    z, pos, batch = batch_of([0, 1])
    raw = model(z, pos, batch)
    ref = torch.zeros(100, dtype=torch.float64)
    ref[1], ref[6], ref[8] = -0.5, -38.0, -75.0
    model.set_target_stats(mean=2.0, std=3.0, element_ref=ref)
    expected = 3.0 * raw + 2.0 + torch.tensor([-38.0 - 4 * 0.5, -75.0 - 2 * 0.5],
                                              dtype=torch.float64)
    assert torch.allclose(model(z, pos, batch), expected, atol=1e-10)
    with pytest.raises(ValueError, match="std must be positive"):
        model.set_target_stats(0.0, 0.0)
    with pytest.raises(ValueError, match="shape \\[100\\]"):
        model.set_target_stats(0.0, 1.0, torch.zeros(5))


def test_checkpoint_round_trip(tmp_path):
    model = tiny_model(dtype=torch.float32)
    model.set_target_stats(1.5, 2.5, torch.linspace(0, 1, 100))
    z, pos, batch = batch_of([0, 2], dtype=torch.float32)
    save_model(model, tmp_path / "schnet", note="test")
    loaded, record = load_model(tmp_path / "schnet")
    assert record["config"] == model.config()
    assert torch.allclose(loaded(z, pos, batch), model(z, pos, batch), atol=1e-6)


def test_reset_parameters_and_repr():
    model = tiny_model()
    before = model.interactions[0].lin.weight.clone()
    model.reset_parameters()
    assert not torch.equal(before, model.interactions[0].lin.weight)
    text = repr(model)
    assert "SchNetRegressor" in text and "cutoff=5.0" in text
    assert "cutoff=2.0" in repr(EdgeListGraph(2.0))


def test_bad_input():
    model = tiny_model()
    z, pos, batch = batch_of([0])
    with pytest.raises(TypeError, match="integer tensor of atomic numbers"):
        model(z.double(), pos)
    with pytest.raises(ValueError, match="pos must have shape"):
        model(z, pos[:, :2])
    with pytest.raises(ValueError, match="needs the edge_index"):
        model(z, pos, edge_mask=torch.ones(3))
    edges = model.edges(pos)
    with pytest.raises(ValueError, match="edge_mask must have shape"):
        model(z, pos, edge_index=edges, edge_mask=torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="edge_index must have shape"):
        model(z, pos, edge_index=edges[0])
    with pytest.raises(ValueError, match="cutoff must be positive"):
        SchNetRegressor(cutoff=0.0)
    with pytest.raises(ValueError, match="hidden_channels"):
        SchNetRegressor(hidden_channels=0)
    with pytest.raises(ValueError, match="no torch_geometric MessagePassing"):
        with message_mask(torch.nn.Linear(2, 2), torch.ones(1),
                          torch.zeros(2, 1, dtype=torch.long)):
            pass



def test_gradcheck_through_the_mask():
    model = tiny_model()
    z, pos, batch = batch_of([1])
    edges = model.edges(pos, batch)
    mask = torch.rand(edges.size(1), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda m: model(z, pos, batch, edge_index=edges, edge_mask=m), (mask,))


def test_inputs_are_checked_once_per_unchanged_tensors(monkeypatch):
    """RISE calls the model on the same tensors at every optimisation step: the
    value checks (which synchronise with a GPU) run once, and again only when a
    tensor is replaced or modified in place."""
    import refimpl.molecules.schnet as schnet_module

    calls = []
    real = schnet_module._check_pos
    monkeypatch.setattr(schnet_module, "_check_pos",
                        lambda pos: (calls.append(1), real(pos))[1])
    model = tiny_model()
    z, pos, batch = batch_of([0, 1])
    first = model(z, pos, batch)
    for _ in range(3):
        assert torch.equal(model(z, pos, batch), first)
    assert len(calls) == 1
    model(z, pos.clone(), batch)  # another tensor: checked
    assert len(calls) == 2
    pos[0, 0] = float("nan")  # modified in place: checked again, and refused
    with pytest.raises(ValueError, match="pos contains NaN"):
        model(z, pos, batch)
    z2 = z.clone()
    model(z2, pos.nan_to_num(), batch)
    z2[0] = 100
    with pytest.raises(ValueError, match=r"atomic number \[100\]"):
        model(z2, pos.nan_to_num(), batch)
    other = torch.float32 if pos.dtype == torch.float64 else torch.float64
    with pytest.raises(TypeError, match=f"pos has dtype {other}"):
        model(z, pos.nan_to_num().to(other), batch)
