"""The Taylor-mode runtime: every derivative a spec needs in one forward pass.

``operators`` names what is needed, ``streams`` plans which Taylor
coefficient streams carry it, ``mlp`` propagates them through an MLP,
``activations`` supplies activation derivatives, ``kfac_record`` exposes the
per-layer quantities KFAC needs. Imports only torch, numpy and the standard
library, so emitted standalone scripts can inline it.
"""

import importlib

from .operators import Laplacian, Operator, Partial, canonical_name
from .streams import StreamPlan, plan_streams

# The torch-backed parts load on first use: the front end (`pdec check`) needs
# only the operator vocabulary and the stream planner, not 3 s of torch import.
_LAZY = {
    "ACTIVATIONS": "activations",
    "ActivationFn": "activations",
    "LayerRecord": "kfac_record",
    "Recording": "kfac_record",
    "record": "kfac_record",
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
    "record",
]
