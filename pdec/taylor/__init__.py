"""The Taylor-mode runtime: every derivative a spec needs in one forward pass.

``operators`` names what is needed, ``streams`` plans which Taylor
coefficient streams carry it (``rules`` derives how each stream passes an
activation), ``mlp`` propagates them through an MLP (``fused`` is its fast
runtime for plans of order ≤ 2, ``compiled`` what both runtimes share),
``activations`` supplies activation derivatives, ``record`` records the
per-layer streams and gradients that curvature (ENGD, KFAC) and the NTK
read. Imports only torch, numpy and the standard library, so emitted
standalone scripts can inline it.
"""

import importlib

from .operators import Laplacian, Operator, Partial, canonical_name
from .streams import StreamPlan, plan_streams

# The torch-backed parts load on first use: the front end (`pdec check`) needs
# only the operator vocabulary and the stream planner, not 3 s of torch import.
_LAZY = {
    "ACTIVATIONS": "activations",
    "ActivationFn": "activations",
    "LayerRecord": "record",
    "Recording": "record",
    "record_passes": "record",
    "TaylorLinear": "mlp",
    "TaylorMLP": "mlp",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value

__all__ = [
    "ACTIVATIONS",
    "ActivationFn",
    "LayerRecord",
    "Laplacian",
    "Operator",
    "Partial",
    "Recording",
    "StreamPlan",
    "TaylorLinear",
    "TaylorMLP",
    "canonical_name",
    "plan_streams",
    "record_passes",
]
