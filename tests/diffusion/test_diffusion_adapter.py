"""Samplers on any EDM-style ε-network (EpsilonModelAdapter) and the type-mean
correction of the shortcut start for models with uncentred types."""

import pytest
import torch
from torch import nn

from refimpl.diffusion import (
    EpsilonModel,
    EpsilonModelAdapter,
    EquivariantDiffusion,
    sample_shortcut,
)


class GaussianOracle(nn.Module):
    r"""The exact ε-predictor for Gaussian data (not an EquivariantDiffusion): x on
    the zero-mean subspace with variance ``v_x``; types i.i.d. N(mu, v_h) per entry
    (uncentred) or centred.  :math:`\hat\varepsilon = \sigma_t (z_t - \alpha_t m) /
    (\alpha_t^2 v + \sigma_t^2)`."""

    def __init__(self, T, v_x, v_h, mu):
        super().__init__()
        from refimpl.diffusion import NoiseSchedule

        self.schedule = NoiseSchedule(T)
        self.T, self.v_x, self.v_h = T, v_x, v_h
        self.register_buffer("mu", torch.as_tensor(mu, dtype=torch.float64))

    def forward(self, x, h, node_mask, t):
        step = (t * self.T).round().long()
        a = self.schedule.alpha(step).to(x.dtype).view(-1, 1, 1)
        s = self.schedule.sigma(step).to(x.dtype).view(-1, 1, 1)
        ex = s * x / (a**2 * self.v_x + s**2)
        eh = s * (h - a * self.mu.to(h.dtype)) / (a**2 * self.v_h + s**2)
        return ex * node_mask, eh * node_mask


def _counts(B, n=6):
    return torch.full((B,), n, dtype=torch.long)


def test_adapter_is_a_sampler_for_a_foreign_network_and_counts_nfe():
    oracle = GaussianOracle(100, v_x=2.0, v_h=1.0, mu=[0.0, 0.0, 0.0]).double()
    assert isinstance(oracle, EpsilonModel)
    model = EpsilonModelAdapter(oracle, 3, T=100, centered_types=True).double()
    assert not isinstance(model, EquivariantDiffusion)
    g = torch.Generator().manual_seed(0)
    res = sample_shortcut(model, _counts(400), t_star=50, v_hat=(2.0, 1.0), stride=5,
                          generator=g)
    assert res.nfe == 50 // 5 + 1 == model.nfe
    # The exact denoiser started from the matched Gaussian at T* returns the data
    # variance (ambient variance (N-1)/N * v_x on the zero-mean subspace).
    var = float(res.x.pow(2).sum() / (res.num_atoms - 1).sum() / 3)
    assert abs(var / 2.0 - 1) < 0.1, var
    full = model.sample(_counts(8), generator=g)
    assert full.nfe == 101


def test_type_mean_correction_for_uncentred_models():
    freqs = [0.6, 0.1, 0.3]  # atom-type frequencies; type_scale 1 => mu = freqs
    oracle = GaussianOracle(100, v_x=1.0, v_h=1.0, mu=freqs).double()
    model = EpsilonModelAdapter(
        oracle, 3, T=100, centered_types=False, type_scale=1.0
    ).double()
    with pytest.raises(ValueError, match="type_mean"):
        sample_shortcut(model, _counts(4), t_star=50, v_hat=1.0)
    with pytest.raises(ValueError, match="frequencies"):
        sample_shortcut(model, _counts(4), t_star=50, v_hat=1.0, type_mean=[2, 0, 0])

    def h_mean(res):
        return res.chain[-1][..., 3:].sum((0, 1)) / res.node_mask.sum()

    ok = sample_shortcut(model, _counts(500), t_star=50, v_hat=1.0, type_mean=freqs,
                         return_chain=True, generator=torch.Generator().manual_seed(1))
    assert ok.chain.dtype == torch.float64
    torch.testing.assert_close(h_mean(ok), oracle.mu, rtol=0, atol=0.06)
    # Without the correction (a zero-mean start) the same chain is biased by about
    # alpha*v/(alpha^2 v + sigma^2) * alpha*mu at T* = T/2.
    biased = model.sample(_counts(500), start_t=50, start_variance=1.0,
                          return_chain=True,
                          generator=torch.Generator().manual_seed(1))
    assert float((h_mean(biased) - oracle.mu).abs().max()) > 0.2


def test_wrapped_egnn_samples_exactly_like_the_model():
    torch.manual_seed(0)
    m = EquivariantDiffusion(3, 3, T=20, hidden_nf=8, n_layers=1).eval()

    class UserNet(nn.Module):  # a user's module with EDM's interface
        def __init__(self, dyn):
            super().__init__()
            self.dyn = dyn

        def forward(self, x, h, node_mask, t):
            return torch.cat(self.dyn(x, h, t, node_mask), dim=-1)

    wrapped = EpsilonModelAdapter(UserNet(m.dynamics), 3, T=20, centered_types=True)
    fn = EpsilonModelAdapter(lambda x, h, mask, t: m.dynamics(x, h, t, mask), 3,
                             T=20, centered_types=True)
    n = torch.tensor([3, 5, 4])
    for other in (wrapped, fn):
        for kw in (dict(), dict(start_t=10, start_variance=0.8, stride=2),
                   dict(n_steps=7), dict(method="ddim")):
            a = m.sample(n, generator=torch.Generator().manual_seed(3), **kw)
            b = other.sample(n, generator=torch.Generator().manual_seed(3), **kw)
            torch.testing.assert_close(a.x, b.x)
            assert torch.equal(a.types, b.types) and a.nfe == b.nfe


def test_adapter_bad_inputs():
    with pytest.raises(TypeError, match="callable"):
        EpsilonModelAdapter(3, 3, T=10, centered_types=True)
    with pytest.raises(ValueError, match="centered_types"):
        EpsilonModelAdapter(lambda *a: None, 3, T=10, centered_types=None)
    with pytest.raises(ValueError, match="time_input"):
        EpsilonModelAdapter(lambda *a: None, 3, T=10, centered_types=True,
                            time_input="seconds")
    bad = EpsilonModelAdapter(lambda x, h, m, t: x, 3, T=10, centered_types=True)
    with pytest.raises(ValueError, match="shape"):
        bad.sample(_counts(2, 3))
    with pytest.raises(TypeError, match="DiffusionSampler"):
        sample_shortcut(object(), _counts(2), t_star=5, v_hat=1.0)
    m = EquivariantDiffusion(3, 3, T=10, hidden_nf=4, n_layers=1)
    with pytest.raises(ValueError, match="centres its types"):
        sample_shortcut(m, _counts(2), t_star=5, v_hat=1.0, type_mean=[0.5, 0.3, 0.2])
    with pytest.raises(ValueError, match="start_type_mean"):
        m.sample(_counts(2), start_type_mean=[0.1, 0.1, 0.1])
