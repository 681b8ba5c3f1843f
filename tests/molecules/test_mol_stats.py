import pytest
import torch

from refimpl.molecules import load_qm9, molecule_statistics
from refimpl.molecules.qm9 import qm9pack_files

# EDM, configs/datasets_config.py (QM9 training split, 100,000 molecules)
EDM_N_NODES = {3: 1, 4: 4, 5: 5, 6: 9, 7: 16, 8: 49, 9: 124, 10: 362, 11: 807,
               12: 1689, 13: 3060, 14: 5136, 15: 7796, 16: 10644, 17: 13025, 18: 13364,
               19: 13832, 20: 9482, 21: 9970, 22: 3393, 23: 4848, 24: 539, 25: 1506,
               26: 48, 27: 266, 29: 25}
EDM_N_NODES_NO_H = {1: 2, 2: 5, 3: 7, 4: 25, 5: 91, 6: 475, 7: 2404, 8: 13625, 9: 83366}
EDM_ATOM_TYPES = {"H": 923_537, "C": 635_559, "N": 101_476, "O": 140_202, "F": 2_323}


@pytest.fixture(scope="module")
def train():
    try:
        qm9pack_files()
    except (ModuleNotFoundError, FileNotFoundError):
        pytest.skip("qm9pack not installed")
    return load_qm9(progress=False).split("train")


def test_training_split_matches_edm_histograms(train):
    """The atom-count histogram and element counts of our EDM split equal the ones
    EDM ships: this checks the parser and the split permutation together."""
    st = molecule_statistics(train, max_distance_molecules=300)
    assert st["num_molecules"] == 100_000
    assert st["num_atoms_hist"] == EDM_N_NODES
    assert st["element_counts"] == EDM_ATOM_TYPES
    assert list(st["element_counts"]) == ["H", "C", "O", "N", "F"]  # H > C > O > N > F
    assert st["num_atoms_max"] == 29 and st["num_heavy_atoms_max"] == 9
    assert st["num_atoms_mode"] == 19
    assert st["num_atoms_mean"] == pytest.approx(18.03, abs=0.005)
    # heavy-atom counts: EDM's no-H histogram lists the two 1-heavy-atom molecules
    # of this split too (CH4/NH3/H2O), which load_qm9(remove_h=True) excludes
    heavy = dict(st["num_heavy_atoms_hist"])
    assert heavy == EDM_N_NODES_NO_H


def test_distances_are_physical(train):
    st = molecule_statistics(train, max_distance_molecules=300, seed=1)
    bins, hist = st["distance_bins"], st["distance_hist"]
    assert 0.9 < st["distance_min"] < 1.0  # shortest bonds are O-H / N-H, ~0.96 A
    assert st["distance_max"] < 12.0
    centres = (bins[1:] + bins[:-1]) / 2
    short = centres < 1.3
    peak = centres[short][hist[short].argmax()]
    assert 1.05 < peak < 1.15  # C-H bonds (1.09 A) dominate the first peak
    n = train.subset(range(10)).num_atoms
    st10 = molecule_statistics(train.subset(range(10)))
    assert int(st10["distance_hist"].sum()) == int((n * (n - 1) // 2).sum())


def test_statistics_of_pairs_and_bad_input():
    mols = [(torch.tensor([6, 1]), torch.tensor([[0.0, 0, 0], [1.09, 0, 0]])),
            (torch.tensor([8, 1, 1]), torch.tensor([[0.0, 0, 0], [0.96, 0, 0],
                                                    [0, 0.96, 0]]))]
    st = molecule_statistics(mols)
    assert st["num_atoms_hist"] == {2: 1, 3: 1}
    assert st["element_counts"] == {"H": 3, "C": 1, "O": 1}
    assert st["distance_min"] == pytest.approx(0.96)
    assert st["distance_max"] == pytest.approx(0.96 * 2 ** 0.5)
    with pytest.raises(ValueError, match="at least one"):
        molecule_statistics([])
