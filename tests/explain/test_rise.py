import pytest
import torch
from torch_geometric.explain import Explainer
from torch_geometric.explain.algorithm import GNNExplainer

from refimpl.explain.baselines import uniform_radius_edges, uniform_radius_for_keep
from refimpl.explain.fidelity import fidelity
from refimpl.explain.planted import PlantedPairModel, planted_edges
from refimpl.explain.rise import (
    RISEExplainer,
    explain,
    rise_mask_logits,
    rise_radii,
)
from refimpl.molecules.schnet import SchNetOnEdges
from small_molecules import batch_of, tiny_model

REGRESSION = dict(mode="regression", task_level="graph", return_type="raw")


def test_result_shapes(device):
    model = tiny_model().to(device)
    z, pos, batch = batch_of([0, 2, 3], device=device)
    r = explain(model, z, pos, batch, budget=0.3, steps=3)
    n, e = z.numel(), r.edge_index.size(1)
    assert r.radius.shape == (n,) and r.radius.device.type == device.type
    assert r.edge_index.shape == (2, e) and e > 0
    assert r.soft_mask.shape == r.hard_mask.shape == r.edge_length.shape == (e,)
    assert r.hard_mask.dtype == torch.bool
    assert r.keep_ratio.shape == r.prediction.shape == (3,)
    assert r.loss_history.shape == (3, 3)
    assert torch.equal(r.edge_index, model.edges(pos, batch))
    assert torch.allclose(r.prediction, model(z, pos, batch))


def test_budget_identity_per_molecule():
    model = tiny_model()
    z, pos, batch = batch_of([0, 2, 3, 1])
    for budget in (0.1, 0.3, 1.0):
        r = explain(model, z, pos, batch, budget=budget, steps=5, lr=0.1)
        mean = torch.zeros(4, dtype=torch.float64).index_add_(
            0, batch, r.radius) / torch.bincount(batch)
        assert torch.allclose(mean, torch.full_like(mean, budget * 5.0), rtol=1e-9)
        assert r.radius.std() > 0  # the radii moved away from uniform


def test_radii_formula_and_mask_midpoint():
    theta = torch.tensor([0.0, 1.0, -1.0, 2.0, 0.5], dtype=torch.float64)
    batch = torch.tensor([0, 0, 0, 1, 1])
    radius = rise_radii(theta, batch, budget=0.4, cutoff=5.0)
    expected = torch.cat([3 * torch.softmax(theta[:3], 0),
                          2 * torch.softmax(theta[3:], 0)]) * 0.4 * 5.0
    assert torch.allclose(radius, expected)
    # the sphere boundary d = R_j is the mask's 0.5 point; the source gates
    edge_index = torch.tensor([[0, 1], [1, 0]])
    length = radius[edge_index[0]].clone()
    logits = rise_mask_logits(radius, edge_index, length, cutoff=5.0, tau=100.0)
    assert torch.allclose(torch.sigmoid(logits), torch.full((2,), 0.5,
                                                            dtype=torch.float64))
    length = torch.full((2,), float(radius[:2].mean()), dtype=torch.float64)
    logits = rise_mask_logits(radius, edge_index, length, cutoff=5.0, tau=100.0)
    assert bool((logits > 0)[0]) != bool((logits > 0)[1])  # asymmetric directions


def test_hard_mask_definition():
    model = tiny_model()
    z, pos, batch = batch_of([2, 3])
    r = explain(model, z, pos, batch, budget=0.3, steps=10, lr=0.05)
    expected = r.edge_length < r.radius[r.edge_index[0]]
    assert torch.equal(r.hard_mask, expected)
    assert torch.equal(r.hard_mask, r.soft_mask > 0.5)
    kept = r.num_kept.double() / torch.bincount(batch[r.edge_index[1]])
    assert torch.allclose(r.keep_ratio, kept)


def test_zero_steps_is_the_uniform_radius():
    model = tiny_model()
    z, pos, batch = batch_of([2, 0])
    r = explain(model, z, pos, batch, budget=0.25, steps=0)
    assert torch.allclose(r.radius, torch.full_like(r.radius, 1.25))
    assert torch.equal(r.hard_mask, uniform_radius_edges(r.edge_length, 0.25, 5.0))


