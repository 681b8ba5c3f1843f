import math

import pytest
import torch

from refimpl.diffusion import (
    NodeCountDistribution,
    NoiseSchedule,
    center,
    data_variance,
    reference_variance,
    sample_zero_mean_gaussian,
)


def _mask(counts, n_max):
    return (
        (torch.arange(n_max)[None] < torch.tensor(counts)[:, None])
        .double()
        .unsqueeze(-1)
    )


def test_estimators_on_a_hand_made_example():
    mask = _mask([2, 3], 3)
    z = torch.tensor(
        [[[1.0, -2.0], [-1.0, 2.0], [0, 0]], [[3.0, 0.0], [-3.0, 3.0], [0.0, -3.0]]],
        dtype=torch.float64,
    )
    sq = torch.tensor([10.0, 36.0])  # squared norms per molecule
    sub = torch.tensor([1 * 2, 2 * 2.0])  # (N - 1) F
    amb = torch.tensor([2 * 2, 3 * 2.0])  # N F
    assert float(data_variance(z, mask)) == pytest.approx(float((sq / sub).mean()))
    assert float(data_variance(z, mask, "pooled")) == pytest.approx(46 / 6)
    assert float(data_variance(z, mask, "mean_square")) == pytest.approx(
        float((sq / amb).mean())
    )
    assert float(data_variance(z, mask, "rms")) == pytest.approx(
        float((sq / amb).sqrt().mean())
    )


def test_unbiased_subspace_estimator_recovers_the_variance_of_gaussian_data():
    g = torch.Generator().manual_seed(0)
    mask = _mask(torch.randint(2, 9, (2000,), generator=g).tolist(), 8)
    v = 1.47
    z = (
        sample_zero_mean_gaussian((2000, 8, 3), mask, generator=g, dtype=torch.float64)
        * v**0.5
    )
    dof = float(((mask.sum((1, 2)) - 1) * 3).sum())
    est = float(data_variance(z, mask, "pooled"))
    assert est == pytest.approx(v, rel=5 * math.sqrt(2 / dof))
    # the code's "variance" is a standard deviation; the mean square is biased low
    assert float(data_variance(z, mask, "rms")) < v**0.5 + 0.05
    assert float(data_variance(z, mask, "mean_square")) < est


def test_reference_variance_interpolates_between_data_and_noise():
    sch = NoiseSchedule(200)
    v = reference_variance(sch, torch.tensor([0, 110, 200]), 0.634)
    assert float(v[0]) == pytest.approx(0.634, abs=1e-5)
    assert float(v[-1]) == pytest.approx(1.0, abs=1e-5)
    a2 = float(sch.alpha2(110))
    assert float(v[1]) == pytest.approx(1 - a2 * (1 - 0.634))


def test_bad_variance_inputs():
    mask = _mask([2, 3], 3)
    z = center(torch.randn(2, 3, 2, dtype=torch.float64), mask)
    with pytest.raises(ValueError, match="centred"):
        data_variance(z + mask, mask)
    with pytest.raises(ValueError, match="unknown estimator"):
        data_variance(z, mask, "std")
    with pytest.raises(ValueError, match="fewer than 2"):
        data_variance(z, _mask([1, 3], 3))
    with pytest.raises(ValueError, match="NaN"):
        data_variance(z.masked_fill(mask.bool().expand_as(z), float("nan")), mask)


def test_node_count_distribution():
    counts = torch.tensor([3, 3, 3, 5])
    d = NodeCountDistribution(counts)
    torch.testing.assert_close(
        d.probs[3:6], torch.tensor([0.75, 0, 0.25], dtype=torch.float64)
    )
    s = d.sample(4000, generator=torch.Generator().manual_seed(0))
    assert set(s.tolist()) == {3, 5}
    assert float((s == 5).double().mean()) == pytest.approx(
        0.25, abs=5 * (0.1875 / 4000) ** 0.5
    )
    with pytest.raises(ValueError, match="non-empty"):
        NodeCountDistribution(torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="positive"):
        d.sample(0)
