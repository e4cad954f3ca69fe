"""Residual vectors of every loss term, and the weighted mean-square loss.

The residuals stay unreduced (one entry per point) because the Gauss–Newton
optimizers and the loss weightings need them per term.
"""

from __future__ import annotations

import torch

from pdec.runtime.problem import Problem
from pdec.runtime.sampling import Batch


def term_residuals(
    problem: Problem, batches: dict[str, Batch], generator=None, causal=None, world=None
) -> dict[str, torch.Tensor]:
    """``{term: residual [M]}`` for every equation and condition; ``causal`` (a
    `pdec.runtime.causal.Causal`) weighs the equations' residuals by time slab, its slab
    losses summed over ``world`` when the batches are a rank's shard (`distributed.py`)."""
    P = problem.parameters
    out: dict[str, torch.Tensor] = {}
    interior = batches["interior"].X
    D_interior = None
    for term in problem.definition.terms:
        b = batches[term.point_set]
        if term.kind == "equation":
            if D_interior is None:
                D_interior = problem.derivatives(interior, "interior", generator)
            out[term.name] = term.residual(interior, D_interior, P, None)
            if causal is not None:
                out[term.name] = causal.weigh(interior, out[term.name], world)
        elif term.kind in ("boundary", "initial"):
            out[term.name] = term.residual(b.X, problem.derivatives(b.X, term.point_set, generator), P, b.normals)
        elif term.kind == "periodic":
            low = problem.values(b.X, term.point_set)
            high = problem.values(b.partner, term.point_set)
            out[term.name] = torch.cat([low[k] - high[k] for k in sorted(low)])
        elif term.kind == "data":
            values = problem.values(b.X, term.point_set)
            out[term.name] = torch.cat([values[u] - b.observed[:, j] for j, u in enumerate(b.observed_names)])
    return out


def term_losses(residuals: dict[str, torch.Tensor], weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """``weight × mean(r²)`` per term."""
    return {name: weights[name] * r.square().mean() for name, r in residuals.items()}


def sharded_residuals(problem: Problem, local: dict[str, Batch], scales: dict[str, float], world, causal=None):
    """`term_residuals` on a rank's shard of the points, each term scaled by its point set's
    ``√(n_local/n)`` (`distributed.shard_batches`): the local ``w · mean(r̃²)`` is then the rank's
    share of the global term, and the ranks' shares sum to it."""
    out = term_residuals(problem, local, causal=causal, world=world)
    sets = {t.name: ("interior" if t.kind == "equation" else t.point_set) for t in problem.definition.terms}
    return {k: r * scales[sets[k]] for k, r in out.items()}
