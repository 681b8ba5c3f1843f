import math

import pytest
import torch
from torch import nn

from refimpl.diffusion import (
    EquivariantDiffusion,
    NoiseSchedule,
    center,
    encode,
    decode_types,
    is_centered,
    node_mask_from_counts,
    q_sample,
    reference_variance,
    sample_noise,
    sample_shortcut,
    shortcut_start_variance,
    timestep_sequence,
)


def _mask(counts, n_max, dtype=torch.float64):
    return (
        (torch.arange(n_max)[None] < torch.tensor(counts)[:, None])
        .to(dtype)
        .unsqueeze(-1)
    )


class GaussianOracle(nn.Module):
    r"""The exact noise predictor for data that are Gaussian on the zero-mean subspace
    with per-channel variances (v_x, v_h):
    E[eps | z_t] = sigma_t z_t / (alpha_t^2 v + sigma_t^2)."""

    def __init__(
        self, schedule: NoiseSchedule, v_x: float, v_h: float, n_dims: int = 3
    ):
        super().__init__()
        self.schedule, self.v_x, self.v_h, self.n_dims = schedule, v_x, v_h, n_dims
        self.calls = 0

    def forward(self, x, h, tau, node_mask):
        self.calls += 1
        t = torch.round(tau * self.schedule.T).long()
        a2, s2 = self.schedule.alpha2(t), self.schedule.sigma2(t)
        s = s2.sqrt().view(-1, 1, 1).to(x.dtype)
        vx = (a2 * self.v_x + s2).view(-1, 1, 1).to(x.dtype)
        vh = (a2 * self.v_h + s2).view(-1, 1, 1).to(x.dtype)
        return s * x / vx * node_mask, s * h / vh * node_mask


def _oracle_model(T, v_x, v_h, K=2, center_types=True):
    m = EquivariantDiffusion(
        K, 3, T=T, hidden_nf=4, n_layers=1, center_types=center_types
    ).double()
    m.dynamics = GaussianOracle(m.schedule, v_x, v_h)
    return m


def _variance_recursion(sch, steps, v, v_start):
    """Exact per-dimension variance of the ancestral chain with the oracle (float64)."""
    V = v_start
    for t, s in zip(steps[:-1], steps[1:]):
        a_ts, s2_ts = (float(u) for u in sch.transition(t, s))
        vt = float(sch.alpha2(t)) * v + float(sch.sigma2(t))
        c = 1 / a_ts - s2_ts / (a_ts * vt)
        sq = s2_ts * float(sch.sigma2(s)) / float(sch.sigma2(t))
        V = c * c * V + sq
    return V


# ------------------------------------------------------------------ forward process
def test_forward_marginal_mean_and_variance():
    sch = NoiseSchedule(50)
    B, N = 4000, 4
    mask = _mask([N] * B, N)
    g = torch.Generator().manual_seed(0)
    z0 = center(
        torch.randn(1, N, 3, generator=g, dtype=torch.float64), mask[:1]
    ).expand(B, N, 3)
    t = torch.full((B,), 30)
    eps = sample_noise((B, N, 3), mask, 3, center_features=True, generator=g)
    zt = q_sample(sch, z0, t, mask, eps)
    a, s2 = float(sch.alpha(30)), float(sch.sigma2(30))
    # Mean alpha_t z0; ambient variance sigma_t^2 (N-1)/N. Tolerances: 5 std. errors.
    se_mean = math.sqrt(s2 * (N - 1) / N / B)
    assert float((zt.mean(0) - a * z0[0]).abs().max()) < 5 * se_mean
    var = zt.var(0)
    se_var = s2 * (N - 1) / N * math.sqrt(2 / (B - 1))
    assert float((var - s2 * (N - 1) / N).abs().max()) < 5 * se_var


# ------------------------------------------------------------- reverse step, oracle
def test_one_step_posterior_equals_closed_form_for_gaussian_data():
    v_x, v_h = 1.7, 0.3
    m = _oracle_model(40, v_x, v_h)
    sch = m.schedule
    g = torch.Generator().manual_seed(1)
    mask = _mask([5, 3], 5)
    zt = sample_noise((2, 5, 5), mask, 3, center_features=True, generator=g)
    for t, s in [(40, 39), (22, 21), (20, 10), (1, 0)]:
        mu, sig = m.posterior(zt, t, s, mask)
        a_ts = float(sch.alpha(t) / sch.alpha(s))
        for sl, v in ((slice(0, 3), v_x), (slice(3, 5), v_h)):
            vs = float(reference_variance(sch, s, v))
            vt = float(reference_variance(sch, t, v))
            # E[z_s | z_t] for jointly Gaussian (z_s, z_t): alpha_{t|s} v_s / v_t z_t.
            torch.testing.assert_close(
                mu[..., sl], a_ts * vs / vt * zt[..., sl], rtol=0, atol=1e-10
            )
        sq = math.sqrt((1 - a_ts**2) * float(sch.sigma2(s)) / float(sch.sigma2(t)))
        assert float(sig) == pytest.approx(sq, rel=1e-10)


