import math

import matplotlib
import pytest
import torch

from refimpl.experiments import rise as X
from refimpl.molecules.schnet import SchNetRegressor
from small_molecules import MOLECULES as ALL_MOLECULES

matplotlib.use("Agg")

MOLECULES = ALL_MOLECULES[2:]  # ethanol, acetaldehyde, methylamine

RISE = dict(steps=5, lr=0.05, tau=100.0)


def items():
    return [(torch.tensor(z), torch.tensor(p), torch.tensor(float(k)))
            for k, (z, p) in enumerate(MOLECULES)]


def batch():
    z, pos, b, _ = X.collate(items())
    return z, pos, b


def tiny_model():
    torch.manual_seed(0)
    return SchNetRegressor(8, 8, 2, 6, 5.0).eval()


def test_collate_and_dataset():
    z, pos, b, y = X.collate(items())
    assert z.shape == (23,) and pos.shape == (23, 3) and pos.dtype == torch.float32
    assert torch.equal(torch.bincount(b), torch.tensor([9, 7, 7]))
    assert torch.equal(y, torch.tensor([0.0, 1.0, 2.0]))
    ds = X.MoleculeTargets([(z, p) for z, p, _ in items()], torch.arange(3.0))
    assert len(ds) == 3 and float(ds[2][2]) == 2.0
    with pytest.raises(ValueError, match="targets"):
        X.MoleculeTargets([(z, pos)], torch.zeros(2))


def test_edge_density_counts():
    z, pos, b = batch()
    dens = X.edge_density(z, pos, b, cutoffs=(1.2, 100.0))
    bonds = dens["edges"]["chemical bonds"][0]
    # ethanol 8 bonds, acetaldehyde 6, methylamine 6: directed, twice as many
    assert math.isclose(bonds, 2 * (8 + 6 + 6) / 3)
    complete = dens["edges"]["complete graph"][0]
    assert math.isclose(dens["edges"]["radius graph, c = 100 Å"][0], complete)
    assert math.isclose(complete, (72 + 42 + 42) / 3)
    assert dens["edges"]["radius graph, c = 1.2 Å"][0] < bonds


def test_fidelity_benchmark_structure_and_matching():
    model = tiny_model()
    z, pos, b = batch()
    bench = X.fidelity_benchmark(model, z, pos, b, (0.2, 0.4), RISE,
                                 gnn_epochs=3, random_draws=2)
    assert set(bench["methods"]) == {"RISE", "uniform radius", "shortest edges",
                                     "random edges", "GNNExplainer"}
    for budget in (0.2, 0.4):
        keep = {name: per[budget]["keep"][0] for name, per in
                bench["methods"].items()}
        # all top-k baselines keep exactly RISE's count per molecule
        for name in ("shortest edges", "random edges", "GNNExplainer"):
            assert math.isclose(keep[name], keep["RISE"], rel_tol=1e-6)
        assert bench["rise"][budget].radius.shape == z.shape
    table = X.fidelity_table(bench, unit="eV")
    assert table.count("\n") == 2 + 2 * 5
    goals = X.fidelity_goals(bench)
    assert len(goals) == 3 and goals[-1].startswith("goal:")
    X.plot_fidelity(bench)


def test_planted_benchmark_oracle_finds_the_bonds():
    # With the exact rule as the model, RISE at a generous budget keeps every
    # planted bond (recall 1).
    from refimpl.explain.planted import PlantedPairModel

    z, pos, b = batch()
    oracle = PlantedPairModel(cutoff=5.0)
    bench = X.planted_benchmark(oracle, z, pos, b, (0.5,), RISE, gnn_epochs=2,
                                random_draws=2, oracle=False)
    assert bench["methods"]["RISE"][0.5]["recall"][0] == pytest.approx(1.0)
    assert bench["methods"]["uniform radius"][0.5]["recall"][0] == 1.0
    assert "planted atoms" in bench["radii"][0.5]
    goals = X.planted_goals(bench)
    assert len(goals) == 2 and goals[-1].startswith("goal at B=0.5")
    assert X.planted_table(bench).count("|") > 10
    X.plot_planted(bench)


def test_runtime_and_molecule_helpers():
    model = tiny_model()
    z, pos, b = batch()
    rt = X.runtime_comparison(model, z, pos, b, 0.3, RISE)
    assert rt["molecules"] == 3 and rt["max_radius_difference"] < 1e-4
    r = X.explain(model, z, pos, b, budget=0.3, **RISE)
    one = X.molecule_of(z, pos, b, 1, r)
    assert one["z"].shape == (7,) and one["radius"].shape == (7,)
    assert int(one["edge_index"].min()) == 0 and int(one["edge_index"].max()) == 6
    assert X.pick_molecule(z, b, min_heavy=3) == 0
    bonds = X.kept_bonds(one["z"], one["pos"], one["edge_index"],
                         torch.ones_like(one["hard_mask"]))
    assert len(bonds) == 6  # acetaldehyde: every bond kept
    groups = X.radius_by_element(r, z)
    assert set(groups) == {"H", "C", "N", "O"}
    X.plot_radius_histogram(r, z)


def test_weights_path_by_scale():
    assert X.weights_path("U0", "book").name == "schnet_U0_book"
    smoke = X.weights_path("planted", "smoke")
    assert smoke.parent.name == "rise" and smoke.name.startswith("schnet_planted_smoke_")
    with pytest.raises(ValueError, match="kind"):
        X._targets("alpha", None)
