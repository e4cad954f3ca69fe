"""The language's derivative operators: ``d``, ``dn``, ``laplacian`` (and the order limit).

A mixin of `transform.ToSympy`: these calls share one rule (every derivative
goes through `_derivative`, which refuses a jump differentiated and orders
above `MAX_DERIVATIVE_ORDER`), so the vector operators (`vectors`) reuse it
rather than calling SymPy's ``diff`` themselves.
"""

from __future__ import annotations

import sympy
from lark import Token

from .messages import names_list
from .nodes import IndexRef, Laplacian, NormalDerivative, PendingDerivative, expand_laplacians, is_unknown, laplacian_power
from .printer import to_text
from .scope import Scope

MAX_DERIVATIVE_ORDER = 4


def derivative_order(expr: sympy.Basic) -> int:
    """The highest derivative order of any unknown in ``expr``."""
    order = 0
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Derivative):
            inner, power = laplacian_power(node.expr)
            order = max(order, node.derivative_count + 2 * power)
        elif isinstance(node, Laplacian):
            order = max(order, 2 * laplacian_power(node)[1])
        elif isinstance(node, NormalDerivative):
            order = max(order, 1)
    return order


class Calculus:
    """``d(…)``, ``dn(…)``, ``laplacian(…)`` and the one derivative rule they share.

    Uses the transformer's ``scope``, ``_error`` and ``_checked`` (`transform.ToSympy`).
    """

    scope: Scope

    def _derivative(self, expr, variables, token):
        """∂expr/∂variables, refusing a `where` differentiated across its jump and orders above the limit."""
        if expr.has(IndexRef):  # `x[i]` inside a `sum`: SymPy would take it for a constant
            return PendingDerivative(expr, *variables)
        if any(p.has(*variables) for w in expr.atoms(sympy.Piecewise) for p in (c.cond for c in w.args)):
            raise self._error(f"`d({to_text(expr)}, ...)` differentiates a `where` across its jump", token)
        if expr.has(Laplacian):
            expr = expand_laplacians(expr, self.scope.spatial_symbols())
        result = self._checked(_differentiate(expr, variables), token, what=f"d({to_text(expr)}, ...)")
        if derivative_order(result) > MAX_DERIVATIVE_ORDER:
            raise self._error(f"derivatives above order {MAX_DERIVATIVE_ORDER} are not supported", token)
        return result

    def _call_d(self, token: Token, args):
        if len(args) < 2:
            raise self._error("`d` needs an expression and at least one variable: `d(u, x)`", token)
        variables: list[sympy.Symbol] = []
        for arg in args[1:]:
            if arg.is_Number and not arg.is_Integer:
                raise self._error(
                    f"in `d(...)`, a count is a whole number 1..{MAX_DERIVATIVE_ORDER} "
                    f"(derivatives of order {to_text(arg)} are not supported)",
                    token,
                )
            if arg.is_Integer:
                if not variables or not 1 <= int(arg) <= MAX_DERIVATIVE_ORDER:
                    raise self._error(
                        f"in `d(...)`, a count follows a variable and is 1..{MAX_DERIVATIVE_ORDER}", token
                    )
                variables.extend([variables[-1]] * (int(arg) - 1))
            elif isinstance(arg, sympy.Symbol) and arg.name in self.scope.variables:
                variables.append(arg)
            elif isinstance(arg, IndexRef):
                variables.append(arg)  # resolved when the enclosing `sum` substitutes the index
            else:
                raise self._error(
                    f"`d(...)` differentiates along variables ({names_list(self.scope.variables)}), not `{to_text(arg)}`",
                    token,
                )
        if len(variables) > MAX_DERIVATIVE_ORDER:
            raise self._error(f"derivatives above order {MAX_DERIVATIVE_ORDER} are not supported", token)
        if any(isinstance(v, IndexRef) for v in variables):
            return PendingDerivative(args[0], *variables)
        return self._derivative(args[0], variables, token)

    def _call_dn(self, token: Token, args):
        if not self.scope.allow_dn:
            raise self._error(f"`dn` (the outward normal derivative) is only allowed in conditions, not in {self.scope.context}", token)
        if len(args) != 1 or not is_unknown(args[0]):
            raise self._error("`dn` takes one unknown: `dn(u)`", token)
        return NormalDerivative(args[0])

    def _call_laplacian(self, token: Token, args):
        if len(args) != 1:
            raise self._error("`laplacian` takes one argument", token)
        if not self.scope.spatial:
            raise self._error("`laplacian` needs spatial variables", token)
        result = self._checked(self._laplacian(args[0]), token, what=f"laplacian({to_text(args[0])})")
        if derivative_order(result) > MAX_DERIVATIVE_ORDER:
            raise self._error(f"derivatives above order {MAX_DERIVATIVE_ORDER} are not supported", token)
        return result

    def _laplacian(self, expr):
        """Δ that keeps ``laplacian(u)`` whole and distributes over sums."""
        spatial = self.scope.spatial_symbols()
        if expr.has(IndexRef):  # `x[i]` inside a `sum`: differentiated once the index is a number
            return sympy.Add(*(PendingDerivative(expr, s, s) for s in spatial))
        if is_unknown(expr) or isinstance(expr, Laplacian):
            return Laplacian(expr)
        if expr.is_Add:
            return sympy.Add(*(self._laplacian(term) for term in expr.args))
        if expr.is_Mul:
            coeff, rest = expr.as_independent(*spatial, sympy.core.function.AppliedUndef, as_Add=False)
            if coeff != 1:
                return coeff * self._laplacian(rest)
        if expr.has(Laplacian):
            expr = expand_laplacians(expr, spatial)
        return sympy.Add(*(sympy.diff(expr, s, 2) for s in spatial))


def _differentiate(expr: sympy.Expr, variables) -> sympy.Expr:
    """``d(expr, *variables)``; an unknown (or its derivative) directly, without the chain rule.

    SymPy's `diff` of ``u(x1, …, xd)`` walks all d arguments; building the
    `Derivative` node is equivalent and O(1).
    """
    if is_unknown(expr):
        return sympy.Derivative(expr, *sorted(variables, key=sympy.default_sort_key))
    if isinstance(expr, sympy.Derivative) and is_unknown(expr.expr):
        return sympy.Derivative(expr.expr, *sorted([*expr.variables, *variables], key=sympy.default_sort_key))
    return sympy.diff(expr, *variables)
