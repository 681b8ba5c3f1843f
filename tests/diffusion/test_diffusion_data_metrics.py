import math

import pytest
import torch

from refimpl.diffusion import (
    MoleculeTensors,
    SampleResult,
    crop_collate,
    digits_vectors,
    evaluate_samples,
    hexagons,
    radius_of_gyration,
    sample_to_molecules,
    type_frequencies,
)


def _mask(counts, n_max):
    return (
        (torch.arange(n_max)[None] < torch.tensor(counts)[:, None])
        .float()
        .unsqueeze(-1)
    )


def test_crop_collate_drops_empty_padding_columns():
    mask = _mask([2, 3, 5], 6)
    ds = MoleculeTensors(torch.randn(3, 6, 3) * mask, torch.zeros(3, 6, 4), mask)
    x, oh, m = crop_collate([ds[0], ds[1]])
    assert x.shape == (2, 3, 3) and oh.shape == (2, 3, 4) and m.shape == (2, 3, 1)
    x, _, m = crop_collate([ds[i] for i in range(3)])
    assert x.shape[1] == 5
    with pytest.raises(ValueError, match="expected x"):
        MoleculeTensors(torch.zeros(3, 6), torch.zeros(3, 6, 4), mask)


def test_radius_of_gyration_and_type_frequencies():
    x = torch.tensor([[[1.0, 0, 0], [-1.0, 0, 0], [5.0, 5, 5]]])
    mask = _mask([2], 3)
    assert float(radius_of_gyration(x, mask)[0]) == pytest.approx(1.0)
    # translation does not change R_g
    assert float(radius_of_gyration(x + 3.0, mask)[0]) == pytest.approx(1.0)
    f = type_frequencies(torch.tensor([[0, 2, 2, -1]]), 4)
    torch.testing.assert_close(
        f, torch.tensor([1 / 3, 0, 2 / 3, 0], dtype=torch.float64)
    )
    with pytest.raises(ValueError, match="no real atoms"):
        type_frequencies(torch.tensor([[-1]]), 2)


def _ethane_like():
    # Two carbons 1.54 Å apart and one far-away oxygen: a valid, disconnected molecule.
    x = torch.tensor(
        [
            [[0.0, 0, 0], [1.54, 0, 0], [0, 6.0, 0]],
            [[0.0, 0, 0], [1.20, 0, 0], [0, 0, 0]],
        ]
    )
    types = torch.tensor([[0, 0, 2], [0, 2, -1]])  # C C O / C O
    mask = _mask([3, 2], 3)
    return SampleResult(x=x * mask, types=types, node_mask=mask, nfe=7)


def test_sample_to_molecules_and_metrics():
    pytest.importorskip("rdkit")
    res = _ethane_like()
    mols = sample_to_molecules(res, (6, 7, 8, 9))
    assert mols[0][0].tolist() == [6, 6, 8] and mols[1][0].tolist() == [6, 8]
    m = evaluate_samples(
        res,
        (6, 7, 8, 9),
        reference_rg=torch.tensor([1.0, 1.2]),
        reference_type_freq=torch.tensor([0.6, 0.1, 0.3, 0.0]),
    )
    assert m["validity"] == 1.0 and m["nfe"] == 7
    assert m["connected"] == 0.5  # CC + O apart; C=O bonded (1.20 Å)
    assert m["uniqueness"] == 1.0  # "CC" and "C=O"
    freq = torch.tensor([3 / 5, 0, 2 / 5, 0], dtype=torch.float64)  # C C O + C O
    assert m["type_tv"] == pytest.approx(
        0.5
        * float(
            (freq - torch.tensor([0.6, 0.1, 0.3, 0.0], dtype=torch.float64)).abs().sum()
        )
    )
    assert m["rg_w1"] >= 0


def test_toys():
    x, mask = hexagons(10, generator=torch.Generator().manual_seed(0))
    assert x.shape == (10, 6, 2)
    torch.testing.assert_close(x.sum(1), torch.zeros(10, 2, dtype=torch.float64))
    r = x.norm(dim=-1)
    assert float((r - 1.4).abs().max()) < 0.4
    x0, _ = hexagons(3, jitter=0.0, generator=torch.Generator().manual_seed(1))
    d = (x0[:, 0] - x0[:, 1]).norm(dim=-1)  # neighbours of a regular hexagon
    torch.testing.assert_close(d, torch.full((3,), 1.4, dtype=torch.float64))
    with pytest.raises(ValueError, match="positive integer"):
        hexagons(0)
    pytest.importorskip("sklearn")
    X, pairs = digits_vectors(limit=5)
    assert X.shape == (5, 64) and float(X.min()) >= -1 and float(X.max()) <= 1
    assert pairs.shape == (56, 2) and bool((pairs[:, 1] - pairs[:, 0] == 1).all())
    assert math.isfinite(float(X.sum()))
