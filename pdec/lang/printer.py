"""SymPy → text in the spec language, so messages and `pdec show` speak it.

The output parses back to the same SymPy expression (tested by round trip):
``^`` for powers, ``u_xx``/``d(u, x1, x2)`` for derivatives, ``laplacian(u)``,
``dn(u)``, ``abs``, ``e``.
"""

from __future__ import annotations

import sympy
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.str import StrPrinter

from .nodes import Laplacian, NormalDerivative


class SpecPrinter(StrPrinter):
    """Print in pdec's expression language."""

    def _print_Pow(self, expr, rational=False):
        if expr.exp == sympy.S.Half:
            return f"sqrt({self._print(expr.base)})"
        if expr.exp.is_negative and expr.exp.is_Number:
            if expr.exp == -1:
                return f"1/{self.parenthesize(expr.base, PRECEDENCE['Pow'])}"
            if expr.exp == -sympy.S.Half:
                return f"1/sqrt({self._print(expr.base)})"
        # `^` is right-associative: a power as the base needs parentheses, (x^y)^t.
        base = self.parenthesize(expr.base, PRECEDENCE["Pow"], strict=False)
        exponent = self._print(expr.exp)
        if precedence(expr.exp) <= PRECEDENCE["Pow"] or exponent.startswith("-"):
            exponent = f"({exponent})"
        return f"{base}^{exponent}"

    def _print_Exp1(self, expr):
        return "e"

    def _print_Abs(self, expr):
        return f"abs({self._print(expr.args[0])})"

    def _print_Piecewise(self, expr):
        """``where(c1, a, where(c2, b, d))``: the language's `where`, nested for more pieces."""
        *pieces, last = expr.args
        out = self._print(last.expr)
        for piece in reversed(pieces):
            out = f"where({self._print(piece.cond)}, {self._print(piece.expr)}, {out})"
        return out

    def _print_Heaviside(self, expr):
        return f"heaviside({self._print(expr.args[0])})"

    def _print_Max(self, expr):
        return f"max({', '.join(self._print(a) for a in expr.args)})"

    def _print_Min(self, expr):
        return f"min({', '.join(self._print(a) for a in expr.args)})"

    def _print_AppliedUndef(self, expr):
        return expr.func.__name__

    def _print_Derivative(self, expr):
        unknown = expr.expr
        names = [str(v) for v, count in expr.variable_count for _ in range(count)]
        if isinstance(unknown, sympy.core.function.AppliedUndef) and all(len(n) == 1 for n in names):
            return f"{unknown.func.__name__}_{''.join(names)}"
        return f"d({self._print(unknown)}, {', '.join(names)})"

    def _print_Laplacian(self, expr: Laplacian):
        return f"laplacian({self._print(expr.args[0])})"

    def _print_NormalDerivative(self, expr: NormalDerivative):
        return f"dn({self._print(expr.args[0])})"


def to_text(expr: sympy.Basic) -> str:
    """``expr`` written in the spec language."""
    return SpecPrinter(dict(order="none")).doprint(expr)