def _adam_by_hand(model, z, pos, budget, lr, tau, steps, accumulate):
    edges = model.edges(pos)
    length = (pos[edges[0]] - pos[edges[1]]).norm(dim=-1)
    target = model(z, pos).detach()
    batch = torch.zeros_like(z)
    theta = torch.zeros(z.numel(), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=lr)
    opt.zero_grad()
    for _ in range(steps):
        if not accumulate:
            opt.zero_grad()
        radius = rise_radii(theta, batch, budget, 5.0)
        mask = torch.sigmoid(rise_mask_logits(radius, edges, length, 5.0, tau))
        out = model(z, pos, edge_index=edges, edge_mask=mask)
        (out - target).abs().sum().backward()
        opt.step()
    return rise_radii(theta.detach(), batch, budget, 5.0)


def test_gradients_are_reset_every_step():
    model = tiny_model()
    z, pos, _ = batch_of([2])
    r = explain(model, z, pos, budget=0.3, steps=3, lr=0.05, tau=20.0)
    # the model's own parameters collect no gradient
    assert all(p.grad is None for p in model.parameters())
    fresh = _adam_by_hand(model, z, pos, 0.3, 0.05, 20.0, 3, accumulate=False)
    summed = _adam_by_hand(model, z, pos, 0.3, 0.05, 20.0, 3, accumulate=True)
    assert torch.allclose(r.radius, fresh, atol=1e-10)
    assert not torch.allclose(r.radius, summed, atol=1e-6)


def test_batched_equals_one_at_a_time():
    model = tiny_model()
    z, pos, batch = batch_of([2, 0, 3])
    together = explain(model, z, pos, batch, budget=0.3, steps=15, lr=0.05)
    offset = 0
    for g, i in enumerate([2, 0, 3]):
        zg, pg, _ = batch_of([i])
        alone = explain(model, zg, pg, budget=0.3, steps=15, lr=0.05)
        sl = slice(offset, offset + zg.numel())
        assert torch.allclose(together.radius[sl], alone.radius, atol=1e-8)
        edges = together.edge_batch == g
        assert torch.equal(together.hard_mask[edges], alone.hard_mask)
        assert torch.allclose(together.loss_history[:, g], alone.loss_history[:, 0],
                              atol=1e-9)
        offset += zg.numel()


@pytest.mark.parametrize("steps", [60])
def test_explanation_preserves_the_prediction_better_than_uniform(steps):
    # Hard evaluation against the uniform radius Bc (RISE's start) and against one
    # radius per molecule solved for RISE's own keep count (matched kappa). With
    # steps=0 RISE *is* the uniform radius and both comparisons fail.
    model = tiny_model()
    z, pos, batch = batch_of([2, 3])
    r = explain(model, z, pos, batch, budget=0.3, steps=steps, lr=0.05)
    uniform = uniform_radius_edges(r.edge_length, 0.3, 5.0)
    matched, _ = uniform_radius_for_keep(r.edge_length, r.edge_batch, r.num_kept)
    ours = fidelity(model, z, pos, r.edge_index, r.hard_mask, batch).fid_minus
    start = fidelity(model, z, pos, r.edge_index, uniform, batch).fid_minus
    same_k = fidelity(model, z, pos, r.edge_index, matched, batch).fid_minus
    assert bool((ours < start).all()), (ours, start)
    assert bool((ours < same_k).all()), (ours, same_k)
    assert r.loss_history[-1].sum() < r.loss_history[0].sum()


def test_known_dependence_oracle():
    oracle = PlantedPairModel(cutoff=5.0).double()
    z, pos, batch = batch_of([2, 3])
    # B c = 1.5 Å is just below the C-C bonds (1.50-1.51 Å): the uniform radius
    # (steps=0) misses planted bonds, so RISE must grow the heavy atoms' spheres.
    start = explain(oracle, z, pos, batch, budget=0.3, steps=0)
    truth = planted_edges(z, start.edge_index, start.edge_length)
    assert not bool(start.hard_mask[truth].all())  # the test is not vacuous
    r = explain(oracle, z, pos, batch, budget=0.3, steps=50)
    assert bool(r.hard_mask[truth].all())
    fid = fidelity(oracle, z, pos, r.edge_index, r.hard_mask, batch)
    assert torch.allclose(fid.fid_minus, torch.zeros(2, dtype=torch.float64),
                          atol=1e-12)
    assert torch.allclose(fid.fid_plus, fid.prediction.abs())


