"""Selectors: where on the boundary (or the initial slice) a condition holds."""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from ..errors import Loc

BOUNDARY = "boundary"


@dataclass(frozen=True)
class Relation:
    """One comparison of a selector, e.g. ``x = 0`` or ``y < 0.5``."""

    lhs: sympy.Expr
    op: str
    rhs: sympy.Expr
    loc: Loc

    def __str__(self) -> str:
        from .printer import to_text

        return f"{to_text(self.lhs)} {self.op} {to_text(self.rhs)}"


Clause = tuple[Relation | str, ...]
Selector = tuple[Clause, ...]
"""Disjunctive normal form: an ``or`` of ``and``s of relations or ``"boundary"``."""


def selector_text(selector: Selector) -> str:
    return " or ".join(" and ".join(str(r) for r in clause) for clause in selector)
