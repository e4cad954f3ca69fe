"""Residual vectors of every loss term, and the weighted mean-square loss.

The residuals stay unreduced (one entry per point) because the Gauss–Newton
optimizers and the loss weightings need them per term.
"""

from __future__ import annotations

import torch

from pdec.runtime.problem import Problem
from pdec.runtime.sampling import Batch


def term_residuals(problem: Problem, batches: dict[str, Batch], generator=None) -> dict[str, torch.Tensor]:
    """``{term: residual [M]}`` for every equation and condition."""
    module, P = problem.module, problem.parameters
    out: dict[str, torch.Tensor] = {}
    interior = batches["interior"].X
    D_interior = None
    for name, (kind, point_set, fn, _) in module.TERMS.items():
        if kind == "equation":
            if D_interior is None:
                D_interior = problem.derivatives(interior, "interior", generator)
            out[name] = fn(interior, D_interior, P, None)
        elif kind in ("boundary", "initial"):
            b = batches[point_set]
            out[name] = fn(b.X, problem.derivatives(b.X, point_set, generator), P, b.normals)
        elif kind == "periodic":
            b = batches[point_set]
            low = problem.derivatives(b.X, point_set)
            high = problem.derivatives(b.partner, point_set)
            out[name] = torch.cat([low[k] - high[k] for k in sorted(low)])
        elif kind == "data":
            b = batches[point_set]
            values = problem.derivatives(b.X, point_set)
            out[name] = torch.cat([values[u] - b.observed[:, j] for j, u in enumerate(b.observed_names)])
    return out


def term_losses(residuals: dict[str, torch.Tensor], weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """``weight × mean(r²)`` per term."""
    return {name: weights[name] * r.square().mean() for name, r in residuals.items()}
