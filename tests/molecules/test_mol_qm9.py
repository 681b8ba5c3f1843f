import io
import math

import numpy as np
import pytest
import torch

from refimpl.molecules import (EDM_SPLIT_SIZES, TARGETS, edm_split, load_qm9,
                               parse_qm9_csv)
from refimpl.molecules.qm9 import HARTREE_TO_EV, qm9pack_files

HEADER = ("XYZ_file,Index,SMILES,InChi,N_atoms,Stoichiometry,Elements,XYZ_Ang,"
          "Mulliken_pop,Harmonic_Freq_cmi,RotA_GHz,RotB_GHz,RotC_GHz,Dipole_debye,"
          "Polarizability_bohr3,HOMO_au,LUMO_au,HOMO_LUMO_gap_au,R2_bohr2,ZPVE_au,"
          "InternalEnergy_0K_au,InternalEnergy_298K_au,Enthalphy_298K_au,"
          "GibbsFreeEnergy_298K_au,Heatcapacity_Cv_cal_mol_K")

WATER = (["O", "H", "H"], [[0.0, 0.0, 0.1], [0.0, 0.76, -0.47], [0.0, -0.76, -0.47]])


def row(index, elements, coords, n_atoms=None, smiles="O", homo="-0.2928",
        coord_text=None):
    n = len(elements) if n_atoms is None else n_atoms
    el = "[" + ",".join(f"'{e}'" for e in elements) + "]"
    xyz = coord_text or "[" + ",".join(
        "[" + ",".join(repr(float(v)) for v in c) + "]" for c in coords) + "]"
    return (f'"dsgdb9nsd_{index:06d}.xyz",{index},"{smiles}","InChI",{n},"[]",'
            f'"{el}","{xyz}","[]","[]",799.58812,437.90386,282.94545,1.8511,6.31,'
            f'{homo},0.0687,0.3615,19.0002,0.021375,-76.404702,-76.401867,'
            f'-76.400922,-76.422349,6.002')


def csv(*rows):
    return io.StringIO("\n".join([HEADER, *rows]) + "\n")


GOOD = [row(10, *WATER),
        row(11, ["C", "O"], [[0, 0, 0], [0, 0, 1.13]], smiles="[C-]#[O+]")]
BAD = {
    "atom count mismatch": row(20, *WATER, n_atoms=4),
    "unknown element": row(21, ["O", "H", "Xx"], WATER[1]),
    "fewer than 2 atoms": row(22, ["O"], [[0, 0, 0]]),
    "non-finite coordinates": row(23, ["O", "H", "H"], [[0, 0, 0], [0, float("nan"), 0],
                                                        [1, 0, 0]]),
    "unparseable coordinates": row(24, ["O", "H"], None,
                                   coord_text="[[0,0,0],[0,zero,1]]"),
    "non-finite target": row(25, *WATER, homo="nan"),
}


def test_parse_good_rows():
    p = parse_qm9_csv(csv(*GOOD))
    assert p.num_rows == 2 and not p.skipped
    assert p.z.tolist() == [8, 1, 1, 6, 8]
    assert p.num_atoms.tolist() == [3, 2]
    assert p.gdb_idx.tolist() == [10, 11]
    assert p.smiles == ["O", "[C-]#[O+]"]
    np.testing.assert_allclose(p.pos[1], [0.0, 0.76, -0.47], rtol=1e-6)
    homo = p.y[0, TARGETS.index("homo")]
    assert homo == pytest.approx(-0.2928 * 27.211386246)
    assert p.y[0, TARGETS.index("mu")] == pytest.approx(1.8511)  # Debye, unchanged


@pytest.mark.parametrize("reason", list(BAD))
def test_bad_row_strict_raises_with_name(reason):
    with pytest.raises(ValueError, match=rf"dsgdb9nsd_0000\d\d.*{reason}"):
        parse_qm9_csv(csv(GOOD[0], BAD[reason]), strict=True)


