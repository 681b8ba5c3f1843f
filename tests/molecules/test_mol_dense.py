import math

import pytest
import torch
from torch_geometric.data import Batch, Data

from refimpl.molecules import (
    DenseMolecules, assert_correctly_masked, assert_mean_zero_with_mask,
    center_gravity_zero_gaussian_log_likelihood_with_mask, collate_dense,
    collate_sparse, edge_mask_from_node_mask, one_hot_types, remove_mean_with_mask,
    sample_center_gravity_zero_gaussian_with_mask, sample_gaussian_with_mask, to_dense,
    to_sparse)


def make_batch(sizes=(3, 5, 2), seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    items = []
    for k, n in enumerate(sizes):
        z = torch.tensor([1, 6, 7, 8, 9])[torch.randint(0, 5, (n,), generator=g)]
        items.append(Data(z=z, pos=torch.randn(n, 3, generator=g),
                          y=torch.randn(1, 2, generator=g),
                          idx=torch.tensor([100 + k])))
    return Batch.from_data_list(items).to(device)


def test_to_dense_layout(device):
    b = make_batch(device=device)
    d = to_dense(b)
    assert d.pos.shape == (3, 5, 3) and d.z.shape == (3, 5)
    assert d.node_mask.shape == (3, 5, 1) and d.edge_mask.shape == (3, 5, 5, 1)
    assert d.pos.device.type == device.type
    assert d.num_atoms.tolist() == [3, 5, 2]
    pad = d.node_mask[..., 0] == 0
    assert (d.pos[pad] == 0).all() and (d.z[pad] == 0).all()
    # real atoms in order
    assert torch.equal(d.pos[1, :5], b.pos[3:8]) and torch.equal(d.z[0, :3], b.z[:3])
    # edge mask: real pairs without self-pairs
    em = d.edge_mask[..., 0]
    assert em[0, :3, :3].sum() == 6 and em[0].sum() == 6 and em[2].sum() == 2
    assert (em.diagonal(dim1=1, dim2=2) == 0).all()
    assert torch.equal(d.idx.cpu(), torch.tensor([100, 101, 102]))


def test_round_trip(device):
    b = make_batch(device=device)
    back = to_sparse(to_dense(b))
    for key in ("z", "pos", "batch", "ptr", "y", "idx"):
        assert torch.equal(getattr(back, key), getattr(b, key)), key
    d = to_dense(b, max_num_nodes=29)
    assert d.pos.shape == (3, 29, 3)
    d2 = to_dense(to_sparse(d), max_num_nodes=29)
    assert all(torch.equal(getattr(d, k), getattr(d2, k))
               for k in ("pos", "z", "node_mask", "edge_mask", "y", "idx"))


def test_to_dense_errors():
    b = make_batch()
    with pytest.raises(ValueError, match="smaller than the largest"):
        to_dense(b, max_num_nodes=4)
    bad = Data(z=torch.tensor([1, 6]), pos=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="expected z"):
        to_dense(bad)


def test_collate_with_dataloader():
    items = make_batch().to_data_list()
    loader = torch.utils.data.DataLoader(items, batch_size=2, collate_fn=collate_dense)
    first = next(iter(loader))
    assert isinstance(first, DenseMolecules) and first.pos.shape == (2, 5, 3)
    sparse = collate_sparse(items)
    assert sparse.num_graphs == 3
    assert sparse.batch.tolist() == [0] * 3 + [1] * 5 + [2] * 2
    moved = first.to(torch.float64)
    assert moved.pos.dtype == torch.float64 and moved.z.dtype == torch.long


def test_one_hot_types():
    d = to_dense(make_batch())
    h = one_hot_types(d.z, d.node_mask)
    assert h.shape == (3, 5, 5)
    assert torch.equal(h.sum(-1), d.node_mask[..., 0])
    order = torch.tensor([1, 6, 7, 8, 9])
    real = d.node_mask[..., 0] > 0
    assert torch.equal(order[h.argmax(-1)][real], d.z[real])
    with pytest.raises(ValueError, match=r"atomic numbers \[9\]"):
        one_hot_types(d.z, d.node_mask, atomic_numbers=(1, 6, 7, 8))


def test_remove_mean_and_checks(device):
    d = to_dense(make_batch(device=device).to(device)).to(torch.float64)
    x = remove_mean_with_mask(d.pos, d.node_mask)
    assert_mean_zero_with_mask(x, d.node_mask)
    assert torch.allclose((x * d.node_mask).sum(1), torch.zeros(3, 3, dtype=x.dtype,
                                                                device=x.device))
    assert (x[d.node_mask[..., 0] == 0] == 0).all()
    # per-molecule shift only: pairwise differences unchanged
    assert torch.allclose(x[1, 0] - x[1, 3], d.pos[1, 0] - d.pos[1, 3])
    with pytest.raises(ValueError, match="not centred"):
        assert_mean_zero_with_mask(d.pos + d.node_mask * 5.0, d.node_mask)
    with pytest.raises(ValueError, match="not zero on padded"):
        assert_correctly_masked(d.pos + 1.0, d.node_mask)
    with pytest.raises(ValueError, match=r"\[B, N, 1\]"):
        remove_mean_with_mask(d.pos, d.node_mask[..., 0])


def test_zero_mean_gaussian_sampling(device):
    node_mask = torch.zeros(400, 6, 1, device=device)
    node_mask[:, :4] = 1.0
    g = torch.Generator(device=device).manual_seed(0)
    eps = sample_center_gravity_zero_gaussian_with_mask((400, 6, 3), node_mask, g)
    assert (eps[:, 4:] == 0).all()
    assert eps.sum(1).abs().max() < 1e-5
    # each ambient entry has variance (N - 1) / N = 3/4
    assert eps[:, :4].var().item() == pytest.approx(0.75, abs=0.05)
    g2 = torch.Generator(device=device).manual_seed(0)
    assert torch.equal(eps, sample_center_gravity_zero_gaussian_with_mask(
        (400, 6, 3), node_mask, g2))
    plain = sample_gaussian_with_mask((400, 6, 3), node_mask,
                                      torch.Generator(device=device).manual_seed(1))
    assert (plain[:, 4:] == 0).all() and plain[:, :4].var().item() == pytest.approx(
        1.0, abs=0.05)


def test_subspace_log_likelihood():
    node_mask = torch.ones(1, 3, 1, dtype=torch.float64)
    node_mask_pad = torch.cat([node_mask, torch.zeros(1, 2, 1, dtype=torch.float64)], 1)
    x = torch.tensor([[[1.0, 0, 0], [-1.0, 0, 0], [0.0, 0, 0]]], dtype=torch.float64)
    ll = center_gravity_zero_gaussian_log_likelihood_with_mask(x, node_mask)
    expected = -0.5 * 2.0 - 0.5 * (2 * 3) * math.log(2 * math.pi)  # d = (N-1)*3
    assert ll.item() == pytest.approx(expected)
    xp = torch.cat([x, torch.zeros(1, 2, 3, dtype=torch.float64)], 1)
    assert center_gravity_zero_gaussian_log_likelihood_with_mask(
        xp, node_mask_pad).item() == pytest.approx(expected)


def test_edge_mask_from_node_mask():
    nm = torch.tensor([[[1.0], [1.0], [0.0]]])
    em = edge_mask_from_node_mask(nm)[0, ..., 0]
    assert em.tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 0]]
