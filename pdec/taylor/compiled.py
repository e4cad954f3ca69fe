"""A stream plan compiled for the runtimes, and the pieces both runtimes share.

``streams.py`` plans with exact fractions and stream specs; the runtimes
(``mlp.py``'s generic one, ``fused.py``) index by floats and local stream
numbers, so each plan is compiled once per model (``TaylorMLP._compiled``).
The first-order seeds (unit or Rademacher directions, drawn per call) and
the read-off of the operators from the output-layer streams are the same
for both runtimes, so they live here too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .operators import Operator
from .streams import StreamPlan

def _directions(plan: StreamPlan, generator: torch.Generator | None, X: Tensor) -> Tensor:
    """Input seeds ``[R, n_in]`` of the first-order streams: unit vectors, or
    Rademacher vectors over a randomized Laplacian's columns, drawn now."""
    draws = []
    for group in plan.random_groups:
        device = generator.device if generator is not None else X.device
        signs = torch.randint(0, 2, (group.samples, len(group.over)), generator=generator, device=device)
        draws.append((2 * signs - 1).to(dtype=X.dtype, device=X.device))
    dirs = X.new_zeros(plan.n_first, plan.n_inputs)
    for r, s in enumerate(plan.streams[1 : plan.n_first + 1]):
        if s.column is not None:
            dirs[r, s.column] = 1
        else:
            g, j = s.random
            dirs[r, list(plan.random_groups[g].over)] = draws[g][j]
    return dirs


def _combine(Z: Tensor, combo: tuple[tuple[int, float], ...], row_of: dict[int, int]) -> Tensor:
    """``Σ coef · Z[row of stream]``: an operator from the output-layer streams."""
    (s0, c0), *rest = combo
    out = Z[row_of[s0]] if c0 == 1 else c0 * Z[row_of[s0]]
    for s, c in rest:
        out = out + c * Z[row_of[s]]
    return out


@dataclass(frozen=True)
class _Quadratic:
    """``Σ_ij C_ij h_i h_j`` over the first-order streams (local indices), split
    into runs of equal diagonal coefficients and off-diagonal terms."""

    diag: tuple[tuple[int, int, float], ...]  # (start, stop, coef)
    off: tuple[tuple[int, int, float], ...]  # (i, j, coef), i < j

    @staticmethod
    def from_rule(rule) -> _Quadratic:
        diag: list[list] = []
        off = []
        for t in rule:
            i, j = (f - 1 for f in t.factors)
            if i != j:
                off.append((i, j, float(t.coef)))
            elif diag and diag[-1][1] == i and diag[-1][2] == float(t.coef):
                diag[-1][1] = i + 1
            else:
                diag.append([i, i + 1, float(t.coef)])
        return _Quadratic(tuple(tuple(d) for d in diag), tuple(off))


@dataclass(frozen=True)
class _Compiled:
    """A plan turned into what the runtimes index by: floats, local indices."""

    n_streams: int
    n_first: int
    max_order: int
    rules: tuple[tuple[tuple[int, float, tuple[int, ...]], ...], ...]  # per stream
    quads: tuple[_Quadratic, ...]  # order-2 streams, for the fused runtime
    outputs: tuple[tuple[Operator, tuple[tuple[int, float], ...]], ...]
    needed: tuple[int, ...]  # the streams the outputs read

    @staticmethod
    def from_plan(plan: StreamPlan) -> _Compiled:
        rules = tuple(tuple((t.m, float(t.coef), t.factors) for t in s.rule) for s in plan.streams)
        quads = ()
        if plan.max_order <= 2:
            quads = tuple(_Quadratic.from_rule(s.rule) for s in plan.streams[plan.n_first + 1 :])
        outputs = tuple((op, tuple((s, float(c)) for s, c in combo)) for op, combo in plan.outputs)
        needed = tuple(sorted({s for _, combo in outputs for s, _ in combo}))
        return _Compiled(plan.n_streams, plan.n_first, plan.max_order, rules, quads, outputs, needed)