def test_bad_rows_skipped_and_reported():
    p = parse_qm9_csv(csv(GOOD[0], *BAD.values(), GOOD[1]))
    assert p.num_rows == 2 + len(BAD)
    assert p.gdb_idx.tolist() == [10, 11]
    assert p.row.tolist() == [0, 1 + len(BAD)]
    assert sorted(r for _, r, _ in p.skipped) == sorted(BAD)
    names = {r: n for n, r, _ in p.skipped}
    assert names["unknown element"].startswith("dsgdb9nsd_000021")
    assert "'Xx'" in {r: d for _, r, d in p.skipped}["unknown element"]
    # the good atoms are intact despite the bad rows in between
    assert p.z.tolist() == [8, 1, 1, 6, 8] and p.pos.shape == (5, 3)


def test_missing_column():
    with pytest.raises(ValueError, match="lacks the columns"):
        parse_qm9_csv(io.StringIO("XYZ_file,Index\n\"a\",1\n"))


def test_edm_split_sizes_and_seed():
    tr, va, te = edm_split(130_831)
    assert (len(tr), len(va), len(te)) == EDM_SPLIT_SIZES
    perm = np.random.RandomState(0).permutation(130_831)  # EDM: np.random.seed(0)
    assert np.array_equal(np.concatenate([tr, va, te]), perm)
    a = edm_split(1000, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, edm_split(1000, seed=3)))
    assert not np.array_equal(a[0], edm_split(1000, seed=4)[0])


# ---------------------------------------------------------------- the real QM9 files
@pytest.fixture(scope="module")
def qm9():
    pytest.importorskip("pandas")
    try:
        qm9pack_files()
    except (ModuleNotFoundError, FileNotFoundError) as err:
        pytest.skip(f"qm9pack not installed: {err}")
    return load_qm9(progress=False)


def test_full_dataset_and_split(qm9):
    assert len(qm9) == 130_831 and qm9.skipped == {}
    assert tuple(qm9.split_sizes.values()) == EDM_SPLIT_SIZES
    parts = torch.cat([qm9.split(s).idx for s in ("train", "val", "test")])
    assert torch.equal(parts.sort().values, qm9.idx)  # disjoint and complete
    assert torch.equal(qm9.idx, qm9.idx.sort().values)  # ordered by GDB index


def test_item_fields_and_units(qm9):
    d = qm9[0]  # methane, gdb 1
    assert d.smiles == "C" and d.idx.tolist() == [1]
    assert d.z.dtype == torch.long and d.z.tolist() == [6, 1, 1, 1, 1]
    assert d.pos.dtype == torch.float32 and d.pos.shape == (5, 3)
    assert d.y.shape == (1, len(TARGETS))
    # QM9's record for methane: gap 0.5048 Ha, U0 -40.47893 Ha, Cv 6.469 cal/mol K
    assert qm9.targets("gap")[0] == pytest.approx(0.5048 * HARTREE_TO_EV)
    assert qm9.targets("U0")[0] == pytest.approx(-40.47893 * HARTREE_TO_EV)
    assert qm9.targets("Cv")[0] == pytest.approx(6.469)
    # C-H bond of methane ~1.09 A
    assert (d.pos[1:] - d.pos[0]).norm(dim=1).mean() == pytest.approx(1.09, abs=0.01)
    with pytest.raises(ValueError, match="unknown QM9 target"):
        qm9.targets("energy")


def test_limit_is_proportional_and_inside_full_split(qm9):
    small = load_qm9(limit=1000, seed=0, progress=False)
    sizes = small.split_sizes
    assert sum(sizes.values()) == 1000 == len(small)
    assert sizes["test"] == round(1000 * 13_083 / 130_831)
    assert sizes["val"] == round(1000 * 17_748 / 130_831)
    for s in ("train", "val", "test"):
        assert torch.isin(small.split(s).idx, qm9.split(s).idx).all()
    other = load_qm9(limit=1000, seed=1, progress=False)
    assert not torch.equal(other.idx, small.idx)
    assert torch.equal(load_qm9(limit=1000, seed=0, progress=False).idx, small.idx)


def test_remove_h(qm9):
    heavy = load_qm9(remove_h=True, progress=False)
    assert len(heavy) == 130_831 - 3
    assert heavy.skipped == {"fewer than 2 atoms after removing hydrogens": 3}
    assert [n.split()[0] for n, _, _ in heavy.skipped_molecules] == [
        "dsgdb9nsd_000001", "dsgdb9nsd_000002", "dsgdb9nsd_000003"]
    z, _, _ = heavy.flat()
    assert int(z.min()) == 6 and int(heavy.num_atoms.max()) == 9
    # same molecule, hydrogens removed
    i = int((qm9.idx == int(heavy.idx[0])).nonzero())
    zf, pf = qm9.get_molecule(i)
    zh, ph = heavy.get_molecule(0)
    assert torch.equal(zf[zf > 1], zh) and torch.equal(pf[zf > 1], ph)


