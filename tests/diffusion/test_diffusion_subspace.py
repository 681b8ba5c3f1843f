import pytest
import torch

from refimpl.diffusion import (
    center,
    check_node_mask,
    is_centered,
    sample_zero_mean_gaussian,
    subspace_dim,
)


def _mask(counts, n_max):
    return (
        (torch.arange(n_max)[None] < torch.tensor(counts)[:, None])
        .double()
        .unsqueeze(-1)
    )


def test_center_zero_sum_and_zero_padding(device):
    mask = _mask([2, 5, 3], 5).to(device)
    z = torch.randn(3, 5, 4, dtype=torch.float64, device=device) + 3.0
    c = center(z, mask)
    torch.testing.assert_close(
        c.sum(1), torch.zeros(3, 4, dtype=torch.float64, device=device)
    )
    assert float((c * (1 - mask)).abs().max()) == 0.0
    assert is_centered(c, mask) and not is_centered(z * mask, mask)
    torch.testing.assert_close(center(c, mask), c)  # a projection


def test_zero_mean_gaussian_moments():
    # Each ambient entry of a standard Gaussian on the subspace has variance (N-1)/N.
    g = torch.Generator().manual_seed(1)
    mask = _mask([4] * 4000, 6)
    eps = sample_zero_mean_gaussian(
        (4000, 6, 3), mask, generator=g, dtype=torch.float64
    )
    assert is_centered(eps, mask)
    var = eps[:, :4].pow(2).mean()
    n = 4000 * 4 * 3  # entries (correlated within a molecule: tolerance of 6 SE)
    se = (2 / n) ** 0.5 * 0.75 * 2
    assert abs(float(var) - 0.75) < 3 * se
    assert float(subspace_dim(mask, 3)[0]) == 9


def test_seeded_sampling_repeats():
    mask = _mask([3, 2], 3)
    a = sample_zero_mean_gaussian(
        (2, 3, 2), mask, generator=torch.Generator().manual_seed(5)
    )
    b = sample_zero_mean_gaussian(
        (2, 3, 2), mask, generator=torch.Generator().manual_seed(5)
    )
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_bad_masks():
    with pytest.raises(ValueError, match=r"\[B, N, 1\]"):
        check_node_mask(torch.ones(2, 3))
    with pytest.raises(TypeError, match="floating-point"):
        check_node_mask(torch.ones(2, 3, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="only 0 and 1"):
        check_node_mask(torch.full((2, 3, 1), 0.5))
    with pytest.raises(ValueError, match="fewer than 1"):
        check_node_mask(_mask([0, 2], 3))
    with pytest.raises(ValueError, match="does not match"):
        center(torch.zeros(2, 4, 3), _mask([1, 2], 3))


def test_center_agrees_with_the_molecules_helper():
    from refimpl.molecules.dense import remove_mean_with_mask

    mask = _mask([2, 4, 3], 4)
    z = torch.randn(3, 4, 5, dtype=torch.float64) * mask
    torch.testing.assert_close(center(z, mask), remove_mean_with_mask(z, mask) * mask)