@pytest.mark.parametrize("start, stride", [(200, 1), (110, 1), (110, 2)])
def test_gaussian_oracle_chain_reproduces_the_variance_recursion(start, stride):
    v_x, v_h = 2.0, 0.3
    T, B, N = 200, 800, 5
    m = _oracle_model(T, v_x, v_h)
    sch = m.schedule
    start_var = shortcut_start_variance(m, start, (v_x, v_h))
    g = torch.Generator().manual_seed(2)
    res = sample_shortcut(
        m,
        torch.full((B,), N),
        t_star=start,
        v_hat=(v_x, v_h),
        stride=stride,
        generator=g,
        return_chain=True,
        dtype=torch.float64,
    )
    steps = timestep_sequence(start, stride=stride)
    z0 = res.chain[-1]
    dof = B * (N - 1)
    for sl, v, v0 in (
        (slice(0, 3), v_x, start_var[0]),
        (slice(3, 5), v_h, start_var[1]),
    ):
        V = _variance_recursion(sch, steps, v, v0)
        k = sl.stop - sl.start
        emp = float(z0[..., sl].pow(2).sum()) / (dof * k)
        # Relative standard error of a chi-square variance estimate: sqrt(2 / dof).
        assert emp == pytest.approx(V, rel=5 * math.sqrt(2 / (dof * k)))
        # Truncation is exact for Gaussian data up to the ancestral sampler's own small
        # under-dispersion: 0.969-0.994 (rounded) at T = 200, unit strides (spec 5.6).
        ratio = V / (float(sch.alpha2(0)) * v + float(sch.sigma2(0)))
        assert 0.968 <= ratio <= 0.995 if stride == 1 else 0.9 < ratio < 1.0


def test_zero_mean_and_padding_preserved_every_step():
    m = _oracle_model(12, 1.0, 0.5)
    res = m.sample(
        torch.tensor([2, 5, 3]),
        return_chain=True,
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(3),
    )
    mask = res.node_mask
    for z in res.chain:
        assert is_centered(z, mask, atol=1e-9)
    assert is_centered(res.x, mask, atol=1e-9)
    m2 = _oracle_model(12, 1.0, 0.5, center_types=False)
    res2 = m2.sample(torch.tensor([2, 5, 3]), return_chain=True, dtype=torch.float64)
    for z in res2.chain:
        assert is_centered(z[..., :3], mask, atol=1e-9)
        assert float((z * (1 - mask)).abs().max()) == 0.0
    assert not is_centered(res2.chain[-1][..., 3:], mask)  # EDM: types not centred


@pytest.mark.parametrize(
    "kw, nfe",
    [
        (dict(), 21),
        (dict(start_t=11), 12),
        (dict(start_t=10, stride=2), 6),
        (dict(n_steps=11), 12),
        (dict(stride=4), 6),
        (dict(method="ddim", stride=5), 5),
    ],
)
def test_nfe_counter(kw, nfe):
    m = _oracle_model(20, 1.0, 1.0)
    calls = []
    m.dynamics.register_forward_hook(lambda *a: calls.append(1))
    res = m.sample(torch.tensor([3, 4]), **kw)
    assert res.nfe == nfe == len(calls)


def test_stride_must_divide_the_start_step():
    m = _oracle_model(20, 1.0, 1.0)
    with pytest.raises(ValueError, match="must divide the start step 11"):
        m.sample(torch.tensor([3]), start_t=11, stride=2)
    with pytest.raises(ValueError, match="start_t"):
        m.sample(torch.tensor([3]), start_t=21)
    with pytest.raises(ValueError, match="at least 2 atoms"):
        m.sample(torch.tensor([1, 3]))
    with pytest.raises(ValueError, match="start_variance"):
        m.sample(torch.tensor([3]), start_variance=-1.0)
    with pytest.raises(ValueError, match="decrease strictly"):
        m.sample(torch.tensor([3]), timesteps=[20, 20, 0])
    assert timestep_sequence(11, n_steps=3) == [11, 7, 4, 0]


def test_decoder_reads_every_type_channel_including_the_last():
    m = _oracle_model(10, 1.0, 1.0, K=4)
    mask = _mask([3], 3)
    h = torch.tensor([[[0, 0, 0, 1.0], [1.0, 0, 0, 0], [0, 0, 1.0, 0]]])
    z0 = torch.cat(
        [
            center(torch.randn(1, 3, 3, dtype=torch.float64), mask),
            center(h.double(), mask) / 4,
        ],
        -1,
    )
    _, types = m.decode(z0, mask)
    assert types.tolist() == [[3, 0, 2]]


def test_type_centring_keeps_the_argmax():
    g = torch.Generator().manual_seed(4)
    mask = _mask([7, 2, 5, 4], 7)
    types = torch.randint(0, 5, (4, 7), generator=g)
    onehot = torch.nn.functional.one_hot(types, 5).double() * mask
    x = torch.randn(4, 7, 3, generator=g, dtype=torch.float64)
    xc, h = encode(x, onehot, mask)
    assert is_centered(h, mask) and is_centered(xc, mask)
    dec = decode_types(h, mask)
    real = mask[..., 0] > 0
    assert torch.equal(dec[real], types[real]) and bool((dec[~real] == -1).all())


