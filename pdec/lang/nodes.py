"""SymPy node types for what SymPy has no word for.

The Laplacian is kept as one node (not a sum of second derivatives) so that
the plan can give it one collapsed Taylor stream; ``dn`` is kept until the
geometry supplies the outward normal.
"""

from __future__ import annotations

import sympy


class Laplacian(sympy.Function):
    """Δ of an unknown (or of a Laplacian) over the spatial variables."""

    nargs = 1
    is_real = True


class NormalDerivative(sympy.Function):
    """∂u/∂n, the outward normal derivative on the boundary (conditions only)."""

    nargs = 1
    is_real = True


class Unbound(sympy.Symbol):
    """A name not defined yet: the index of an enclosing ``sum``, or an error."""


class IndexRef(sympy.Function):
    """``x[i]`` with ``i`` not yet a number: resolved when ``sum`` substitutes it."""

    nargs = 2  # (base name as a Symbol, index expression)


class PendingDerivative(sympy.Function):
    """``d(expr, x[i], …)`` inside a `sum`: taken once the index is a number.

    Arguments: the expression, then the variables (some still `IndexRef`).
    """


def unknown_function(name: str, variables: tuple[sympy.Symbol, ...]) -> sympy.Expr:
    """The unknown ``name`` as an applied function of all input variables."""
    return sympy.Function(name, real=True)(*variables)


def is_unknown(expr: sympy.Basic) -> bool:
    return isinstance(expr, sympy.core.function.AppliedUndef)


def laplacian_power(expr: sympy.Basic) -> tuple[sympy.Basic, int]:
    """Split ``Laplacian(Laplacian(u))`` into ``(u, 2)``."""
    power = 0
    while isinstance(expr, Laplacian):
        expr, power = expr.args[0], power + 1
    return expr, power


def expand_laplacians(expr: sympy.Expr, spatial: tuple[sympy.Symbol, ...]) -> sympy.Expr:
    """Replace Laplacian nodes by explicit sums of second derivatives.

    Needed before differentiating an expression that contains a Laplacian:
    ``d(laplacian(u), x)`` has no collapsed stream, but its expansion does.
    """

    def expand(node: Laplacian) -> sympy.Expr:
        inner = expand_laplacians(node.args[0], spatial)
        return sympy.Add(*(sympy.diff(inner, s, 2) for s in spatial))

    return expr.replace(lambda e: isinstance(e, Laplacian), expand)


def unknown_atoms(expr: sympy.Expr) -> set[sympy.Basic]:
    """The outermost atoms that carry an unknown: ``u``, ``Derivative(u, …)``, ``Laplacian(…)``, ``dn(u)``."""
    atoms, stack = set(), [expr]
    while stack:
        node = stack.pop()
        if is_unknown(node) or isinstance(node, (sympy.Derivative, Laplacian, NormalDerivative)):
            if node.atoms(sympy.core.function.AppliedUndef):
                atoms.add(node)
        else:
            stack.extend(node.args)
    return atoms
