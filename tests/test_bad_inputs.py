"""A clear error for every bad input across the public API.

Each case calls one public function or model with one bad argument and asserts the
exception type and the key words of its message: the argument's name and what is
expected (never a raw torch, JSON or OS error from deep inside).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import refimpl
from refimpl import checkpoint as ckpt
from refimpl import training
from refimpl.diffusion import (
    EquivariantDiffusion,
    NodeCountDistribution,
    NoiseSchedule,
    T_star,
    center,
    check_node_mask,
    crop_collate,
    data_variance,
    ks_normal,
    ks_two_sample,
    ksg_mutual_information,
    node_mask_from_counts,
    one_hot,
    random_rotations,
    sample_shortcut,
    timestep_sequence,
    type_frequencies,
)
from refimpl.explain import (
    PlantedPairModel,
    RISEExplainer,
    compare_maps,
    edge_precision_recall,
    explain,
    fidelity,
    keep_ratio,
    planted_target,
    spatial_dependency,
    subgraph_prediction,
    topk_edges,
    uniform_radius_edges,
)
from refimpl.molecules import (
    collate_dense,
    collate_sparse,
    edge_lengths,
    edm_split,
    load_qm9,
    one_hot_types,
    radius_graph,
    remove_mean_with_mask,
    sample_gaussian_with_mask,
)
from refimpl.molecules.chemistry import bond_order_matrix
from refimpl.molecules.schnet import SchNetRegressor
from refimpl.operators import (
    CNO,
    FNO,
    T1,
    DeepONet,
    GridEmbedding2d,
    NormalizedOperator,
    SpectralConv1d,
    SpectralConv2d,
    UNet,
    relative_l2,
)
from refimpl.operators.models import DualSpaceFNO, DualSpaceMultiScale
from refimpl.pde import UnitGaussianNormalizer, burgers, darcy, grf, heat, sine, wave
from refimpl.pde import cached as pde_cached

NAN = float("nan")


# ----------------------------------------------------------------- small fixtures
def _seeded(make):
    torch.manual_seed(0)
    return make()


FNO_ = _seeded(lambda: FNO(1, 1, modes=2, width=4, n_layers=1,
                           projection_channels=4))
UNET = _seeded(lambda: UNet(1, 1, width=4, depth=1))
DEEPONET = _seeded(lambda: DeepONet(1, 1, n_basis=4, width=4, n_down=1, sensors=4,
                                    trunk_width=8, trunk_layers=1, n_frequencies=2))
CNO_ = _seeded(lambda: CNO(1, 1, width=4, depth=1, n_res=1, n_res_neck=1))
T1_ = _seeded(lambda: T1(1, 1, modes=2, width=4, n_layers=1))
DSFNO = _seeded(lambda: DualSpaceFNO(1, 1, modes=2, width=4, n_layers=1,
                                     latent_resolution=8, projection_channels=4))
DSMS = _seeded(lambda: DualSpaceMultiScale(1, 1, width=4, modes=2,
                                           latent_resolution=8, depth=1, n_res=1,
                                           n_res_neck=1))
OPERATORS = {"FNO": FNO_, "UNet": UNET, "DeepONet": DEEPONET, "CNO": CNO_, "T1": T1_,
             "DualSpaceFNO": DSFNO, "DualSpaceMultiScale": DSMS}
X = torch.randn(2, 1, 16, 16)

SCHNET = _seeded(lambda: SchNetRegressor(hidden_channels=8, num_filters=8,
                                         num_interactions=1, num_gaussians=5))
SCHNET_QM9 = _seeded(lambda: SchNetRegressor(hidden_channels=8, num_filters=8,
                                             num_interactions=1, num_gaussians=5,
                                             elements=(1, 6, 7, 8, 9)))
Z = torch.tensor([6, 1, 1, 8])
POS = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0],
                    [0.0, 0.0, 1.2]])
EDGES = torch.tensor([[0, 1, 0, 3], [1, 0, 3, 0]])

EDM = _seeded(lambda: EquivariantDiffusion(num_types=3, hidden_nf=8, n_layers=1, T=10))
MASK = torch.ones(2, 4, 1)
XD = center(torch.randn(2, 4, 3), MASK)
ONEHOT = torch.nn.functional.one_hot(torch.tensor([[0, 1, 2, 0], [1, 1, 0, 2]]),
                                     3).float()


def _normalizer():
    return UnitGaussianNormalizer().fit(torch.randn(8, 1, 4, 4))


def _nan_conv():
    conv = nn.Conv2d(1, 1, 3, padding=1)
    with torch.no_grad():
        conv.weight.fill_(NAN)
    return conv


def _fit(**kw):
    args = {"epochs": 1, "batch_size": 4, "loss_fn": nn.functional.mse_loss,
            "progress": False, "device": "cpu"}
    data = kw.pop("data", TensorDataset(torch.randn(8, 3), torch.randn(8, 1)))
    return training.fit(nn.Linear(3, 1), data, **(args | kw))


class _Unregistered(nn.Module):
    def config(self):
        return {}


# ---------------------------------------------------------------------- the cases
# (id, call, exception type, regular expression the message must match)
CASES: list[tuple[str, object, type, str]] = []


def case(name: str, exc: type, match: str):
    def register(fn):
        CASES.append((name, fn, exc, match))
        return fn
    return register


# --- operators: every top-level model, the same five faults
for _name, _model in OPERATORS.items():
    CASES += [
        (f"{_name}-nan-input", lambda m=_model: m(torch.full_like(X, NAN)),
         ValueError, rf"{_name} got an input with 512 NaN or infinite .*expected finite"),
        (f"{_name}-empty-batch", lambda m=_model: m(X[:0]), ValueError,
         rf"{_name} got an empty batch .*expected at least one sample"),
        (f"{_name}-integer-input", lambda m=_model: m(X.long()), TypeError,
         rf"{_name} expects a floating-point tensor, got dtype torch.int64"),
        (f"{_name}-wrong-channels", lambda m=_model: m(torch.randn(2, 3, 16, 16)),
         ValueError, rf"{_name} expects 1 input channel\(s\).*got 3"),
        (f"{_name}-3d-input", lambda m=_model: m(torch.randn(2, 16, 16)), ValueError,
         rf"{_name} expects a 4-D input \(B, C, H, W\), got shape \(2, 16, 16\)"),
    ]
# dtypes the models cannot run (those they convert are documented per model)
for _name in ("UNet", "DeepONet", "CNO", "T1", "DualSpaceFNO", "DualSpaceMultiScale"):
    CASES.append((f"{_name}-float64-input",
                  lambda m=OPERATORS[_name]: m(X.double()), TypeError,
                  (rf"{_name} has torch.float32 parameters and expects a torch.float32 "
                  "input, got torch.float64")))
for _name in ("FNO", "UNet", "DeepONet", "CNO", "DualSpaceFNO"):
    CASES.append((f"{_name}-float16-input",
                  lambda m=OPERATORS[_name]: m(X.half()), TypeError,
                  rf"{_name} has torch.float32 parameters.*got torch.float16"))
CASES += [
    ("FNO-bad-modes", lambda: FNO(1, 1, modes=0, width=4, n_layers=1), ValueError,
     r"modes must be an integer >= 1, got 0"),
    ("FNO-bad-width", lambda: FNO(1, 1, modes=2, width=0, n_layers=1), ValueError,
     r"width must be an integer >= 1, got 0"),
    ("FNO-bad-padding", lambda: FNO(1, 1, modes=2, width=4, n_layers=1, padding=1.5),
     ValueError, r"padding is a fraction of the grid in \[0, 1\)"),
    ("FNO-grid-too-small", lambda: FNO_(torch.randn(1, 1, 3, 3)), ValueError,
     r"FNO needs a grid of at least 4x4 points, got 3x3"),
    ("UNet-bad-width", lambda: UNet(1, 1, width=0), ValueError,
     r"width must be an integer >= 1, got 0"),
    ("SpectralConv2d-fractional-output_shape",
     lambda: SpectralConv2d(1, 1, 2, 2)(X, output_shape=(7.5, 8)), ValueError,
     r"output_shape must be an integer >= 1, got 7.5"),
    ("SpectralConv2d-output_shape-too-small",
     lambda: SpectralConv2d(1, 1, 2, 2)(X, output_shape=(3, 8)), ValueError,
     r"output_shape 3x8 cannot hold 4x4 modes"),
    ("SpectralConv2d-output_shape-triple",
     lambda: SpectralConv2d(1, 1, 2, 2)(X, output_shape=(8, 8, 8)), ValueError,
     r"output_shape must be an int or a pair \(H, W\)"),
    ("DeepONet-fractional-output_shape",
     lambda: DEEPONET(X, output_shape=(8, 8.5)), ValueError,
     r"output_shape must be an integer >= 1, got 8.5"),
    ("T1-string-output_shape", lambda: T1_(X, output_shape="16x16"), ValueError,
     r"output_shape must be an int or a pair \(H, W\), got '16x16'"),
    ("SpectralConv1d-2d-input", lambda: SpectralConv1d(1, 1, 2)(X), ValueError,
     r"SpectralConv1d expects a 3-D input \(B, C, L\)"),
    ("GridEmbedding2d-not-a-tensor",
     lambda: GridEmbedding2d(1)(np.zeros((1, 1, 4, 4))), TypeError,
     r"GridEmbedding2d expects a torch.Tensor, got ndarray"),
    ("relative_l2-shape-mismatch",
     lambda: relative_l2(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 5)),
     ValueError, r"prediction shape \(2, 1, 4, 4\) does not match target shape"),
]

# --- PDE generators, cache and normaliser
CASES += [
    ("darcy-resolution-0", lambda: darcy.sample(1, 0), ValueError,
     r"resolution must be an integer >= \d+, got 0"),
    ("darcy-n-float", lambda: darcy.sample(1.5, 8), TypeError,
     r"n must be an integer, got 1.5"),
    ("wave-negative-t", lambda: wave.sample(1, -1.0, resolution=8), ValueError,
     r"t must be non-negative, got -1.0"),
    ("wave-nan-t", lambda: wave.sample(1, NAN, resolution=8), ValueError,
     r"t must be finite, got nan"),
    ("wave-empty-t", lambda: wave.sample(1, [], resolution=8), ValueError,
     r"t must hold at least one horizon"),
    ("wave-string-t", lambda: wave.sample(1, "one", resolution=8), TypeError,
     r"t must be a number or a sequence of numbers, got 'one'"),
    ("wave-bad-dtype", lambda: wave.sample(1, 1.0, resolution=8, dtype=torch.float16),
     TypeError, r"dtype must be torch.float32 or torch.float64, got torch.float16"),
    ("heat-negative-kappa", lambda: heat.sample(1, 1.0, resolution=8, kappa=-1.0),
     ValueError, r"kappa must be positive, got -1.0"),
    ("heat-probe-outside", lambda: heat.dependency_map(0.1, (9, 0), resolution=8),
     ValueError, r"probe \(9, 0\) lies outside the 8x8 grid"),
    ("heat-probe-not-a-pair", lambda: heat.dependency_map(0.1, (1,), resolution=8),
     TypeError, r"probe must be a pair of integer grid indices"),
    ("burgers-negative-viscosity",
     lambda: burgers.solve(torch.zeros(1, 8), viscosity=-0.1), ValueError,
     r"viscosity must be positive, got -0.1"),
    ("burgers-nan-u0", lambda: burgers.solve(torch.full((1, 8), NAN)), ValueError,
     r"u0 contains NaN or infinite values"),
    ("grf-zero-resolution", lambda: grf.periodic(1, 0), ValueError,
     r"resolution must be an integer >= \d+, got 0"),
    ("normalizer-negative-eps", lambda: UnitGaussianNormalizer(eps=-1.0), ValueError,
     r"eps must be non-negative, got -1.0"),
    ("normalizer-eps-0-constant-points",
     lambda: UnitGaussianNormalizer(eps=0).fit(torch.ones(4, 3)), ValueError,
     r"eps=0 but x is constant at 3 point\(s\).*use eps > 0"),
    ("normalizer-nan-fit", lambda: UnitGaussianNormalizer().fit(torch.full((4, 3), NAN)),
     ValueError, r"x contains NaN or infinite values"),
    ("normalizer-unfitted", lambda: UnitGaussianNormalizer().encode(torch.ones(2)),
     RuntimeError, r"the normaliser is not fitted: call fit\(x_train\) first"),
    ("normalizer-wrong-shape", lambda: _normalizer().encode(torch.ones(2, 1, 5, 5)),
     ValueError, r"input shape \(2, 1, 5, 5\) does not match the fitted statistics"),
    ("normalizer-one-sample", lambda: UnitGaussianNormalizer().fit(torch.ones(1, 3)),
     ValueError, r"fit needs at least 2 values per statistic, got 1"),
    ("cache-bad-name", lambda: pde_cached("../x", {}, lambda: torch.zeros(1)),
     ValueError, r"cache name must be letters, digits"),
    ("cache-non-tensor-payload", lambda: pde_cached("toy", {}, lambda: {"a": 1}),
     TypeError, r"a cached dataset must be tensors"),
    ("cache-unserialisable-parameter",
     lambda: pde_cached("toy", {"f": object()}, lambda: torch.zeros(1)), TypeError,
     r"cache parameter f=.* is not JSON-serialisable"),
]

# --- molecules: SchNet, graphs, chemistry
CASES += [
    ("SchNet-Z-100", lambda: SCHNET(torch.tensor([100, 1, 1, 8]), POS), ValueError,
     (r"z holds unknown element\(s\) with atomic number \[100\]; the model knows "
     r"atomic numbers 1..99")),
    ("SchNet-Z-0", lambda: SCHNET(torch.tensor([0, 1, 1, 8]), POS), ValueError,
     r"z holds unknown element\(s\) with atomic number \[0\]"),
    ("SchNet-Z-negative", lambda: SCHNET(torch.tensor([-1, 1, 1, 8]), POS), ValueError,
     r"atomic number \[-1\]"),
    ("SchNet-Z-99-outside-its-elements",
     lambda: SCHNET_QM9(torch.tensor([99, 1, 1, 8]), POS), ValueError,
     r"atomic number \[99\]; the model knows the elements \[1, 6, 7, 8, 9\]"),
    ("SchNet-bad-elements", lambda: SchNetRegressor(elements=(0, 6)), ValueError,
     r"elements must be atomic numbers in 1..99"),
    ("SchNet-float-z", lambda: SCHNET(Z.double(), POS), TypeError,
     r"z must be a 1-D integer tensor of atomic numbers, got dtype torch.float64"),
    ("SchNet-float64-pos", lambda: SCHNET(Z, POS.double()), TypeError,
     r"pos has dtype torch.float64 but the model's parameters are torch.float32"),
    ("SchNet-float16-pos", lambda: SCHNET(Z, POS.half()), TypeError,
     r"pos has dtype torch.float16 but the model's parameters are torch.float32"),
    ("SchNet-nan-pos", lambda: SCHNET(Z, torch.full_like(POS, NAN)), ValueError,
     r"pos contains NaN or infinite coordinates"),
    ("SchNet-pos-2-columns", lambda: SCHNET(Z, POS[:, :2]), ValueError,
     r"pos must have shape \[N, 3\] = \[4, 3\], got \(4, 2\)"),
    ("SchNet-edge_index-out-of-range",
     lambda: SCHNET(Z, POS, edge_index=torch.tensor([[0, 9], [1, 0]])), ValueError,
     r"edge_index refers to atoms outside 0..3 \(got indices from 0 to 9\)"),
    ("SchNet-edge_index-negative",
     lambda: SCHNET(Z, POS, edge_index=torch.tensor([[0, -1], [1, 0]])), ValueError,
     r"edge_index refers to atoms outside 0..3"),
    ("SchNet-edge_index-float",
     lambda: SCHNET(Z, POS, edge_index=EDGES.float()), TypeError,
     r"edge_index must be an integer tensor, got dtype torch.float32"),
    ("SchNet-edge_index-shape",
     lambda: SCHNET(Z, POS, edge_index=EDGES[0]), ValueError,
     r"edge_index must have shape \[2, E\], got \(4,\)"),
    ("SchNet-batch-gap", lambda: SCHNET(Z, POS, batch=torch.tensor([0, 0, 2, 2])),
     ValueError, (r"batch skips molecule index\(es\) \[1\]: expected every index "
                 r"0..2 to own at least one atom")),
    ("SchNet-batch-negative", lambda: SCHNET(Z, POS, batch=torch.tensor([0, 0, -1, 1])),
     ValueError, r"batch must hold non-negative molecule indices, got -1"),
    ("SchNet-batch-length", lambda: SCHNET(Z, POS, batch=torch.tensor([0, 0, 1])),
     ValueError, r"batch must be a 1-D tensor with one entry per atom \(4\)"),
    ("SchNet-batch-float", lambda: SCHNET(Z, POS, batch=torch.zeros(4)), TypeError,
     r"batch must be an integer tensor, got dtype torch.float32"),
    ("SchNet-edge_mask-without-edge_index",
     lambda: SCHNET(Z, POS, edge_mask=torch.ones(4)), ValueError,
     r"edge_mask needs the edge_index it refers to"),
    ("SchNet-zero-cutoff", lambda: SchNetRegressor(cutoff=0.0), ValueError,
     r"cutoff must be positive"),
    ("SchNet-zero-std", lambda: SCHNET.set_target_stats(0.0, 0.0), ValueError,
     r"the target std must be positive, got 0.0"),
    ("radius_graph-nan-pos", lambda: radius_graph(torch.full((3, 3), NAN), 1.0),
     ValueError, r"pos contains NaN or infinite coordinates"),
    ("radius_graph-1d-pos", lambda: radius_graph(torch.zeros(3), 1.0), ValueError,
     r"pos must have shape \[num_atoms, dim\] \(2-D\), got shape \(3,\)"),
    ("radius_graph-integer-pos", lambda: radius_graph(torch.zeros(3, 3).long(), 1.0),
     TypeError, r"pos must be a floating-point tensor, got dtype torch.int64"),
    ("radius_graph-negative-r", lambda: radius_graph(POS, -1.0), ValueError,
     r"the radius r must be a non-negative number, got -1.0"),
    ("edge_lengths-out-of-range",
     lambda: edge_lengths(POS, torch.tensor([[0], [7]])), ValueError,
     r"edge_index refers to atoms outside 0..3"),
    ("edm_split-negative-rows", lambda: edm_split(-1), ValueError,
     r"num_rows must be non-negative, got -1"),
    ("one_hot_types-unknown-element",
     lambda: one_hot_types(torch.tensor([[6, 16]]), torch.ones(1, 2, 1)), ValueError,
     r"atomic numbers \[16\] are not among the types \(1, 6, 7, 8, 9\)"),
    ("bond_order_matrix-unknown-element",
     lambda: bond_order_matrix(torch.tensor([6, 99]), torch.zeros(2, 3)), ValueError,
     r"unknown element\(s\) with atomic number \[99\]"),
    ("bond_order_matrix-float-z",
     lambda: bond_order_matrix(torch.tensor([6.0, 1.0]), torch.zeros(2, 3)), TypeError,
     r"z must hold integer atomic numbers, got dtype torch.float32"),
]

# --- explain: RISE, baselines, spatial dependency
CASES += [
    ("RISE-batch-gap",
     lambda: explain(SCHNET, Z, POS, batch=torch.tensor([0, 0, 2, 2]), steps=1),
     ValueError, r"batch skips molecule index\(es\) \[1\]"),
    ("RISE-edge_index-out-of-range",
     lambda: explain(SCHNET, Z, POS, steps=1, edge_index=torch.tensor([[0, 9], [1, 0]])),
     ValueError, r"edge_index refers to atoms outside 0..3"),
    ("RISE-Z-100", lambda: explain(SCHNET, torch.tensor([100, 1, 1, 8]), POS, steps=1),
     ValueError, r"z holds unknown element\(s\) with atomic number \[100\]"),
    ("RISE-budget-0", lambda: explain(SCHNET, Z, POS, budget=0.0), ValueError,
     r"budget \(mean radius / cutoff\) must be in \(0, 1\], got 0.0"),
    ("RISE-budget-above-1", lambda: explain(SCHNET, Z, POS, budget=1.5), ValueError,
     r"budget .* must be in \(0, 1\], got 1.5"),
    ("RISE-negative-lr", lambda: explain(SCHNET, Z, POS, lr=-1.0), ValueError,
     r"lr must be positive and finite, got -1.0"),
    ("RISE-float-z", lambda: explain(SCHNET, Z.float(), POS), TypeError,
     r"z must be a 1-D integer tensor"),
    ("RISE-empty-molecule", lambda: explain(SCHNET, Z[:0], POS[:0]), ValueError,
     r"cannot explain an empty molecule \(no atoms\)"),
    ("RISE-model-without-cutoff", lambda: explain(nn.Linear(3, 1), Z, POS), TypeError,
     r"Linear needs a positive `cutoff` attribute"),
    ("RISEExplainer-bad-mask", lambda: RISEExplainer(mask="fuzzy"), ValueError,
     r"mask must be 'hard' or 'soft', got 'fuzzy'"),
    ("keep_ratio-wrong-length",
     lambda: keep_ratio(torch.ones(3, dtype=torch.bool), EDGES), ValueError,
     r"keep must have shape \[E\] = \[4\], got \(3,\)"),
    ("topk_edges-negative-k",
     lambda: topk_edges(torch.rand(4), torch.zeros(4, dtype=torch.long),
                        torch.tensor([-1])), ValueError,
     r"k must be non-negative"),
    ("uniform_radius_edges-budget-0",
     lambda: uniform_radius_edges(torch.rand(4), 0.0, 5.0), ValueError,
     r"budget must be in \(0, 1\], got 0.0"),
    ("spatial_dependency-nan-weight",
     lambda: spatial_dependency(_nan_conv(), torch.randn(2, 8, 8), (2, 2)), ValueError,
     (r"the model's output at probe \(2, 2\) \(channel 0\) is NaN or infinite for "
     r"finite inputs: check the model's weights")),
    ("spatial_dependency-nan-input",
     lambda: spatial_dependency(nn.Identity(), torch.full((2, 8, 8), NAN), (2, 2)),
     ValueError, r"inputs contain NaN or infinite values"),
    ("spatial_dependency-empty-batch",
     lambda: spatial_dependency(nn.Identity(), torch.zeros(0, 8, 8), (2, 2)),
     ValueError, r"inputs is an empty batch \(B = 0\)"),
    ("spatial_dependency-probe-outside",
     lambda: spatial_dependency(nn.Identity(), torch.randn(2, 8, 8), (9, 2)),
     ValueError, r"probe \(9, 2\) is outside the output grid of size 8x8"),
    ("spatial_dependency-bad-normalize",
     lambda: spatial_dependency(nn.Identity(), torch.randn(2, 8, 8), (2, 2),
                                normalize="max2"), ValueError, r"normalize must be one of"),
    ("spatial_dependency-bad-channel",
     lambda: spatial_dependency(nn.Identity(), torch.randn(2, 8, 8), (2, 2), channel=1),
     ValueError, r"channel must be an integer in \[0, 1\), got 1"),
    ("spatial_dependency-integer-inputs",
     lambda: spatial_dependency(nn.Identity(), torch.zeros(2, 8, 8).long(), (2, 2)),
     TypeError, r"inputs must be a floating-point tensor, got torch.int64"),
    ("compare_maps-nan", lambda: compare_maps(torch.full((4, 4), NAN), torch.ones(4, 4)),
     ValueError, r"contains NaN or infinite values"),
    ("compare_maps-1d", lambda: compare_maps(torch.ones(4), torch.ones(4)), ValueError,
     r"must be a 2-D map \(H, W\), got shape \(4,\)"),
]

# --- diffusion
CASES += [
    ("EDM-num_types-0",
     lambda: EquivariantDiffusion(num_types=0, hidden_nf=8, n_layers=1), ValueError,
     r"EquivariantDiffusion: num_types must be a positive integer, got 0"),
    ("EDM-n_dims-0", lambda: EquivariantDiffusion(num_types=3, n_dims=0), ValueError,
     r"EquivariantDiffusion: n_dims must be a positive integer, got 0"),
    ("EDM-bad-loss_normalization",
     lambda: EquivariantDiffusion(num_types=3, loss_normalization="atoms"), ValueError,
     r"loss_normalization must be 'padded' or 'molecule', got 'atoms'"),
    ("EDM-bad-type_scale", lambda: EquivariantDiffusion(num_types=3, type_scale=0.0),
     ValueError, r"type_scale must be positive, got 0.0"),
    ("EDM-empty-batch",
     lambda: EDM(torch.zeros(0, 4, 3), torch.zeros(0, 4, 3), torch.zeros(0, 4, 1)),
     ValueError, (r"EquivariantDiffusion got an empty batch .*expected at least one "
                 r"molecule")),
    ("EDM-non-binary-mask", lambda: EDM(XD, ONEHOT, torch.full((2, 4, 1), 0.5)),
     ValueError, r"node_mask must contain only 0 and 1"),
    ("EDM-mask-shape", lambda: EDM(XD, ONEHOT, torch.ones(2, 4)), ValueError,
     r"node_mask must have shape \[B, N, 1\], got \(2, 4\)"),
    ("EDM-wrong-type-channels", lambda: EDM(XD, ONEHOT[..., :2], MASK), ValueError,
     r"onehot must have 3 type channels, got 2"),
    ("EDM-wrong-coordinates", lambda: EDM(XD[..., :2], ONEHOT, MASK), ValueError,
     r"x must have 3 coordinates, got 2"),
    ("EDM-t_max-too-large", lambda: EDM(XD, ONEHOT, MASK, t_max=11), ValueError,
     r"t_max must be an integer in \[1, T=10\], got 11"),
    ("EDM-t-count", lambda: EDM(XD, ONEHOT, MASK, t=torch.tensor([1, 2, 3])),
     ValueError, r"t must hold one step per molecule \(2\), got 3"),
    ("ks_normal-nan", lambda: ks_normal(torch.tensor([0.1, NAN, 0.3])), ValueError,
     r"ks_normal: u holds 1 NaN or infinite value\(s\); expected finite samples"),
    ("ks_normal-empty-row", lambda: ks_normal(torch.zeros(3, 0)), ValueError,
     r"ks_normal needs at least one value per row of u"),
    ("ks_normal-integer", lambda: ks_normal(torch.tensor([1, 2])), TypeError,
     r"ks_normal: u must be a floating-point tensor"),
    ("ks_two_sample-inf", lambda: ks_two_sample(torch.ones(3), torch.tensor([float("inf")])),
     ValueError, r"ks_two_sample: b holds 1 NaN or infinite value\(s\)"),
    ("ks_two_sample-leading-shapes",
     lambda: ks_two_sample(torch.ones(2, 3), torch.ones(3, 3)), ValueError,
     r"leading shapes differ"),
    ("NoiseSchedule-T-0", lambda: NoiseSchedule(T=0), ValueError,
     r"T \(number of diffusion steps\) must be a positive integer, got 0"),
    ("NoiseSchedule-unknown-kind", lambda: NoiseSchedule(T=10, kind="linear"),
     ValueError, r"unknown schedule 'linear'; expected 'polynomial_<p>' or 'cosine'"),
    ("timestep_sequence-negative", lambda: timestep_sequence(-1), ValueError,
     r"start_t must be a positive integer, got -1"),
    ("node_mask_from_counts-negative",
     lambda: node_mask_from_counts(torch.tensor([-1, 2])), ValueError,
     r"num_atoms: every molecule needs at least 2 atoms, got min -1"),
    ("node_mask_from_counts-empty",
     lambda: node_mask_from_counts(torch.tensor([], dtype=torch.long)), ValueError,
     r"num_atoms is empty"),
    ("one_hot-type-out-of-range",
     lambda: one_hot(torch.tensor([[0, 5]]), 3, torch.ones(1, 2, 1)), ValueError,
     r"atom types must lie in \[0, 3\) on real atoms"),
    ("check_node_mask-integer",
     lambda: check_node_mask(torch.ones(1, 2, 1, dtype=torch.long)), TypeError,
     r"node_mask must be a floating-point 0/1 tensor"),
    ("check_node_mask-too-few-atoms",
     lambda: check_node_mask(torch.tensor([[[1.0], [0.0]]]), min_atoms=2), ValueError,
     r"molecules \[0\] have fewer than 2 real atom\(s\)"),
    ("T_star-nan-curve", lambda: T_star(torch.tensor([1.0, NAN]), 0.1), ValueError,
     r"curve contains NaN or infinite values"),
    ("T_star-empty-curve", lambda: T_star(torch.zeros(0), 0.1), ValueError,
     r"curve is empty"),
    ("random_rotations-negative", lambda: random_rotations(-1), ValueError,
     r"random_rotations: n must be an integer >= 0, got -1"),
    ("type_frequencies-bad-num_types",
     lambda: type_frequencies(torch.tensor([0, 1]), 0), ValueError,
     r"num_types must be a positive integer, got 0"),
    ("type_frequencies-class-out-of-range",
     lambda: type_frequencies(torch.tensor([0, 5]), 3), ValueError,
     r"types holds class 5, outside 0..2"),
    ("NodeCountDistribution-empty",
     lambda: NodeCountDistribution(torch.tensor([], dtype=torch.long)), ValueError,
     r"num_atoms must be a non-empty 1-D integer tensor"),
]

# --- training, checkpoints, configuration
CASES += [
    ("fit-checkpoint_dir-is-a-file",
     lambda: _fit(checkpoint_dir=__file__), ValueError,
     r"checkpoint_dir .*test_bad_inputs.py' is a file; expected a folder"),
    ("fit-empty-val_set",
     lambda: _fit(val_set=TensorDataset(torch.zeros(0, 3), torch.zeros(0, 1))),
     ValueError, r"val_set is empty \(0 samples\)"),
    ("fit-nan-val_set",
     lambda: _fit(val_set=TensorDataset(torch.randn(4, 3), torch.full((4, 1), NAN))),
     FloatingPointError, r"non-finite validation value nan at epoch 1.*val_set"),
    ("fit-empty-train_set",
     lambda: _fit(data=TensorDataset(torch.zeros(0, 3), torch.zeros(0, 1))),
     ValueError, r"train_set is empty"),
    ("fit-zero-epochs", lambda: _fit(epochs=0), ValueError,
     r"epochs must be a positive integer, got 0"),
    ("fit-fractional-batch_size", lambda: _fit(batch_size=2.5), ValueError,
     r"batch_size must be a positive integer, got 2.5"),
    ("fit-unknown-optimizer", lambda: _fit(optimizer="lion"), ValueError,
     r"unknown optimizer 'lion'; valid: 'adam', 'adamw'"),
    ("fit-unknown-scheduler", lambda: _fit(scheduler="linear"), ValueError,
     r"unknown scheduler 'linear'"),
    ("fit-ema-decay-1", lambda: _fit(ema_decay=1.0), ValueError,
     r"ema_decay must lie in \(0, 1\), got 1.0"),
    ("fit-negative-grad_clip", lambda: _fit(grad_clip=-1.0), ValueError,
     r"grad_clip must be positive, got -1.0"),
    ("fit-both-loss-and-step", lambda: _fit(step_fn=lambda m, b: 0), ValueError,
     r"give exactly one of loss_fn .* or step_fn"),
    ("evaluate-empty-data",
     lambda: training.evaluate(nn.Linear(3, 1), TensorDataset(torch.zeros(0, 3)),
                               lambda m, b: 0.0, batch_size=2, device="cpu"),
     ValueError, r"evaluate got an empty data set \(0 samples\)"),
    ("AdaptiveGradClip-window-0", lambda: training.AdaptiveGradClip(window=0),
     ValueError, r"window must be a positive integer, got 0"),
    ("save_model-unregistered", lambda: ckpt.save_model(_Unregistered(), "/tmp/x"),
     TypeError, r"_Unregistered is not registered; decorate it with @register_model"),
    ("save_model-not-a-module", lambda: ckpt.save_model({"w": 1}, "/tmp/x"), TypeError,
     r"save_model expects an nn.Module, got dict"),
    ("register_model-not-a-module", lambda: ckpt.register_model(int), TypeError,
     r"register_model expects an nn.Module subclass"),
    ("load_model-missing", lambda: ckpt.load_model("/nonexistent/model"),
     FileNotFoundError, r"no checkpoint at /nonexistent/model.pt"),
    ("seed_everything-negative", lambda: refimpl.seed_everything(-1), ValueError,
     r"seed must be a non-negative integer, got -1"),
    ("preset-missing-scale", lambda: refimpl.preset({"smoke": 1, "book": 2}),
     ValueError, r"a preset table needs exactly the keys.*missing \['full', 'paper'\]"),
]


# ------------------------------------------------------- cases that need set-up
def test_scale_from_the_environment(monkeypatch):
    monkeypatch.setenv("REFIMPL_SCALE", "huge")
    with pytest.raises(ValueError, match=r"REFIMPL_SCALE='huge' is not a scale; valid "
                                         r"values are smoke, book, full, paper"):
        refimpl.scale()


def test_refimpl_cache_is_a_file(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("")
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path / "f"))
    with pytest.raises(ValueError, match=r"REFIMPL_CACHE=.* is a file; expected a "
                                         r"folder"):
        refimpl.cache_dir("pde")


def test_corrupt_checkpoint_json_is_a_clear_error(tmp_path):
    model = SchNetRegressor(hidden_channels=8, num_filters=8, num_interactions=1,
                            num_gaussians=5)
    ckpt.save_model(model, tmp_path / "m")
    (tmp_path / "m.json").write_text("{")
    with pytest.raises(ValueError, match=r"m.json is not a readable JSON record"):
        ckpt.load_model(tmp_path / "m")
    (tmp_path / "m.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match=r"holds list, expected a JSON object"):
        ckpt.load_model(tmp_path / "m")


def test_truncated_checkpoint_weights_are_a_clear_error(tmp_path):
    model = SchNetRegressor(hidden_channels=8, num_filters=8, num_interactions=1,
                            num_gaussians=5)
    ckpt.save_model(model, tmp_path / "m")
    record = json.loads((tmp_path / "m.json").read_text())
    del record["weights_sha256"]  # as written by an older version
    (tmp_path / "m.json").write_text(json.dumps(record))
    (tmp_path / "m.pt").write_bytes((tmp_path / "m.pt").read_bytes()[:50])
    with pytest.raises(ValueError, match=r"m.pt cannot be read .*truncated or corrupt"):
        ckpt.load_model(tmp_path / "m")


# ------------------------------------------------------------ more of the same kind
CASES += [
    ("EDM-float64-input", lambda: EDM(XD.double(), ONEHOT.double(), MASK.double()),
     TypeError, (r"x has dtype torch.float64 but the model's parameters are "
                r"torch.float32")),
    ("EDM-nan-coordinates", lambda: EDM(torch.full_like(XD, NAN), ONEHOT, MASK),
     ValueError, r"x contains NaN or infinite coordinates"),
    ("EDM-bad-reduction", lambda: EDM(XD, ONEHOT, MASK, reduction="sum"), ValueError,
     r"reduction must be 'mean' or 'none', got 'sum'"),
    ("crop_collate-empty", lambda: crop_collate([]), ValueError,
     r"crop_collate got an empty list of items"),
    ("radius_graph-float16-on-cpu", lambda: radius_graph(POS.half(), 2.0), TypeError,
     r"radius_graph: pos of dtype torch.float16 is not supported on the CPU"),
    ("RISE-float64-pos", lambda: explain(SCHNET, Z, POS.double(), steps=1), TypeError,
     r"pos has dtype torch.float64 but the model's parameters are torch.float32"),
    ("fidelity-keep-not-boolean",
     lambda: fidelity(SCHNET, Z, POS, EDGES, torch.ones(4)), TypeError,
     r"keep must be a boolean edge mask, got dtype torch.float32"),
    ("fidelity-edge_index-out-of-range",
     lambda: fidelity(SCHNET, Z, POS, torch.tensor([[0, 9], [1, 0]]),
                      torch.ones(2, dtype=torch.bool)), ValueError,
     r"edge_index refers to atoms outside 0..3"),
    ("subgraph_prediction-batch-gap",
     lambda: subgraph_prediction(SCHNET, Z, POS, EDGES, torch.ones(4, dtype=torch.bool),
                                 batch=torch.tensor([0, 0, 2, 2])), ValueError,
     r"batch skips molecule index\(es\) \[1\]"),
    ("NoiseSchedule-fractional-T", lambda: NoiseSchedule(T=10.5), ValueError,
     r"T \(number of diffusion steps\) must be a positive integer, got 10.5"),
    ("NoiseSchedule-precision", lambda: NoiseSchedule(T=10, precision=2.0), ValueError,
     r"precision s must lie in \(0, 0.5\), got 2.0"),
    ("sample_shortcut-t_star-above-T",
     lambda: sample_shortcut(EDM, torch.tensor([3]), t_star=50, v_hat=1.0), ValueError,
     r"t_star must be an integer in \[1, T=10\], got 50"),
    ("sample_shortcut-negative-v_hat",
     lambda: sample_shortcut(EDM, torch.tensor([3]), t_star=5, v_hat=-1.0), ValueError,
     r"v_hat must be positive and finite, got -1.0"),
    ("EDM-sample-one-atom", lambda: EDM.sample(torch.tensor([1])), ValueError,
     r"num_atoms: every molecule needs at least 2 atoms, got min 1"),
    ("data_variance-unknown-estimator",
     lambda: data_variance(XD, MASK, estimator="foo"), ValueError,
     r"unknown estimator 'foo'"),
    ("NormalizedOperator-nan-data",
     lambda: NormalizedOperator.fit(FNO_, torch.full((4, 1, 8, 8), NAN),
                                    torch.randn(4, 1, 8, 8)), ValueError,
     r"input_mean must be finite"),
]


CASES += [
    ("wave.evaluate-nan-coefficients",
     lambda: wave.evaluate(torch.full((1, 4, 4), NAN), 1.0, resolution=8), ValueError,
     r"B0 contains NaN or infinite values"),
    ("wave.evaluate-coefficient-shape",
     lambda: wave.evaluate(torch.zeros(1, 5), 1.0, resolution=8), ValueError,
     r"B0 must be a tensor of shape \(n, K, K\)"),
    ("sine.synthesize-mismatched-K",
     lambda: sine.synthesize(torch.zeros(2, 3, 3), torch.zeros(4, 8)), ValueError,
     r"B must have shape \(..., K, K\) and S shape \(s, K\) with the same K"),
    ("darcy.solve-negative-coefficient", lambda: darcy.solve(-torch.ones(1, 8, 8)),
     ValueError, r"a must be positive everywhere \(an elliptic coefficient\)"),
    ("darcy.solve-nan-coefficient",
     lambda: darcy.solve(torch.full((1, 8, 8), NAN)), ValueError,
     r"a contains NaN or infinite values"),
    ("burgers.solve-scalar-u0", lambda: burgers.solve(torch.tensor(1.0)), ValueError,
     r"u0 must have shape \(s,\) or \(B, s\), got \(\)"),
    ("grf.basis-unknown-kind", lambda: grf.basis(torch.zeros(4), 3, kind="foo"),
     ValueError, r"kind must be one of \('cosine', 'sine'\), got 'foo'"),
    ("relative_l2-unknown-reduction",
     lambda: relative_l2(torch.ones(2, 4), torch.ones(2, 4), reduction="max"),
     ValueError, r"reduction must be one of .*got 'max'"),
    ("collate_sparse-empty", lambda: collate_sparse([]), ValueError,
     r"collate got an empty list of molecules"),
    ("collate_dense-empty", lambda: collate_dense([]), ValueError,
     r"collate got an empty list of molecules"),
    ("sample_gaussian_with_mask-size",
     lambda: sample_gaussian_with_mask((2, 3), torch.ones(2, 3, 1)), ValueError,
     r"size must be \[B, N, D\] with \[B, N\] = \[2, 3\]"),
    ("remove_mean_with_mask-mask-shape",
     lambda: remove_mean_with_mask(torch.zeros(2, 3, 3), torch.ones(2, 3)), ValueError,
     r"node_mask must be a tensor of shape \[B, N, 1\], got \(2, 3\)"),
    ("planted_target-batch-gap",
     lambda: planted_target(torch.tensor([6, 6, 6, 6]), POS,
                            batch=torch.tensor([0, 0, 2, 2])), ValueError,
     r"batch skips molecule index\(es\) \[1\]"),
    ("planted_target-float-z",
     lambda: planted_target(torch.tensor([6.0, 6.0]), POS[:2]), TypeError,
     r"z must be a 1-D integer tensor of atomic numbers, got torch.float32"),
    ("PlantedPairModel-negative-cutoff", lambda: PlantedPairModel(cutoff=-1.0),
     ValueError, r"need cutoff > r_b > 0, got cutoff=-1.0"),
    ("edge_precision_recall-lengths",
     lambda: edge_precision_recall(torch.ones(3, dtype=torch.bool),
                                   torch.ones(4, dtype=torch.bool),
                                   torch.zeros(4, dtype=torch.long)), ValueError,
     r"keep, truth and edge_batch must have the same shape \[E\]"),
    ("ksg_mutual_information-shapes",
     lambda: ksg_mutual_information(torch.randn(10, 2), torch.randn(9, 2)), ValueError,
     r"x and y must have the same shape, got \(10, 2\) and \(9, 2\)"),
    ("load_qm9-limit-0", lambda: load_qm9(limit=0, progress=False), ValueError,
     r"limit must be a positive integer or None, got 0"),
    ("load_qm9-unknown-source", lambda: load_qm9(source="web"), ValueError,
     r"source must be 'qm9pack' or 'pyg', got 'web'"),
]


@pytest.mark.parametrize("name, call, exc, match", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(name, call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_there_are_at_least_one_hundred_distinct_cases():
    names = [c[0] for c in CASES]
    assert len(set(names)) == len(names) >= 100


def test_documented_dtype_conversions_still_run():
    """The dtype check refuses only what a model cannot run: FNO follows its
    input's dtype, T1 and DualSpaceMultiScale run half-precision inputs in float32."""
    assert FNO_(X.double()).dtype == torch.float64
    fno64 = _seeded(lambda: FNO(1, 1, modes=2, width=4, n_layers=1,
                                projection_channels=4)).double()
    assert fno64(X).dtype == torch.float32
    for model in (T1_, DSMS):
        for dtype in (torch.float16, torch.bfloat16):
            assert model(X.to(dtype)).dtype == torch.float32
    with pytest.raises(TypeError, match=r"T1 has torch.float64 parameters"):
        _seeded(lambda: T1(1, 1, modes=2, width=4, n_layers=1)).double()(X.half())