def test_cache_is_weights_only(qm9):
    import refimpl

    files = list(refimpl.cache_dir("molecules").glob("qm9pack-*.pt"))
    assert files
    raw = torch.load(files[0], weights_only=True)
    assert raw["z"].dtype == torch.uint8 and raw["pos"].dtype == torch.float32


def test_atom_reference_explains_most_of_U0(qm9):
    train = qm9.split("train").subset(range(2000))
    ref = train.atom_reference("U0")
    z, _, batch = train.flat()
    pred = torch.zeros(len(train), dtype=torch.float64).index_add_(0, batch, ref[z])
    resid = train.targets("U0") - pred
    assert resid.std() < 0.02 * train.targets("U0").std()
    assert ref[6] == pytest.approx(-37.8 * HARTREE_TO_EV, rel=0.01)  # ~ a C atom


def test_bad_arguments():
    with pytest.raises(ValueError, match="source"):
        load_qm9(source="web")
    with pytest.raises(ValueError, match="limit"):
        load_qm9(limit=0)
    with pytest.raises(ValueError, match="seed"):
        load_qm9(seed=-1)


def test_pyg_source_unavailable_gives_clear_error(monkeypatch, tmp_path):
    import torch_geometric.datasets as tgd

    class Offline:
        def __init__(self, root):
            raise OSError("network unreachable")

    monkeypatch.setattr(tgd, "QM9", Offline)
    with pytest.raises(RuntimeError, match="internet access.*qm9pack"):
        load_qm9(source="pyg", root=tmp_path)


def test_split_on_split_is_refused(qm9):
    with pytest.raises(ValueError, match="full dataset"):
        qm9.split("train").split("test")
    with pytest.raises(ValueError, match="unknown split"):
        qm9.split("training")
    assert math.isclose(len(qm9.split("train")) / len(qm9), 100_000 / 130_831)


def test_reference_smiles_cached(qm9, monkeypatch):
    part = qm9.split("train").subset(range(50))
    first = part.reference_smiles(progress=False)
    assert len(first) == 50 and all(s is not None for s in first[:5])
    import refimpl.molecules.chemistry as chem

    def fail(*a, **k):
        raise AssertionError("not cached")

    monkeypatch.setattr(chem, "molecule_smiles", fail)
    assert part.reference_smiles(progress=False) == first


def test_loader_reports_skipped_rows(monkeypatch, caplog):
    import refimpl.molecules.qm9 as qm9mod

    rows = [row(30 + k, *WATER) for k in range(8)] + list(BAD.values())
    storage = qm9mod._parsed_to_storage(parse_qm9_csv(csv(*rows)))
    monkeypatch.setattr(qm9mod, "_load_qm9pack_storage",
                        lambda progress: (storage, "hand-made"))
    with caplog.at_level("WARNING", logger="refimpl.molecules"):
        ds = load_qm9(progress=False)
    assert len(ds) == 8
    assert ds.skipped == {reason: 1 for reason in BAD}
    assert "skipped" in caplog.text and "unknown element" in caplog.text
    assert sum(ds.split_sizes.values()) == 8
    with pytest.raises(ValueError, match=r"bad QM9 row: molecule dsgdb9nsd_0000\d\d"):
        load_qm9(strict=True, progress=False)


def test_a_damaged_parse_cache_is_parsed_again_with_a_warning(tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    try:
        qm9pack_files()
    except (ModuleNotFoundError, FileNotFoundError) as err:
        pytest.skip(f"qm9pack not installed: {err}")
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path))
    first = load_qm9(limit=50, progress=False)
    (path,) = (tmp_path / "molecules").glob("qm9pack-*.pt")
    path.write_bytes(path.read_bytes()[:-1000])  # truncated
    with pytest.warns(UserWarning, match="ignoring the QM9 parse cache file .*cannot "
                                         "be read"):
        again = load_qm9(limit=50, progress=False)
    assert torch.equal(first.idx, again.idx)
    assert torch.equal(first[0].pos, again[0].pos)