# --------------------------------------------------------------------------- training
def _tiny(T=10, **kw):
    torch.manual_seed(0)
    return EquivariantDiffusion(3, 3, T=T, hidden_nf=8, n_layers=1, **kw)


def _batch(dtype=torch.float32):
    g = torch.Generator().manual_seed(5)
    mask = _mask([4, 2, 3], 4, dtype)
    x = torch.randn(3, 4, 3, generator=g).to(dtype) * mask
    oh = (
        torch.nn.functional.one_hot(torch.randint(0, 3, (3, 4), generator=g), 3).to(
            dtype
        )
        * mask
    )
    return x, oh, mask


def test_truncated_timesteps_never_exceed_t_max():
    m = _tiny(T=200)
    t = m.sample_timesteps(20000, 110, generator=torch.Generator().manual_seed(0))
    assert int(t.max()) == 110 and int(t.min()) == 0
    with pytest.raises(ValueError, match="t_max"):
        m.sample_timesteps(4, 201)


def test_loss_is_finite_and_padding_invariant():
    m = _tiny()
    x, oh, mask = _batch()
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    loss = m(x, oh, mask, generator=g())
    assert torch.isfinite(loss) and loss.requires_grad
    per = m(x, oh, mask, generator=g(), reduction="none")
    assert per.shape == (3,)
    # Molecule-level normalisation equals padded normalisation for a full molecule.
    mm = _tiny(loss_normalization="molecule")
    mm.load_state_dict(m.state_dict())
    per_m = mm(x, oh, mask, generator=g(), reduction="none")
    torch.testing.assert_close(per_m[0], per[0])
    assert float(per_m[1].detach()) == pytest.approx(
        float(per[1].detach()) * 4 / 2, rel=1e-5
    )


def test_loss_at_t0_uses_only_coordinates():
    m = _tiny()
    x, oh, mask = _batch()
    t0 = torch.zeros(3, dtype=torch.long)
    full = m(
        x, oh, mask, t=t0, generator=torch.Generator().manual_seed(1), reduction="none"
    )
    m.num_types  # noqa: B018
    # Zeroing the type output does not change the t = 0 loss.
    with torch.no_grad():
        m.dynamics.embedding_out.weight.zero_()
        m.dynamics.embedding_out.bias.zero_()
    again = m(
        x, oh, mask, t=t0, generator=torch.Generator().manual_seed(1), reduction="none"
    )
    torch.testing.assert_close(full, again)


def test_gradcheck_two_atoms():
    m = _tiny().double()
    x = torch.tensor(
        [[[0.3, -0.2, 0.1], [-0.4, 0.5, 0.2]]], dtype=torch.float64, requires_grad=True
    )
    oh = torch.tensor([[[1.0, 0, 0], [0, 0, 1.0]]], dtype=torch.float64)
    mask = torch.ones(1, 2, 1, dtype=torch.float64)

    def f(x):
        return m(
            x, oh, mask, t=torch.tensor([4]), generator=torch.Generator().manual_seed(0)
        )

    assert torch.autograd.gradcheck(f, (x,))


def test_seeded_sampling_is_reproducible():
    m = _tiny(T=6)
    a = m.sample(torch.tensor([3, 2]), generator=torch.Generator().manual_seed(9))
    b = m.sample(torch.tensor([3, 2]), generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(a.x, b.x, rtol=0, atol=0)
    assert torch.equal(a.types, b.types)


def test_sampling_on_device(device):
    m = _tiny(T=4).to(device)
    res = m.sample(torch.tensor([3, 2], device=device))
    assert res.x.device.type == device.type and res.nfe == 5


def test_bad_training_inputs():
    m = _tiny()
    x, oh, mask = _batch()
    with pytest.raises(ValueError, match="NaN"):
        m(x.masked_fill(mask.bool().expand_as(x) & (x > 0), float("nan")), oh, mask)
    with pytest.raises(ValueError, match="fewer than 2"):
        m(x, oh, _mask([4, 1, 3], 4, torch.float32))
    with pytest.raises(ValueError, match="one-hot"):
        m(x, oh * 2, mask)
    with pytest.raises(ValueError, match="type channels"):
        m(x, oh[..., :2], mask)
    with pytest.raises(ValueError, match="loss_normalization"):
        EquivariantDiffusion(3, loss_normalization="sum")
    with pytest.raises(ValueError, match="num_atoms is empty"):
        node_mask_from_counts(torch.tensor([], dtype=torch.long))


def test_config_round_trip_and_repr():
    m = _tiny(T=7)
    m2 = EquivariantDiffusion(**m.config())
    m2.load_state_dict(m.state_dict())
    assert "T=7" in repr(m) and m2.T == 7
