"""The Taylor-mode runtime: every derivative a spec needs in one forward pass.

``operators`` names what is needed, ``streams`` plans which Taylor
coefficient streams carry it, ``mlp`` propagates them through an MLP,
``activations`` supplies activation derivatives, ``kfac_record`` exposes the
per-layer quantities KFAC needs. Imports only torch, numpy and the standard
library, so emitted standalone scripts can inline it.
"""

from .activations import ACTIVATIONS, ActivationFn
from .kfac_record import LayerRecord, Recording, record
from .mlp import TaylorLinear, TaylorMLP
from .operators import Laplacian, Operator, Partial, canonical_name
from .streams import StreamPlan, plan_streams

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
