import math

import pytest
import torch

from refimpl.diffusion import (
    NoiseSchedule,
    cosine_schedule,
    polynomial_schedule,
    reference_variance,
)


def test_polynomial_endpoints_follow_the_construction():
    s = 1e-5
    sch = NoiseSchedule(1000, "polynomial_2", s)
    assert float(sch.alpha2(0)) == pytest.approx(1 - s, abs=1e-12)
    # t = T: the ratio a_T / a_{T-1} = 0 is clipped to 1e-3, then the precision map.
    a_prev = (1 - (999 / 1000) ** 2) ** 2
    expected = (1 - 2 * s) * 1e-3 * a_prev + s
    assert float(sch.alpha2(1000)) == pytest.approx(expected, rel=1e-9)
    assert float(sch.alpha2(1000)) == pytest.approx(1.0004e-5, abs=1e-8)


def test_polynomial_is_one_minus_tau_squared_before_precision_map():
    T, s = 200, 1e-5
    a2 = polynomial_schedule(T, 2.0, s)
    tau = torch.arange(T, dtype=torch.float64) / T
    raw = (a2[:T] - s) / (1 - 2 * s)
    torch.testing.assert_close(raw.sqrt(), 1 - tau**2, rtol=0, atol=1e-12)


def test_alpha_depends_only_on_t_over_T():
    a = NoiseSchedule(1000).alpha2(torch.arange(0, 1000, 5))
    b = NoiseSchedule(200).alpha2(torch.arange(0, 200))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-15)
    assert (
        abs(float(NoiseSchedule(1000).alpha2(1000) - NoiseSchedule(200).alpha2(200)))
        < 1e-7
    )


def test_table_values_at_published_truncation():
    sch = NoiseSchedule(1000)
    assert float(sch.alpha(550)) == pytest.approx(0.6975, abs=5e-5)  # 1 - 0.55^2
    assert float(sch.snr(550)) == pytest.approx(0.4865 / 0.5135, rel=1e-3)
    assert float(reference_variance(sch, 550, 0.848)) == pytest.approx(0.9261, abs=1e-4)
    assert float(reference_variance(sch, 110 * 5, 0.771)) == pytest.approx(
        0.889, abs=1e-3
    )


def test_transition_matches_direct_formulas():
    sch = NoiseSchedule(100)
    t, s = torch.tensor([5, 50, 100]), torch.tensor([4, 30, 0])
    a_ts, s2_ts = sch.transition(t, s)
    torch.testing.assert_close(a_ts**2, sch.alpha2(t) / sch.alpha2(s))
    torch.testing.assert_close(s2_ts, 1 - sch.alpha2(t) / sch.alpha2(s))
    torch.testing.assert_close(
        sch.alpha2(t) + sch.sigma2(t), torch.ones(3, dtype=torch.float64)
    )


def test_cosine_schedule_is_a_decreasing_variance_preserving_table():
    a2 = cosine_schedule(100)
    assert a2.shape == (101,)
    assert bool((a2[1:] < a2[:-1]).all()) and 0 < float(a2[-1]) < float(a2[0]) <= 1
    sch = NoiseSchedule(100, "cosine")
    torch.testing.assert_close(sch.alpha2(torch.arange(101)), a2)


def test_schedule_moves_with_the_module(device):
    sch = NoiseSchedule(10).to(device)
    assert sch.gamma(torch.tensor([3], device=device)).device.type == device.type
    assert "gamma_table" not in sch.state_dict()  # derived, not stored


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(T=0), "positive integer"),
        (dict(T=10, kind="linear"), "unknown schedule"),
        (dict(T=10, kind="polynomial_x"), "unknown schedule"),
        (dict(T=10, precision=0.7), "precision"),
    ],
)
def test_bad_schedule_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NoiseSchedule(**kwargs)


def test_bad_steps():
    sch = NoiseSchedule(10)
    with pytest.raises(ValueError, match=r"\[0, T=10\]"):
        sch.alpha(11)
    with pytest.raises(TypeError, match="integers"):
        sch.alpha(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="s < t"):
        sch.transition(3, 3)
    with pytest.raises(ValueError, match="positive"):
        reference_variance(sch, 3, -1.0)
    assert math.isfinite(float(sch.gamma(0)))
