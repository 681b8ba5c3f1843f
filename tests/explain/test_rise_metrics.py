import itertools

import pytest
import torch

from refimpl.explain.baselines import (
    gnnexplainer_edge_scores,
    jaccard,
    random_edges,
    saliency_edge_scores,
    shortest_edges,
    topk_edges,
    uniform_radius_edges,
    uniform_radius_for_keep,
)
from refimpl.explain.fidelity import fidelity, keep_ratio, subgraph_prediction
from refimpl.explain.planted import (
    HEAVY_ELEMENTS,
    PlantedPairModel,
    edge_precision_recall,
    planted_edges,
    planted_target,
    planted_weights,
)
from small_molecules import batch_of, tiny_model



# ----------------------------------------------------------------- fidelity
def test_fidelity_of_everything_and_nothing():
    model = tiny_model()
    z, pos, batch = batch_of([2, 3, 0])
    edges = model.edges(pos, batch)
    full, empty = model(z, pos, batch), model(z, pos, batch, edge_index=edges[:, :0])
    everything = torch.ones(edges.size(1), dtype=torch.bool)
    fid = fidelity(model, z, pos, edges, everything, batch)
    assert torch.allclose(fid.fid_minus, torch.zeros(3, dtype=torch.float64),
                          atol=1e-12)
    assert torch.allclose(fid.fid_plus, (empty - full).abs())
    assert torch.allclose(fid.keep_ratio, torch.ones(3))
    nothing = fidelity(model, z, pos, edges, ~everything, batch, prediction=full)
    assert torch.allclose(nothing.fid_minus, (empty - full).abs())
    assert torch.allclose(nothing.fid_plus, torch.zeros(3, dtype=torch.float64),
                          atol=1e-12)


def test_subgraph_prediction_is_hard_mask():
    model = tiny_model()
    z, pos, batch = batch_of([2, 4])
    edges = model.edges(pos, batch)
    keep = torch.rand(edges.size(1)) < 0.5
    by_mask = model(z, pos, batch, edge_index=edges, edge_mask=keep.double())
    assert torch.allclose(subgraph_prediction(model, z, pos, edges, keep, batch),
                          by_mask, atol=1e-12)
    assert model.training is False


def test_keep_ratio_by_hand():
    edges = torch.tensor([[0, 1, 0, 2, 3, 4], [1, 0, 2, 0, 4, 3]])
    batch = torch.tensor([0, 0, 0, 1, 1])
    keep = torch.tensor([True, False, True, True, False, False])
    assert torch.allclose(keep_ratio(keep, edges, batch), torch.tensor([0.75, 0.0]))
    with pytest.raises(TypeError, match="boolean"):
        keep_ratio(keep.float(), edges, batch)
    with pytest.raises(ValueError, match="shape"):
        keep_ratio(keep[:3], edges, batch)


def test_fidelity_of_a_known_dependence():
    # Oracle: only heavy-atom bonds matter; removing every other edge changes
    # nothing, removing one planted bond (both directions) changes the output by
    # exactly that pair's term.
    oracle = PlantedPairModel(cutoff=5.0).double()
    z, pos, batch = batch_of([2, 3, 4])
    edges = oracle.edges(pos, batch)
    length = (pos[edges[0]] - pos[edges[1]]).norm(dim=-1)
    truth = planted_edges(z, edges, length)
    fid = fidelity(oracle, z, pos, edges, truth, batch)
    y = planted_target(z, pos, batch)
    assert torch.allclose(fid.prediction, y)
    assert torch.allclose(fid.fid_minus, torch.zeros(3, dtype=torch.float64),
                          atol=1e-12)
    assert torch.allclose(fid.fid_plus, y.abs())
    first = truth.nonzero()[0, 0]
    a, b = edges[:, first]
    pair = ((edges[0] == a) & (edges[1] == b)) | ((edges[0] == b) & (edges[1] == a))
    w = planted_weights()
    d = float(length[first])
    term = float(w[z[a], z[b]]) + 10.0 * (d - 1.4) ** 2
    drop = fidelity(oracle, z, pos, edges, ~pair, batch)
    g = int(batch[a])
    assert abs(float(drop.fid_minus[g]) - abs(term)) < 1e-10


# ---------------------------------------------------------------- baselines
def _topk_by_loop(score, edge_batch, k):
    keep = torch.zeros_like(edge_batch, dtype=torch.bool)
    for g in range(len(k)):
        idx = [i for i in range(len(score)) if edge_batch[i] == g]
        idx.sort(key=lambda i: (-float(score[i]), i))
        keep[idx[:int(k[g])]] = True
    return keep


