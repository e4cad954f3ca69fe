"""Steps in parameter space for the Gauss–Newton optimizers: directions as
per-layer ``[W | b]`` matrices plus the PDE-parameter vector, trial steps
``θ + η v`` that are undone, and the grid line search on the loss.

The grid ``η ∈ {2^0, 2^-1, …, 2^-30}`` is the one of ENGD (Müller &
Zeinhofer 2023): a Gauss–Newton direction has the natural step 1 when the
linear model is right, and halving covers the range down to the rounding
level of the loss in 31 evaluations at most.

The quasi-Newton optimizers (``quasi_newton.py``) use instead a strong Wolfe
line search (`wolfe_line_search`), whose curvature condition keeps their
inverse-Hessian update positive definite.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pdec.runtime.distributed import current_world

GN_GRID = tuple(0.5**k for k in range(31))
"""Line-search step sizes 2^0 … 2^-30 (Müller & Zeinhofer 2023)."""


def gn_flatten(vs: list[Tensor], vp: Tensor) -> Tensor:
    return torch.cat([v.reshape(-1) for v in vs] + [vp.reshape(-1)])


def gn_unflatten(x: Tensor, shapes: list[tuple[int, int]], n_pde: int) -> tuple[list[Tensor], Tensor]:
    vs, start = [], 0
    for o, i in shapes:
        vs.append(x[start : start + o * i].reshape(o, i))
        start += o * i
    return vs, x[start : start + n_pde]


def gn_dot(xs: list[Tensor], xp: Tensor, ys: list[Tensor], yp: Tensor) -> Tensor:
    """``xᵀy`` of two directions given per layer and for the PDE parameters."""
    return sum((x * y).sum() for x, y in zip(xs, ys)) + (xp * yp).sum()


def gn_axpy(a: float, xs, xp, ys, yp):
    """``a x + y``."""
    return [a * x + y for x, y in zip(xs, ys)], a * xp + yp


def gn_parameters(problem) -> list[Tensor]:
    """The trained tensors in the flat order: per layer W, b; then PDE parameters."""
    out = []
    for layer in problem.model.linear_layers():
        out += [layer.weight, layer.bias]
    return out + list(problem.parameters.values())


def gn_save(problem) -> list[Tensor]:
    """Copies of the trained tensors, for `gn_restore` after trial steps."""
    return [p.detach().clone() for p in gn_parameters(problem)]


@torch.no_grad()
def gn_restore(problem, saved: list[Tensor]) -> None:
    for p, s in zip(gn_parameters(problem), saved):
        p.copy_(s)


@torch.no_grad()
def gn_apply(problem, vs: list[Tensor], vp: Tensor, scale: float = 1.0) -> None:
    """``θ += scale · v`` (v given per layer ``[W | b]`` and for the PDE parameters)."""
    for layer, V in zip(problem.model.linear_layers(), vs):
        layer.weight.add_(V[:, :-1].to(layer.weight.dtype), alpha=scale)
        layer.bias.add_(V[:, -1].to(layer.bias.dtype), alpha=scale)
    start = 0
    for p in problem.parameters.values():
        k = p.numel()
        p.add_(vp[start : start + k].reshape(p.shape).to(p.dtype), alpha=scale)
        start += k


@torch.no_grad()
def gn_loss(residual_fn, weights: dict[str, float]) -> tuple[Tensor, dict[str, Tensor]]:
    """The loss per term and its total, summed over the ranks of a distributed run."""
    losses = current_world().sum_dict({k: weights[k] * r.square().mean() for k, r in residual_fn().items()})
    return sum(losses.values()), losses


@torch.no_grad()
def gn_line_search(
    problem, residual_fn, weights, vs, vp, base: tuple[list[Tensor], Tensor] | None = None, current: Tensor | None = None
):
    """Try ``θ + base + η v`` for η = 2^0, 2^-1, … 2^-30; keep the best (even
    when it does not decrease the loss: the grid's smallest step is tiny).
    Given the ``current`` loss, the search stops at the first grid point after
    a decrease that is worse than its predecessor (the first local minimum
    along the grid: the loss along a Gauss–Newton direction is unimodal in
    practice, and near convergence this costs 2 evaluations instead of 31).
    Returns ``(η, total, losses)`` with the parameters left at the best point."""
    saved = gn_save(problem)
    best = None
    for eta in GN_GRID:
        if current is not None and best is not None and best[1] < current and best[0] > 2 * eta:
            break
        gn_restore(problem, saved)
        if base is not None:
            gn_apply(problem, base[0], base[1])
        gn_apply(problem, vs, vp, eta)
        total, losses = gn_loss(residual_fn, weights)
        if torch.isfinite(total) and (best is None or total < best[1]):
            best = (eta, total, losses)
    gn_restore(problem, saved)
    eta = best[0] if best is not None else GN_GRID[-1]
    if base is not None:
        gn_apply(problem, base[0], base[1])
    gn_apply(problem, vs, vp, eta)
    if best is None:  # every step diverged: report it, the trainer recovers
        best = (eta, *gn_loss(residual_fn, weights))
    return best


# ---------------------------------------------------------------------------
# strong Wolfe line search (quasi-Newton optimizers)

WOLFE_ARMIJO = 1e-4
"""c₁ of the sufficient-decrease condition (Nocedal & Wright 2006, §3.1)."""
WOLFE_CURVATURE = 0.9
"""c₂ of the curvature condition: the usual value for quasi-Newton directions, whose natural step is 1."""
WOLFE_MAX_EVALS = 25


def _cubic_minimizer(a: tuple, b: tuple, low: float, high: float) -> float:
    """The minimizer of the cubic through ``(t, f, f')`` at ``a`` and ``b``, clamped
    to ``[low, high]`` (Nocedal & Wright 2006, eq. 3.59); the midpoint when the
    cubic has no minimizer or a value is not finite. On a quadratic it is the
    exact minimizer along the line."""
    (t1, f1, d1), (t2, f2, d2) = a[:3], b[:3]
    if not all(math.isfinite(v) for v in (t1, f1, d1, t2, f2, d2)) or t1 == t2:
        return 0.5 * (low + high)
    e1 = d1 + d2 - 3 * (f1 - f2) / (t1 - t2)
    square = e1 * e1 - d1 * d2
    if square < 0:
        return 0.5 * (low + high)
    e2 = math.copysign(math.sqrt(square), t2 - t1)
    denominator = d2 - d1 + 2 * e2
    if denominator == 0:
        return 0.5 * (low + high)
    t = t2 - (t2 - t1) * (d2 + e2 - e1) / denominator
    return min(max(t, low), high) if math.isfinite(t) else 0.5 * (low + high)


def wolfe_line_search(phi, f0: float, d0: float, t: float, max_evals: int = WOLFE_MAX_EVALS,
                      c1: float = WOLFE_ARMIJO, c2: float = WOLFE_CURVATURE):  # fmt: skip
    """A step ``t`` along a descent direction that satisfies the strong Wolfe conditions
    ``f(t) ≤ f(0) + c₁ t f'(0)`` and ``|f'(t)| ≤ c₂ |f'(0)|`` (Nocedal & Wright 2006,
    Algorithms 3.5 and 3.6: bracketing by extrapolation, then zoom by safeguarded
    cubic interpolation).

    Why strong Wolfe: the curvature condition gives ``yᵀs ≥ (1 − c₂)|f'(0)| t > 0``,
    which keeps a BFGS-type update positive definite. A non-finite ``f(t)`` counts
    as too long a step (the search shrinks instead of failing). ``phi(t)`` returns
    ``(f, f', data)``; the search returns ``(t, f, f', data, evaluations)`` of the
    accepted point, or after ``max_evals`` evaluations of the lowest one seen, which
    is ``(0, f0, d0, None, ·)`` when no evaluated point is lower than ``f0``.
    """
    start = (0.0, f0, d0, None)
    best, previous, evals = start, start, 0

    def evaluate(t):
        nonlocal best, evals
        point = (t, *phi(t))
        evals += 1
        if math.isfinite(point[1]) and point[1] < best[1]:
            best = point
        return point

    def armijo_fails(point, lowest) -> bool:
        t, f = point[:2]
        return not math.isfinite(f) or f > f0 + c1 * t * d0 or f >= lowest[1]

    def zoom(lo, hi):
        while evals < max_evals:
            a, b = sorted((lo[0], hi[0]))
            width = b - a
            if width <= 1e-12 * b:
                break
            t = _cubic_minimizer(lo, hi, a + 0.1 * width, b - 0.1 * width)
            point = evaluate(t)
            if armijo_fails(point, lo):
                hi = point
                continue
            if abs(point[2]) <= -c2 * d0:
                return point
            if point[2] * (hi[0] - lo[0]) >= 0:
                hi = lo
            lo = point
        return best

    while evals < max_evals:
        point = evaluate(t)
        if armijo_fails(point, previous):
            return (*zoom(previous, point), evals)
        if abs(point[2]) <= -c2 * d0:
            return (*point, evals)
        if point[2] >= 0:
            return (*zoom(point, previous), evals)
        step = t - previous[0]
        previous, t = point, _cubic_minimizer(previous, point, t + 0.01 * step, t + 10 * step)
    return (*best, evals)
