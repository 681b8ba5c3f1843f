import pytest
import torch

from refimpl.diffusion import EGNNDynamics, center, random_rotations


def _mask(counts, n_max, dtype=torch.float64):
    return (
        (torch.arange(n_max)[None] < torch.tensor(counts)[:, None])
        .to(dtype)
        .unsqueeze(-1)
    )


def _count(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(
    "K, nf, L, expected",
    [(4, 64, 4, 151_241), (4, 128, 6, 895_371), (5, 256, 9, 5_339_407)],
)
def test_parameter_counts_equal_edm(K, nf, L, expected):
    # The closed form of the spec (3.8): per block one GCL and one coordinate MLP.
    gcl = (
        (2 * nf + 2) * nf + nf + nf * nf + nf + nf + 1 + 2 * nf * nf + nf + nf * nf + nf
    )
    coord = (2 * nf + 2) * nf + nf + nf * nf + nf + nf
    closed = L * (gcl + coord) + (K + 1) * nf + nf + nf * (K + 1) + K + 1
    assert closed == expected
    assert _count(EGNNDynamics(K, 3, nf, L)) == expected


def _inputs(gen, B=3, N=5, K=3, D=3):
    mask = _mask([5, 3, 4], N)[:B]
    x = center(torch.randn(B, N, D, generator=gen, dtype=torch.float64) * mask, mask)
    h = torch.randn(B, N, K, generator=gen, dtype=torch.float64) * mask
    t = torch.rand(B, generator=gen, dtype=torch.float64)
    return x, h, t, mask


def _net(K=3, D=3, center_h=True):
    torch.manual_seed(0)
    net = EGNNDynamics(K, D, hidden_nf=16, n_layers=2, center_h=center_h).double()
    # Larger last coordinate layer than EDM's near-zero init, so the test sees motion.
    for blk in net.blocks:
        torch.nn.init.normal_(blk.update.coord_mlp[-1].weight, std=0.3)
    return net


def test_e3_equivariance_and_invariance_float64():
    gen = torch.Generator().manual_seed(0)
    net = _net()
    x, h, t, mask = _inputs(gen)
    ex, eh = net(x, h, t, mask)
    assert float(ex.detach().abs().max()) > 1e-3  # non-trivial output
    Q = random_rotations(3, 3, generator=gen)
    Q[1, :, 0] *= -1  # a reflection too
    shift = torch.randn(3, 1, 3, generator=gen, dtype=torch.float64)
    xr = torch.einsum("bnd,bed->bne", x, Q) + shift * mask
    exr, ehr = net(xr, h, t, mask)
    torch.testing.assert_close(
        exr, torch.einsum("bnd,bed->bne", ex, Q), rtol=0, atol=1e-5
    )
    torch.testing.assert_close(ehr, eh, rtol=0, atol=1e-5)


def test_permutation_equivariance_and_padding_invariance():
    gen = torch.Generator().manual_seed(1)
    net = _net()
    x, h, t, mask = _inputs(gen, B=1)
    perm = torch.tensor([3, 0, 4, 2, 1])
    ex, eh = net(x, h, t, mask)
    exp_, ehp = net(x[:, perm], h[:, perm], t, mask[:, perm])
    torch.testing.assert_close(exp_, ex[:, perm], rtol=0, atol=1e-10)
    torch.testing.assert_close(ehp, eh[:, perm], rtol=0, atol=1e-10)
    pad = lambda v: torch.cat([v, torch.zeros(1, 3, v.shape[-1], dtype=v.dtype)], 1)  # noqa
    exq, ehq = net(pad(x), pad(h), t, pad(mask))
    torch.testing.assert_close(exq[:, :5], ex, rtol=0, atol=1e-10)
    torch.testing.assert_close(ehq[:, :5], eh, rtol=0, atol=1e-10)
    assert float(exq[:, 5:].detach().abs().max()) == 0
    assert float(ehq[:, 5:].detach().abs().max()) == 0


def test_outputs_on_zero_mean_subspace(device):
    gen = torch.Generator().manual_seed(2)
    net = _net().to(device)
    x, h, t, mask = (v.to(device) for v in _inputs(gen))
    ex, eh = net(x, h, t, mask)
    zero = torch.zeros(3, 3, dtype=torch.float64, device=device)
    torch.testing.assert_close(ex.sum(1), zero, rtol=0, atol=1e-10)
    torch.testing.assert_close(eh.sum(1), zero, rtol=0, atol=1e-10)
    ex2, eh2 = _net(center_h=False).to(device)(x, h, t, mask)
    assert float(eh2.detach().sum(1).abs().max()) > 1e-6  # EDM: type output uncentred


def test_two_dimensional_point_clouds_work():
    gen = torch.Generator().manual_seed(3)
    net = _net(K=1, D=2)
    x, h, t, mask = _inputs(gen, K=1, D=2)
    ex, _ = net(x, h, t, mask)
    assert ex.shape == (3, 5, 2)


def test_reset_parameters_and_repr():
    net = EGNNDynamics(4, 3, 8, 2)
    before = [p.clone() for p in net.parameters()]
    torch.manual_seed(123)
    net.reset_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert "hidden_nf=8" in repr(net) and "n_layers=2" in repr(net)
    w = net.blocks[0].update.coord_mlp[-1].weight
    assert (
        float(w.detach().abs().max()) < 0.001 * (6 / 9) ** 0.5 + 1e-12
    )  # xavier, gain 1e-3


def test_bad_inputs():
    net = EGNNDynamics(3, 3, 8, 1)
    mask = _mask([2, 2], 2, torch.float32)
    with pytest.raises(ValueError, match="expected x"):
        net(torch.zeros(2, 2, 2), torch.zeros(2, 2, 3), torch.zeros(2), mask)
    with pytest.raises(ValueError, match="expected x"):
        net(torch.zeros(2, 2, 3), torch.zeros(2, 2, 3), torch.zeros(2), mask[..., 0])
    with pytest.raises(ValueError, match="positive integer"):
        EGNNDynamics(0)


# --------------------------------------------------------------------------------
# The fused EGNN (hand-written backward, chunked pair computations) against the
# plain-autograd formulation it replaced (refimpl.diffusion.egnn_reference).


def _outputs_and_grads(net, fn, x, h, t, mask, seed=3):
    net.zero_grad()
    x = x.detach().clone().requires_grad_()
    h = h.detach().clone().requires_grad_()
    ex, eh = fn(x, h, t, mask)
    g = torch.Generator().manual_seed(seed)
    wx = torch.randn(ex.shape, generator=g, dtype=ex.dtype)
    wh = torch.randn(eh.shape, generator=g, dtype=eh.dtype)
    ((ex * wx).sum() + (eh * wh).sum()).backward()
    grads = [p.grad.clone() for p in net.parameters()]
    return [ex.detach(), eh.detach(), x.grad, h.grad] + grads


@pytest.mark.parametrize("chunk", [None, 1])
@pytest.mark.parametrize(
    "kw", [{}, dict(attention=False), dict(tanh=False, normalization_factor=3.0)]
)
def test_fused_egnn_equals_reference_float64(monkeypatch, chunk, kw):
    from refimpl.diffusion import egnn as egnn_mod
    from refimpl.diffusion.egnn_reference import egnn_reference_forward

    if chunk is not None:  # one molecule per chunk: exercises the chunk loop
        monkeypatch.setattr(egnn_mod, "PAIR_CHUNK", chunk)
    torch.manual_seed(0)
    net = EGNNDynamics(3, 3, hidden_nf=16, n_layers=3, **kw).double()
    for blk in net.blocks:  # visible coordinate motion, non-trivial gradients
        torch.nn.init.normal_(blk.update.coord_mlp[-1].weight, std=0.3)
    gen = torch.Generator().manual_seed(5)
    x, h, t, mask = _inputs(gen)
    new = _outputs_and_grads(net, lambda *a: net(*a), x, h, t, mask)
    ref = _outputs_and_grads(
        net, lambda *a: egnn_reference_forward(net, *a), x, h, t, mask
    )
    assert len(new) == len(ref) == 4 + len(list(net.parameters()))
    for a, b in zip(new, ref):
        assert float(b.abs().max()) > 0  # every gradient is exercised
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    with torch.no_grad():  # the inference path gives the same outputs
        ex, eh = net(x, h, t, mask)
    torch.testing.assert_close(ex, new[0], rtol=0, atol=1e-10)
    torch.testing.assert_close(eh, new[1], rtol=0, atol=1e-10)


def test_fused_egnn_gradcheck():
    # Finite differences on a tiny net: the hand-written backward is a gradient.
    torch.manual_seed(1)
    net = EGNNDynamics(2, 3, hidden_nf=4, n_layers=1).double()
    torch.nn.init.normal_(net.blocks[0].update.coord_mlp[-1].weight, std=0.3)
    gen = torch.Generator().manual_seed(2)
    mask = _mask([3, 2], 3)
    x = (torch.randn(2, 3, 3, generator=gen, dtype=torch.float64) * mask)
    h = (torch.randn(2, 3, 2, generator=gen, dtype=torch.float64) * mask)
    t = torch.rand(2, generator=gen, dtype=torch.float64)
    x.requires_grad_()
    h.requires_grad_()

    def f(x, h):
        ex, eh = net(x, h, t, mask)
        return ex, eh

    assert torch.autograd.gradcheck(f, (x, h), eps=1e-6, atol=1e-6)
