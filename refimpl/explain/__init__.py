"""Explanations of trained models.

* Neural operators: gradient-based spatial dependencies (effective receptive
  fields), compared with analytic Green's functions
  (:mod:`~refimpl.explain.spatial_dependency`, :mod:`~refimpl.explain.erf_study`).
* 3-D molecular GNNs: RISE radius-of-influence subgraphs
  (:mod:`~refimpl.explain.rise`), its baselines, regression fidelities and a
  planted-ground-truth benchmark.
"""

from .baselines import (gnnexplainer_edge_scores, random_edges, shortest_edges,
                        topk_edges, uniform_radius_edges)
from .fidelity import Fidelity, fidelity, keep_ratio, subgraph_prediction
from .planted import (PlantedPairModel, edge_precision_recall, planted_edges,
                      planted_target)
from .rise import RISEExplainer, RISEResult, explain, rise_mask_logits, rise_radii
from .spatial_dependency import compare_maps, spatial_dependency

__all__ = ["spatial_dependency", "compare_maps",
           "explain", "RISEExplainer", "RISEResult", "rise_radii",
           "rise_mask_logits", "fidelity", "Fidelity", "keep_ratio",
           "subgraph_prediction", "topk_edges", "uniform_radius_edges",
           "shortest_edges", "random_edges", "gnnexplainer_edge_scores",
           "PlantedPairModel", "planted_target", "planted_edges",
           "edge_precision_recall"]
