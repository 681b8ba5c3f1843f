"""Diffusion models for 3-D molecules: EDM and the Gaussian shortcut.

One concept per module: the zero-mean subspace (:mod:`.subspace`), noise schedules
(:mod:`.schedules`), the VP forward process (:mod:`.forward`), the closed-form
Gaussian reference (:mod:`.reference`), molecule features (:mod:`.features`), EDM's
EGNN (:mod:`.egnn`), the diffusion model and its samplers (:mod:`.edm`), any
EDM-style ε-network behind those samplers (:mod:`.adapter`), the
Gaussian-shortcut sampler (:mod:`.shortcut`), Gaussianity curves and the
characteristic step (:mod:`.gaussianity`), atom-count distributions
(:mod:`.nodes`), dense data (:mod:`.data`) and sample metrics (:mod:`.metrics`).
"""

from .adapter import EpsilonModel, EpsilonModelAdapter
from .data import MoleculeTensors, crop_collate, molecule_tensors
from .edm import (
    DiffusionSampler,
    EquivariantDiffusion,
    SampleResult,
    node_mask_from_counts,
    timestep_sequence,
)
from .egnn import EGNNDynamics, EquivariantBlock, EquivariantUpdate, GCL
from .features import decode_types, encode, one_hot
from .forward import q_sample, sample_noise
from .gaussianity import (
    CharacteristicStep,
    GaussianityCurves,
    KS_STATISTICS,
    characteristic_step,
    PerMoleculeTest,
    T_star,
    covariance_mismatch_kl,
    ks_normal,
    ks_two_sample,
    ksg_mutual_information,
    per_molecule_test,
    pointcloud_curves,
    random_rotations,
    vector_curves,
)
from .metrics import (
    bond_lengths,
    evaluate_samples,
    radius_of_gyration,
    sample_to_molecules,
    type_frequencies,
)
from .nodes import NodeCountDistribution
from .plots import (
    plot_curves,
    plot_pass_rates,
    plot_samples,
    plot_schedule,
    plot_training,
)
from .reference import VARIANCE_ESTIMATORS, data_variance, reference_variance
from .schedules import (
    NoiseSchedule,
    clip_noise_schedule,
    cosine_schedule,
    polynomial_schedule,
)
from .shortcut import sample_shortcut, shortcut_start_variance, shortcut_type_mean
from .toys import digits_vectors, hexagons
from .subspace import (
    center,
    check_node_mask,
    is_centered,
    sample_zero_mean_gaussian,
    subspace_dim,
)

__all__ = [
    "EpsilonModel",
    "EpsilonModelAdapter",
    "DiffusionSampler",
    "MoleculeTensors",
    "crop_collate",
    "molecule_tensors",
    "EquivariantDiffusion",
    "SampleResult",
    "node_mask_from_counts",
    "timestep_sequence",
    "EGNNDynamics",
    "EquivariantBlock",
    "EquivariantUpdate",
    "GCL",
    "decode_types",
    "encode",
    "one_hot",
    "q_sample",
    "sample_noise",
    "CharacteristicStep",
    "GaussianityCurves",
    "KS_STATISTICS",
    "characteristic_step",
    "PerMoleculeTest",
    "T_star",
    "covariance_mismatch_kl",
    "ks_normal",
    "ks_two_sample",
    "ksg_mutual_information",
    "per_molecule_test",
    "pointcloud_curves",
    "random_rotations",
    "vector_curves",
    "bond_lengths",
    "evaluate_samples",
    "radius_of_gyration",
    "sample_to_molecules",
    "type_frequencies",
    "NodeCountDistribution",
    "plot_curves",
    "plot_pass_rates",
    "plot_samples",
    "plot_schedule",
    "plot_training",
    "VARIANCE_ESTIMATORS",
    "data_variance",
    "reference_variance",
    "NoiseSchedule",
    "clip_noise_schedule",
    "cosine_schedule",
    "polynomial_schedule",
    "sample_shortcut",
    "shortcut_start_variance",
    "shortcut_type_mean",
    "digits_vectors",
    "hexagons",
    "center",
    "check_node_mask",
    "is_centered",
    "sample_zero_mean_gaussian",
    "subspace_dim",
]
