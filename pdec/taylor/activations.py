"""Activation functions with their derivatives up to order four.

A Taylor-mode pass needs, at every hidden unit, the derivatives
``σ(h), σ'(h), …, σ^(k)(h)`` of the activation at the value stream ``h``
(Faà di Bruno; Constantine & Savits 1996). Each activation here is one
function

    fn(h: Tensor, order: int) -> list[Tensor]   # [σ, σ', …, σ^(order)]

written in terms of the value where that is cheaper than differentiating
again (``tanh``: ``d = 1 - s²``; the logistic family: ``d = p(1 - p)``).
Custom activations produced by the code generator from an expression in
``z`` follow exactly this protocol. ``order`` may be 0…4; the fused
second-order runtime (``fused.py``) asks for order 3, one more than its plans
need, for its hand-written backward pass.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

ActivationFn = Callable[[Tensor, int], list[Tensor]]

MAX_ACTIVATION_ORDER = 4
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _check_activation_order(order: int) -> None:
    if not 0 <= order <= MAX_ACTIVATION_ORDER:
        raise ValueError(f"activation derivatives exist up to order {MAX_ACTIVATION_ORDER}, got {order}")


def tanh_jet(h: Tensor, order: int) -> list[Tensor]:
    """tanh with s = tanh h, d = 1 - s²: σ' = d, σ'' = -2sd, σ''' = -2d² + 4s²d,
    σ'''' = 16sd² - 8s³d."""
    _check_activation_order(order)
    s = torch.tanh(h)
    out = [s]
    if order == 0:
        return out
    s2 = s * s
    d = 1 - s2
    out.append(d)
    if order >= 2:
        sd = s * d
        out.append(sd * -2)
    if order >= 3:
        out.append(torch.sub(s2 * 4, d, alpha=2) * d)
    if order >= 4:
        out.append(sd * torch.sub(d * 16, s2, alpha=8))
    return out


def _trig_jet(h: Tensor, order: int, shift: int) -> list[Tensor]:
    """Derivatives 0…order of sin(h + shift·π/2): the cycle sin, cos, −sin, −cos read
    from position ``shift``; only the members the order reaches are computed."""
    _check_activation_order(order)
    needed = {(shift + k) % 4 for k in range(order + 1)}
    s = torch.sin(h) if needed & {0, 2} else None
    c = torch.cos(h) if needed & {1, 3} else None
    cycle = [s, c, -s if 2 in needed else None, -c if 3 in needed else None]
    return [cycle[(shift + k) % 4] for k in range(order + 1)]


def sin_jet(h: Tensor, order: int) -> list[Tensor]:
    """sin: the derivatives cycle sin, cos, -sin, -cos."""
    return _trig_jet(h, order, 0)


def cos_jet(h: Tensor, order: int) -> list[Tensor]:
    """cos = sin(h + π/2): the derivatives cycle cos, -sin, -cos, sin."""
    return _trig_jet(h, order, 1)


def _logistic_derivatives(p: Tensor, order: int) -> list[Tensor]:
    """Derivatives 1…order of the logistic p = 1/(1+e^-h), via d = p(1-p), u = 1-2p:
    p' = d, p'' = du, p''' = d(1-6d), p'''' = du(1-12d)."""
    if order < 1:
        return []
    d = p * (1 - p)
    out = [d]
    if order >= 2:
        du = d * (1 - 2 * p)
        out.append(du)
    if order >= 3:
        out.append(d * (1 - 6 * d))
    if order >= 4:
        out.append(du * (1 - 12 * d))
    return out


def sigmoid_jet(h: Tensor, order: int) -> list[Tensor]:
    """The logistic function p: p' = p(1-p), p'' = p(1-p)(1-2p), p''' = p(1-p)(1-6p+6p²)."""
    _check_activation_order(order)
    p = torch.sigmoid(h)
    return [p, *_logistic_derivatives(p, order)]


def softplus_jet(h: Tensor, order: int) -> list[Tensor]:
    """log(1 + e^h): its derivatives are those of the logistic p shifted by one."""
    _check_activation_order(order)
    value = torch.nn.functional.softplus(h)
    if order == 0:
        return [value]
    p = torch.sigmoid(h)
    return [value, p, *_logistic_derivatives(p, order - 1)]


def gelu_jet(h: Tensor, order: int) -> list[Tensor]:
    """GELU in the exact erf form, hΦ(h), with φ the normal density (φ' = -hφ):
    σ' = Φ + hφ, σ'' = φ(2 - h²), σ''' = φ(h³ - 4h), σ'''' = φ(-h⁴ + 7h² - 4)."""
    _check_activation_order(order)
    cdf = 0.5 * (1 + torch.erf(h * _INV_SQRT_2))
    out = [h * cdf]
    if order == 0:
        return out
    pdf = torch.exp(-0.5 * h * h) * _INV_SQRT_2PI
    out.append(cdf + h * pdf)
    if order >= 2:
        h2 = h * h
        out.append(pdf * (2 - h2))
    if order >= 3:
        out.append(pdf * h * (h2 - 4))
    if order >= 4:
        out.append(pdf * (h2 * (7 - h2) - 4))
    return out


def swish_jet(h: Tensor, order: int) -> list[Tensor]:
    """swish / SiLU, h·p(h) with the logistic p: (hp)^(n) = n p^(n-1) + h p^(n)."""
    _check_activation_order(order)
    p = torch.sigmoid(h)
    dp = [p, *_logistic_derivatives(p, order)]
    return [h * p] + [n * dp[n - 1] + h * dp[n] for n in range(1, order + 1)]


ACTIVATIONS: dict[str, ActivationFn] = {
    "tanh": tanh_jet,
    "sin": sin_jet,
    "cos": cos_jet,
    "softplus": softplus_jet,
    "sigmoid": sigmoid_jet,
    "gelu": gelu_jet,
    "swish": swish_jet,
    "silu": swish_jet,
}


def resolve_activation(activation: str | ActivationFn) -> ActivationFn:
    """The derivative function for a registry name, or a custom callable as is."""
    if callable(activation):
        return activation
    try:
        return ACTIVATIONS[activation]
    except KeyError:
        names = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(
            f"Unknown activation `{activation}`. Supported: {names}, "
            "or a callable fn(h, order) -> [σ, σ', …]."
        ) from None
