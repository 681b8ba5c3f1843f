import math

import pytest
import torch

from refimpl.molecules import edge_lengths, radius_graph


def brute_force(pos, r, batch, max_nn=None, loop=False):
    """Reference: a plain double loop over atom pairs."""
    n = pos.size(0)
    edges = []
    for i in range(n):  # target
        cand = []
        for j in range(n):  # source
            if batch[i] != batch[j]:
                continue
            if i == j:
                if loop:
                    cand.append((-1.0, j))
                continue
            d = float(torch.linalg.vector_norm(pos[i] - pos[j]))
            if d < r:
                cand.append((d, j))
        cand.sort()
        if max_nn is not None:
            cand = cand[:max_nn]
        edges += [(j, i) for _, j in sorted(cand, key=lambda t: t[1])]
    return edges


def as_set(edge_index):
    return set(map(tuple, edge_index.t().tolist()))


def random_batch(n_mols=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, 9, (n_mols,), generator=g)
    batch = torch.repeat_interleave(torch.arange(n_mols), sizes)
    pos = 2.0 * torch.randn(int(sizes.sum()), 3, generator=g, dtype=dtype)
    return pos, batch


@pytest.mark.parametrize("max_nn", [None, 1, 3])
@pytest.mark.parametrize("loop", [False, True])
def test_matches_brute_force(device, max_nn, loop):
    pos, batch = random_batch(5, seed=1)
    ei = radius_graph(pos.to(device), 2.5, batch.to(device), max_nn, loop=loop)
    assert ei.device.type == device.type and ei.dtype == torch.long
    assert ei.t().tolist() == [list(e) for e in
                               sorted(brute_force(pos, 2.5, batch, max_nn, loop),
                                      key=lambda e: (e[1], e[0]))]


def test_symmetric_no_self_loops_and_sorted():
    pos, batch = random_batch(3, seed=2)
    ei = radius_graph(pos, 3.0, batch)
    s = as_set(ei)
    assert all((i, j) in s for j, i in s)
    assert not (ei[0] == ei[1]).any()
    key = ei[1] * pos.size(0) + ei[0]
    assert torch.equal(key, key.sort().values)


def test_batch_boundaries_respected_and_unsorted_batch():
    # Two molecules placed on top of each other: no edge may cross molecules.
    g = torch.Generator().manual_seed(3)
    pos = torch.randn(10, 3, generator=g, dtype=torch.float64)
    batch = torch.tensor([0, 1, 0, 1, 1, 0, 0, 1, 1, 0])
    ei = radius_graph(pos, 10.0, batch)
    assert (batch[ei[0]] == batch[ei[1]]).all()
    assert as_set(ei) == set(brute_force(pos, 10.0, batch))
    # complete graph within molecules: 5*4 + 5*4 edges
    assert ei.size(1) == 40
    assert radius_graph(pos, math.inf, batch).size(1) == 40


def test_single_molecule_default_batch_and_empty():
    pos = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [3.0, 0, 0]])
    ei = radius_graph(pos, 1.5)
    assert ei.tolist() == [[1, 0], [0, 1]]
    assert radius_graph(pos, 0.0).shape == (2, 0)
    assert radius_graph(torch.zeros(0, 3), 1.0).shape == (2, 0)


def test_e3_invariance_of_edge_set():
    pos, batch = random_batch(4, seed=4)
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    q[:, 0] *= -1  # include a reflection
    moved = pos @ q.T + torch.tensor([5.0, -3.0, 2.0], dtype=torch.float64)
    for r in (1.0, 2.0, 4.0):
        assert torch.equal(radius_graph(pos, r, batch), radius_graph(moved, r, batch))


def test_permutation_equivariance():
    pos, batch = random_batch(3, seed=5)
    perm = torch.randperm(pos.size(0))
    ei = radius_graph(pos, 2.5, batch)
    ei_p = radius_graph(pos[perm], 2.5, batch[perm])
    assert as_set(perm[ei_p]) == as_set(ei)


def test_blocking_path_matches(monkeypatch):
    import refimpl.molecules.graph as graph
    pos, batch = random_batch(6, seed=6)
    ref = radius_graph(pos, 2.0, batch, max_num_neighbors=2)
    monkeypatch.setattr(graph, "_BLOCK_ELEMENTS", 5)  # one molecule, few rows per block
    assert torch.equal(graph.radius_graph(pos, 2.0, batch, max_num_neighbors=2), ref)


def test_edge_lengths_and_gradient():
    pos = torch.tensor([[0.0, 0, 0], [3.0, 4.0, 0]], dtype=torch.float64,
                       requires_grad=True)
    ei = radius_graph(pos, 6.0)
    d = edge_lengths(pos, ei)
    assert torch.allclose(d, torch.tensor([5.0, 5.0], dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda p: edge_lengths(p, ei), (pos,))


@pytest.mark.parametrize("kwargs, match", [
    (dict(r=-1.0), "non-negative"),
    (dict(r=float("nan")), "non-negative"),
    (dict(r=1.0, batch=torch.zeros(3, dtype=torch.long)), "one entry per atom"),
    (dict(r=1.0, max_num_neighbors=0), "positive integer"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        radius_graph(torch.zeros(4, 3), **kwargs)


def test_bad_positions():
    with pytest.raises(ValueError, match="NaN"):
        radius_graph(torch.tensor([[0.0, 0, 0], [float("nan"), 0, 0]]), 1.0)
    with pytest.raises(ValueError, match="2-D"):
        radius_graph(torch.zeros(3), 1.0)
    with pytest.raises(TypeError, match="floating"):
        radius_graph(torch.zeros(3, 3, dtype=torch.long), 1.0)
    with pytest.raises(TypeError, match="integer"):
        radius_graph(torch.zeros(3, 3), 1.0, batch=torch.zeros(3))