def test_oracle_small_budget_grows_heavy_atom_radii():
    # Only heavy-heavy bonds matter to the oracle: with a tight budget RISE must
    # give heavy atoms larger radii than hydrogens.
    oracle = PlantedPairModel(cutoff=5.0).double()
    z, pos, batch = batch_of([2])
    r = explain(oracle, z, pos, batch, budget=0.3, steps=150, lr=0.05)
    heavy = z > 1
    assert r.radius[heavy].min() > r.radius[~heavy].max()
    assert r.loss_history[-1, 0] < 1e-3 * r.loss_history[0, 0]


@pytest.mark.parametrize("budget", [0.0, -0.1, 1.5, float("nan")])
def test_bad_budget(budget):
    model = tiny_model()
    z, pos, _ = batch_of([0])
    with pytest.raises(ValueError, match="budget"):
        explain(model, z, pos, budget=budget, steps=1)


def test_bad_settings():
    model = tiny_model()
    z, pos, _ = batch_of([0])
    with pytest.raises(ValueError, match="lr"):
        explain(model, z, pos, lr=0.0, steps=1)
    with pytest.raises(ValueError, match="tau"):
        explain(model, z, pos, tau=-1.0, steps=1)
    with pytest.raises(ValueError, match="steps"):
        explain(model, z, pos, steps=-1)
    with pytest.raises(TypeError, match="budget"):
        explain(model, z, pos, budget="0.3", steps=1)
    with pytest.raises(TypeError, match="cutoff"):
        explain(torch.nn.Linear(3, 1), z, pos, steps=1)
    with pytest.raises(ValueError, match="pos must have shape"):
        explain(model, z, pos[:-1], steps=1)
    with pytest.raises(TypeError, match="integer"):
        explain(model, z.double(), pos, steps=1)


def test_molecule_without_edges_is_rejected():
    model = tiny_model()
    z, pos, batch = batch_of([1, 0])
    far = torch.tensor([[0.0, 0, 0], [6.0, 0, 0]], dtype=torch.float64)
    z2 = torch.cat([z, torch.tensor([6, 8])])
    pos2 = torch.cat([pos, far])
    batch2 = torch.cat([batch, torch.tensor([2, 2])])
    with pytest.raises(ValueError, match=r"molecule\(s\) \[2\] have no pair"):
        explain(model, z2, pos2, batch2, steps=1)


def test_model_that_ignores_positions_is_rejected():
    model = tiny_model()
    with torch.no_grad():
        for block in model.interactions:
            block.lin.weight.zero_()  # interactions no longer change features
    z, pos, _ = batch_of([2])
    with pytest.raises(ValueError, match="ignores the positions"):
        explain(model, z, pos, steps=1)
    no_interactions = tiny_model(num_interactions=0)
    with pytest.raises(ValueError, match="ignores the positions"):
        explain(no_interactions, z, pos, steps=1)


def _explainer(model, algorithm):
    return Explainer(SchNetOnEdges(model), algorithm, explanation_type="model",
                     edge_mask_type="object", model_config=REGRESSION)


def test_explainer_api_matches_explain():
    model = tiny_model()
    z, pos, batch = batch_of([2, 3])
    edges = model.edges(pos, batch)
    explanation = _explainer(model, RISEExplainer(budget=0.3, steps=10, lr=0.05))(
        z.view(-1, 1), edges, pos=pos, batch=batch)
    assert explanation.edge_mask.shape == (edges.size(1),)
    assert explanation.validate_masks()
    direct = explain(model, z, pos, batch, budget=0.3, steps=10, lr=0.05)
    assert torch.allclose(explanation.radius, direct.radius, atol=1e-10)
    assert torch.equal(explanation.edge_mask.bool(), direct.hard_mask)
    assert torch.allclose(explanation.soft_edge_mask, direct.soft_mask)
    sub = explanation.get_explanation_subgraph()
    assert sub.edge_index.size(1) == int(direct.hard_mask.sum())
    soft = _explainer(model, RISEExplainer(steps=2, mask="soft"))(
        z.view(-1, 1), edges, pos=pos, batch=batch)
    assert bool(((soft.edge_mask > 0) & (soft.edge_mask < 1)).any())