def test_topk_edges_matches_loop_with_ties():
    gen = torch.Generator().manual_seed(1)
    edge_batch = torch.tensor([0, 1, 0, 2, 1, 0, 2, 2, 0, 1])
    score = torch.randint(0, 3, (10,), generator=gen).double()  # many ties
    k = torch.tensor([2, 5, 1])  # molecule 1 has only 3 edges: keep all
    keep = topk_edges(score, edge_batch, k)
    assert torch.equal(keep, _topk_by_loop(score, edge_batch, k))
    assert torch.equal(torch.bincount(edge_batch[keep], minlength=3),
                       torch.tensor([2, 3, 1]))
    with pytest.raises(ValueError, match="non-negative"):
        topk_edges(score, edge_batch, torch.tensor([-1, 0, 0]))
    with pytest.raises(ValueError, match="integer per molecule"):
        topk_edges(score, edge_batch, torch.tensor([1.0, 2.0, 3.0]))


def test_shortest_edges_is_a_shared_radius():
    z, pos, batch = batch_of([2, 3])
    model = tiny_model()
    edges = model.edges(pos, batch)
    length = (pos[edges[0]] - pos[edges[1]]).norm(dim=-1)
    edge_batch = batch[edges[1]]
    for radius in (1.2, 1.6, 2.5):
        uniform = uniform_radius_edges(length, radius / 5.0, 5.0)
        k = torch.bincount(edge_batch[uniform], minlength=2)
        assert torch.equal(shortest_edges(length, edge_batch, k), uniform)
    with pytest.raises(ValueError, match="budget"):
        uniform_radius_edges(length, 0.0, 5.0)


def test_uniform_radius_for_keep_matches_a_brute_force_radius_search():
    model = tiny_model()
    z, pos, batch = batch_of([2, 3, 0])
    edges = model.edges(pos, batch)
    length = (pos[edges[0]] - pos[edges[1]]).norm(dim=-1)
    eb = batch[edges[1]]
    for k in ([0, 0, 0], [1, 5, 3], [13, 20, 7], [72, 42, 20], [100, 100, 100]):
        keep, radius = uniform_radius_for_keep(length, eb, torch.tensor(k))
        for m in range(3):
            d = length[eb == m]
            # brute force: a fine grid of radii, the closest count wins
            grid = torch.linspace(0, float(d.max()) + 1, 20001, dtype=d.dtype)
            best = int(((d[None] < grid[:, None]).sum(1) - k[m]).abs().min())
            got = int(keep[eb == m].sum())
            assert abs(got - k[m]) == best
            assert torch.equal(keep[eb == m], d < radius[m])
    # the two directions of a pair share a length: an odd count is matched to +-1
    keep, _ = uniform_radius_for_keep(length, eb, torch.tensor([3, 3, 3]))
    assert all(abs(int(keep[eb == m].sum()) - 3) <= 1 for m in range(3))
    with pytest.raises(ValueError, match="k must"):
        uniform_radius_for_keep(length, eb, torch.tensor([1.0, 2.0, 3.0]))


def test_saliency_is_the_first_order_effect_of_removing_an_edge():
    model = tiny_model()
    z, pos, batch = batch_of([2, 3])
    edges = model.edges(pos, batch)
    score = saliency_edge_scores(model, z, pos, edges, batch)
    assert score.shape == (edges.size(1),) and bool((score >= 0).all())
    # finite difference of the mask of one edge per molecule
    eb = batch[edges[1]]
    for e in (0, int((eb == 1).nonzero()[0])):
        mask = torch.ones(edges.size(1), dtype=pos.dtype)
        h = 1e-6
        mask[e] -= h
        with torch.no_grad():
            lo = model(z, pos, batch, edge_index=edges, edge_mask=mask)
            hi = model(z, pos, batch, edge_index=edges)
        fd = ((hi - lo) / h)[int(eb[e])].abs()
        assert float(fd) == pytest.approx(float(score[e]), rel=1e-4, abs=1e-9)


def test_jaccard_by_hand():
    eb = torch.tensor([0, 0, 0, 0, 1, 1, 2])
    a = torch.tensor([1, 1, 0, 0, 1, 0, 0], dtype=torch.bool)
    b = torch.tensor([1, 0, 1, 0, 1, 0, 0], dtype=torch.bool)
    assert torch.allclose(jaccard(a, b, eb), torch.tensor([1 / 3, 1.0, 1.0],
                                                          dtype=torch.float64))
    with pytest.raises(ValueError, match="boolean"):
        jaccard(a.float(), b, eb)


