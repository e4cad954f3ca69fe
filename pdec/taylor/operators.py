"""The differential operators the Taylor runtime can evaluate.

This is the vocabulary shared by the plan stage (which decides *what* a spec
needs) and the runtime (which decides *how* to propagate it). It is plain
Python on purpose: emitted standalone scripts carry it without SymPy.

Variables are referred to by their column index in the network input, so an
operator means the same thing for every unknown: the network is one MLP with
one output per unknown, and every operator is evaluated for all outputs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Partial:
    """The mixed partial derivative ``∂^index`` of the network outputs.

    ``index`` lists input columns, sorted, one entry per differentiation:
    ``()`` is the value, ``(0,)`` is ``∂/∂x0``, ``(0, 0, 1)`` is ``∂³/∂x0²∂x1``.
    """

    index: tuple[int, ...]

    def __post_init__(self) -> None:
        if tuple(sorted(self.index)) != self.index:
            raise ValueError(f"Partial index must be sorted, got {self.index}")
        if any(i < 0 for i in self.index):
            raise ValueError(f"Partial index must be non-negative, got {self.index}")

    @property
    def order(self) -> int:
        return len(self.index)


@dataclass(frozen=True, order=True)
class Laplacian:
    """``Δ^power`` over the input columns ``over`` (the spatial variables).

    ``power=1`` is the Laplacian, carried as one collapsed stream (forward
    Laplacian); ``power=2`` is the bilaplacian. ``samples > 0`` asks for the
    randomized (Hutchinson) estimate with that many random directions, an
    unbiased estimate for very many dimensions (power 1 only).
    """

    over: tuple[int, ...]
    power: int = 1
    samples: int = 0

    def __post_init__(self) -> None:
        if self.power not in (1, 2):
            raise ValueError(f"Laplacian power must be 1 or 2, got {self.power}")
        if not self.over:
            raise ValueError("Laplacian needs at least one variable")
        if self.samples and self.power != 1:
            raise ValueError("The randomized Laplacian supports power 1 only")

    @property
    def order(self) -> int:
        return 2 * self.power


Operator = Partial | Laplacian


def canonical_name(unknown: str, op: Operator, variables: tuple[str, ...] | list[str]) -> str:
    """The name ``problem.derivatives(X)`` uses for ``op`` applied to ``unknown``.

    ``u``, ``d(u,x)``, ``d(u,x,x)``, ``d(u,x,y)``, ``laplacian(u)``,
    ``laplacian(laplacian(u))``: the keys of ``D`` in a term's residual
    ``residual(X, D, P, normals)`` (``pdec.contract.Term``), which the code
    generator writes and ``Problem.derivatives`` fills.
    """
    if isinstance(op, Partial):
        if not op.index:
            return unknown
        return "d(" + ",".join([unknown, *(variables[i] for i in op.index)]) + ")"
    name = unknown
    for _ in range(op.power):
        name = f"laplacian({name})"
    return name
