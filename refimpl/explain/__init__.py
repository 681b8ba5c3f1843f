"""Explanations of trained models.

* Neural operators: gradient-based spatial dependencies (effective receptive
  fields), compared with analytic Green's functions
  (:mod:`~refimpl.explain.spatial_dependency`, :mod:`~refimpl.explain.erf_study`).
* 3-D molecular GNNs: RISE radius-of-influence subgraphs
  (:mod:`~refimpl.explain.rise`), its baselines, regression fidelities and a
  planted-ground-truth benchmark.
"""

from importlib import import_module
from typing import Any

from .spatial_dependency import compare_maps, projected_scores, spatial_dependency

# The molecular explainers need torch_geometric (the ``molecules`` extra). Without
# it they are resolved on first use (and raise an ImportError naming the extra), so
# that the neural-operator tools above (chapter 2) work without it.
_LAZY = {
    "gnnexplainer_edge_scores": "baselines", "random_edges": "baselines",
    "shortest_edges": "baselines", "topk_edges": "baselines",
    "uniform_radius_edges": "baselines",
    "Fidelity": "fidelity", "fidelity": "fidelity", "keep_ratio": "fidelity",
    "subgraph_prediction": "fidelity",
    "PlantedPairModel": "planted", "edge_precision_recall": "planted",
    "planted_edges": "planted", "planted_target": "planted",
    "RISEExplainer": "rise", "RISEResult": "rise", "explain": "rise",
    "rise_mask_logits": "rise", "rise_radii": "rise",
}
_PYG_MODULES = ("baselines", "fidelity", "planted", "rise")

__all__ = ["spatial_dependency", "compare_maps", "projected_scores",
           "explain", "RISEExplainer", "RISEResult", "rise_radii",
           "rise_mask_logits", "fidelity", "Fidelity", "keep_ratio",
           "subgraph_prediction", "topk_edges", "uniform_radius_edges",
           "shortest_edges", "random_edges", "gnnexplainer_edge_scores",
           "PlantedPairModel", "planted_target", "planted_edges",
           "edge_precision_recall"]


def _import_pyg_module(name: str) -> Any:
    """``refimpl.explain.<name>``, or an ImportError naming the missing extra."""
    try:
        return import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] == "torch_geometric":
            raise ImportError(
                f"refimpl.explain.{name} needs torch_geometric, which is not installed; "
                "install the molecules extra: pip install 'refimpl[molecules]'"
            ) from err
        raise


try:  # with torch_geometric installed, import eagerly: the function ``fidelity``
    # must win over the submodule of the same name however the submodule is reached
    from .baselines import (gnnexplainer_edge_scores, random_edges, shortest_edges,
                            topk_edges, uniform_radius_edges)
    from .fidelity import Fidelity, fidelity, keep_ratio, subgraph_prediction
    from .planted import (PlantedPairModel, edge_precision_recall, planted_edges,
                          planted_target)
    from .rise import (RISEExplainer, RISEResult, explain, rise_mask_logits,
                       rise_radii)
except ModuleNotFoundError as _err:  # without it: lazily, with a clear error on use
    if not (_err.name and _err.name.split(".")[0] == "torch_geometric"):
        raise


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(_import_pyg_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _PYG_MODULES:
        return _import_pyg_module(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
