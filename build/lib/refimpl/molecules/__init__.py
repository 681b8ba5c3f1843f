"""Molecules: QM9 offline, 3-D graphs, dense/sparse batches, chemistry checks, views.

The base of the diffusion (chapter 4) and explanation (chapter 5) chapters:

* :func:`load_qm9` — QM9 from the ``qm9pack`` wheel (or PyG), cached, EDM's split;
* :func:`radius_graph` — pure-torch radius graph (PyG edge convention);
* :func:`to_dense` / :func:`to_sparse` — padded ``[B, N, ·]`` vs flat PyG batches,
  and EDM's masked zero-mean helpers;
* :func:`evaluate_molecules` — EDM's stability and RDKit validity/uniqueness/novelty;
* :func:`draw_molecule`, :func:`view3d`, :func:`draw_2d` — views;
* :func:`molecule_statistics` — atom counts, elements, distances.
"""

from .chemistry import (
    ALLOWED_VALENCE,
    BOND_LENGTHS_PM,
    BOND_MARGINS_PM,
    as_padded,
    atom_stability,
    bond_order,
    bond_order_matrix,
    check_stability,
    evaluate_molecules,
    largest_fragment_smiles,
    mol_to_smiles,
    molecule_smiles,
    to_rdkit_mol,
)
from .dense import (
    DenseMolecules,
    assert_correctly_masked,
    assert_mean_zero_with_mask,
    center_gravity_zero_gaussian_log_likelihood_with_mask,
    collate_dense,
    collate_sparse,
    edge_mask_from_node_mask,
    one_hot_types,
    remove_mean_with_mask,
    sample_center_gravity_zero_gaussian_with_mask,
    sample_gaussian_with_mask,
    to_dense,
    to_sparse,
)
from .graph import edge_lengths, radius_graph
from .qm9 import (
    ATOMIC_NUMBERS,
    EDM_SPLIT_SIZES,
    ELEMENTS,
    TARGET_UNITS,
    TARGETS,
    QM9Dataset,
    edm_split,
    load_qm9,
    parse_qm9_csv,
)
from .stats import molecule_statistics
from .view import draw_2d, draw_molecule, view3d

__all__ = [
    # graphs
    "radius_graph", "edge_lengths",
    # data
    "load_qm9", "QM9Dataset", "parse_qm9_csv", "edm_split", "ELEMENTS",
    "ATOMIC_NUMBERS", "TARGETS", "TARGET_UNITS", "EDM_SPLIT_SIZES",
    # batch layouts
    "DenseMolecules", "to_dense", "to_sparse", "collate_dense", "collate_sparse",
    "edge_mask_from_node_mask", "one_hot_types", "remove_mean_with_mask",
    "assert_mean_zero_with_mask", "assert_correctly_masked",
    "sample_gaussian_with_mask", "sample_center_gravity_zero_gaussian_with_mask",
    "center_gravity_zero_gaussian_log_likelihood_with_mask",
    # chemistry
    "BOND_LENGTHS_PM", "BOND_MARGINS_PM", "ALLOWED_VALENCE", "bond_order",
    "bond_order_matrix", "atom_stability", "check_stability", "to_rdkit_mol",
    "mol_to_smiles", "largest_fragment_smiles", "molecule_smiles",
    "evaluate_molecules", "as_padded",
    # statistics and views
    "molecule_statistics", "draw_molecule", "view3d", "draw_2d",
]