def test_random_edges_count_and_seed():
    edge_batch = torch.tensor([0] * 30 + [1] * 20)
    k = torch.tensor([7, 4])
    a = random_edges(edge_batch, k, generator=torch.Generator().manual_seed(0))
    b = random_edges(edge_batch, k, generator=torch.Generator().manual_seed(0))
    c = random_edges(edge_batch, k, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.bincount(edge_batch[a]), k)


def test_gnnexplainer_scores():
    model = tiny_model()
    z, pos, batch = batch_of([2, 4])
    edges = model.edges(pos, batch)
    s = gnnexplainer_edge_scores(model, z, pos, edges, batch, epochs=5, seed=3)
    assert s.shape == (edges.size(1),)
    assert bool(((s >= 0) & (s <= 1)).all())
    again = gnnexplainer_edge_scores(model, z, pos, edges, batch, epochs=5, seed=3)
    assert torch.equal(s, again)
    # molecule by molecule: the first molecule's scores equal those of
    # explaining it alone with the same seed (same mask initialisation)
    z0, pos0, _ = batch_of([2])
    first = batch[edges[1]] == 0
    alone = gnnexplainer_edge_scores(model, z0, pos0, model.edges(pos0), epochs=5,
                                     seed=3)
    assert torch.allclose(alone, s[first], atol=1e-12)
    with pytest.raises(ValueError, match="sorted"):
        gnnexplainer_edge_scores(model, z, pos, edges, batch.flip(0), epochs=1)


# ------------------------------------------------------------------ planted
def _planted_by_loop(z, pos, r_b=1.6, k=10.0, d0=1.4):
    w = planted_weights()
    y = 0.0
    for i, j in itertools.combinations(range(len(z)), 2):
        d = float((pos[i] - pos[j]).norm())
        if int(z[i]) in HEAVY_ELEMENTS and int(z[j]) in HEAVY_ELEMENTS and d < r_b:
            y += float(w[z[i], z[j]]) + k * (d - d0) ** 2
    return y


def test_planted_target_matches_double_loop():
    z, pos, batch = batch_of([0, 2, 3, 4])
    y = planted_target(z, pos, batch)
    for g in range(4):
        sel = batch == g
        assert abs(float(y[g]) - _planted_by_loop(z[sel], pos[sel])) < 1e-10
    assert float(y[0]) == 0.0  # methane has no heavy-atom bond
    oracle = PlantedPairModel().double()
    assert torch.allclose(oracle(z, pos, batch), y)


def test_planted_weights_are_seeded_and_symmetric():
    w, again, other = planted_weights(0), planted_weights(0), planted_weights(1)
    assert torch.equal(w, again) and not torch.equal(w, other)
    assert torch.equal(w, w.T)
    heavy = torch.zeros(100, dtype=torch.bool)
    heavy[list(HEAVY_ELEMENTS)] = True
    assert bool((w[~heavy] == 0).all()) and bool((w[heavy][:, heavy] != 0).all())


def test_planted_edges_are_heavy_bonds():
    z, pos, batch = batch_of([2])
    oracle = PlantedPairModel()
    edges = oracle.edges(pos, batch)
    length = (pos[edges[0]] - pos[edges[1]]).norm(dim=-1)
    truth = planted_edges(z, edges, length)
    pairs = {tuple(e) for e in edges[:, truth].T.tolist()}
    assert pairs == {(0, 1), (1, 0), (1, 2), (2, 1)}  # C-C and C-O of ethanol
    with pytest.raises(ValueError, match="cutoff > r_b"):
        PlantedPairModel(cutoff=1.0)


def test_edge_precision_recall_by_hand():
    edge_batch = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
    keep = torch.tensor([1, 1, 0, 0, 0, 0, 1, 0], dtype=torch.bool)
    truth = torch.tensor([1, 0, 1, 0, 1, 0, 0, 0], dtype=torch.bool)
    p, r, f1 = edge_precision_recall(keep, truth, edge_batch)
    assert torch.allclose(p[:1], torch.tensor([0.5], dtype=torch.float64))
    assert torch.allclose(r[:1], torch.tensor([0.5], dtype=torch.float64))
    assert torch.allclose(f1[:1], torch.tensor([0.5], dtype=torch.float64))
    assert torch.isnan(p[1]) and float(r[1]) == 0.0  # nothing kept
    assert float(p[2]) == 0.0 and torch.isnan(r[2])  # nothing true
    with pytest.raises(TypeError, match="boolean"):
        edge_precision_recall(keep.float(), truth, edge_batch)