def test_rise_still_learns_after_gnnexplainer_on_same_model():
    model = tiny_model()
    z, pos, _ = batch_of([2])
    edges = model.edges(pos)
    out = _explainer(model, GNNExplainer(epochs=3))(z.view(-1, 1), edges, pos=pos)
    assert out.edge_mask.shape == (edges.size(1),)
    r = explain(model, z, pos, budget=0.3, steps=3, lr=0.05)
    assert r.radius.std() > 0
    explanation = _explainer(model, RISEExplainer(steps=3, lr=0.05))(
        z.view(-1, 1), edges, pos=pos)
    assert explanation.radius.std() > 0


def test_explainer_api_rejects_unsupported_settings():
    model = tiny_model()
    with pytest.raises(ValueError, match="does not support"):
        Explainer(SchNetOnEdges(model), RISEExplainer(), explanation_type="model",
                  edge_mask_type="object",
                  model_config=dict(mode="binary_classification",
                                    task_level="graph", return_type="raw"))
    with pytest.raises(ValueError, match="does not support"):
        Explainer(SchNetOnEdges(model), RISEExplainer(), explanation_type="model",
                  node_mask_type="object", edge_mask_type="object",
                  model_config=REGRESSION)
    z, pos, _ = batch_of([2])
    explainer = _explainer(model, RISEExplainer(steps=1))
    with pytest.raises(ValueError, match="pos="):
        explainer(z.view(-1, 1), model.edges(pos))
    with pytest.raises(ValueError, match="whole molecules"):
        explainer(z.view(-1, 1), model.edges(pos), pos=pos, index=0)
    with pytest.raises(ValueError, match="mask must be"):
        RISEExplainer(mask="top")


def test_pyg_fidelity_rejects_regression():
    # Why refimpl has its own fidelities: PyG's are classification-only.
    from torch_geometric.explain.metric import fidelity as pyg_fidelity

    model = tiny_model()
    z, pos, _ = batch_of([2])
    explainer = _explainer(model, RISEExplainer(steps=1))
    explanation = explainer(z.view(-1, 1), model.edges(pos), pos=pos)
    with pytest.raises(ValueError, match="regression"):
        pyg_fidelity(explainer, explanation)


def test_gradcheck_radii_and_mask():
    theta = torch.randn(5, dtype=torch.float64, requires_grad=True)
    batch = torch.tensor([0, 0, 1, 1, 1])
    edge_index = torch.tensor([[0, 1, 2, 3, 4], [1, 0, 3, 4, 2]])
    length = torch.tensor([1.0, 1.1, 1.2, 0.9, 1.5], dtype=torch.float64)

    def mask(t):
        radius = rise_radii(t, batch, 0.3, 5.0)
        return torch.sigmoid(rise_mask_logits(radius, edge_index, length, 5.0, 10.0))

    assert torch.autograd.gradcheck(mask, (theta,))


def test_distance_only_cache_changes_nothing_and_is_undone():
    from torch_geometric.nn.models.schnet import CFConv

    from refimpl.explain.rise import distance_only_cache

    model = tiny_model()
    z, pos, batch = batch_of([2, 3])
    edges = model.edges(pos, batch)
    mask = torch.rand(edges.size(1), dtype=pos.dtype, generator=torch.Generator()
                      .manual_seed(0))
    plain = model(z, pos, batch, edge_index=edges, edge_mask=mask)
    with distance_only_cache(model):
        first = model(z, pos, batch, edge_index=edges, edge_mask=mask)
        again = model(z, pos, batch, edge_index=edges, edge_mask=mask * 0.5)
        # other distances are not served from the cache
        moved = model(z, pos * 1.1, batch, edge_index=edges, edge_mask=mask)
    assert torch.allclose(first, plain, atol=1e-12)
    assert torch.allclose(
        again, model(z, pos, batch, edge_index=edges, edge_mask=mask * 0.5),
        atol=1e-12)
    assert torch.allclose(
        moved, model(z, pos * 1.1, batch, edge_index=edges, edge_mask=mask),
        atol=1e-12)
    convs = [m for m in model.modules() if isinstance(m, CFConv)]
    assert convs and all("forward" not in vars(m) for m in convs)
