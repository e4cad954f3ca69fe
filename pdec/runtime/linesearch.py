"""Steps in parameter space for the Gauss–Newton optimizers: directions as
per-layer ``[W | b]`` matrices plus the PDE-parameter vector, trial steps
``θ + η v`` that are undone, and the grid line search on the loss.

The grid ``η ∈ {2^0, 2^-1, …, 2^-30}`` is the one of ENGD (Müller &
Zeinhofer 2023): a Gauss–Newton direction has the natural step 1 when the
linear model is right, and halving covers the range down to the rounding
level of the loss in 31 evaluations at most.
"""

from __future__ import annotations

import torch
from torch import Tensor

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
    losses = {k: weights[k] * r.square().mean() for k, r in residual_fn().items()}
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
