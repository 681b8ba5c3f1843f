"""RISE on the committed book-scale SchNet (U0): it must beat random and
shortest edges at matched keep ratio. A broken optimiser (``steps=0``, or no
Adam step) makes RISE the uniform radius, which equals the shortest edges at
its own count and is no better than random edges, so this test fails."""

import pytest
import torch

from refimpl.experiments import rise as X
from refimpl.explain.baselines import random_edges, shortest_edges
from refimpl.explain.fidelity import fidelity
from refimpl.stats import paired



@pytest.fixture(scope="module")
def book():
    data = X.load_data(X.PRESETS["book"])
    model, info = X.load_or_train("U0", "book", data, log=lambda s: None)
    assert info["scale"] == "book" and info["n_train"] > 1000  # committed weights
    z, pos, batch = X.explain_set(data["test"], 6, seed=5)
    return model.eval(), z, pos, batch


def test_rise_beats_random_and_shortest_at_matched_keep_ratio(book):
    model, z, pos, batch = book
    r = X.explain(model, z, pos, batch, budget=0.3, steps=200, lr=1e-2)
    k, eb, g = r.num_kept, r.edge_batch, r.num_graphs

    def fid_minus(keep):
        return fidelity(model, z, pos, r.edge_index, keep, batch,
                        r.prediction).fid_minus

    ours = fid_minus(r.hard_mask)
    gen = torch.Generator().manual_seed(0)
    rand = torch.stack([fid_minus(random_edges(eb, k, g, generator=gen))
                        for _ in range(10)]).mean(0)
    short = fid_minus(shortest_edges(r.edge_length, eb, k, g))
    for name, other in (("random edges", rand), ("shortest edges", short)):
        cmp = paired(ours.numpy(), other.numpy())
        assert cmp.diff < 0 and cmp.frac_lower >= 0.5, (name, str(cmp))
