"""Which names an expression may use, and what each one means."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

import sympy

from .nodes import unknown_function

FUNCTIONS = {
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "tanh": sympy.tanh,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "abs": sympy.Abs,
    "sign": sympy.sign,
    "sech": sympy.sech,
    "heaviside": sympy.Heaviside,
    "min": sympy.Min,
    "max": sympy.Max,
}
"""Elementary functions of the language, by the name a user writes (`min` and `max` take two
or more arguments, the others one; `heaviside(0)` is 1/2)."""

VARIADIC = frozenset({"min", "max"})

OPERATORS = ("d", "dn", "laplacian", "sum", "where", "grad", "div", "norm", "dot")
"""Calls with special meaning: derivatives, normal derivative, Laplacian, indexed sum, `where`,
and the vector operators (`vectors`)."""

NAMED_NUMBERS = {"pi": sympy.pi, "e": sympy.E}

RESERVED = frozenset(FUNCTIONS) | frozenset(OPERATORS) | frozenset(NAMED_NUMBERS) | {"and", "or", "boundary"}
"""Names a spec may not give to a variable, unknown, constant or parameter."""


def symbol(name: str) -> sympy.Symbol:
    """The SymPy symbol of a spec name (variables, constants, parameters)."""
    return sympy.Symbol(name, real=True)


@functools.lru_cache(maxsize=256)
def _symbols(names: tuple[str, ...]) -> tuple[sympy.Symbol, ...]:
    return tuple(symbol(v) for v in names)


@functools.lru_cache(maxsize=256)
def _unknown(name: str, variables: tuple[str, ...]) -> sympy.Expr:
    """``u(x, y, t)``, built once: with thousands of variables SymPy takes a while."""
    return unknown_function(name, _symbols(variables))


@dataclass(frozen=True)
class Scope:
    """The names visible to one expression, and what it may contain.

    ``context`` names the place in the spec ("an equation", "`exact`") so
    that errors can say why something is not allowed there.
    """

    variables: tuple[str, ...] = ()
    spatial: tuple[str, ...] = ()
    time: str | None = None
    unknowns: tuple[str, ...] = ()
    constants: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()
    indexed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    excluded: tuple[str, ...] = ()
    """Spec names this expression may not use (parameters in `exact` and selectors)."""
    defines: dict[str, sympy.Expr] = field(default_factory=dict)
    """The spec's `define:` names and their values: a define is an abbreviation, replaced by its
    value where it is read, so no later stage sees it."""
    refused: Mapping[str, str] = field(default_factory=dict)
    """Names that exist in the spec but not here, each with the message that says why (a variable
    in a constant, a define below the one being read)."""
    allow_unknowns: bool = True
    allow_dn: bool = False
    context: str = "an equation"

    def variable_symbols(self) -> tuple[sympy.Symbol, ...]:
        return _symbols(self.variables)

    def spatial_symbols(self) -> tuple[sympy.Symbol, ...]:
        return _symbols(self.spatial)

    def unknown(self, name: str) -> sympy.Expr:
        return _unknown(name, self.variables)

    def names(self) -> list[str]:
        """Every name an expression here could mean, for "did you mean" hints."""
        return [
            *self.variables,
            *self.unknowns,
            *self.constants,
            *self.parameters,
            *self.defines,
            *self.indexed,
            *FUNCTIONS,
            *OPERATORS,
            *NAMED_NUMBERS,
        ]
