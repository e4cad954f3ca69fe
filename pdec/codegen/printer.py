"""SymPy → torch source for residuals, exact solutions and activations.

A subclass of SymPy's `TorchPrinter`: every symbol and derivative atom is
printed as the local identifier the emitter bound it to (never the user's
text), numbers as float literals, and any node without a rule raises.
"""

from __future__ import annotations

import sympy
from sympy.printing.pytorch import TorchPrinter


class PdecTorchPrinter(TorchPrinter):
    """Print with a fixed table from SymPy atoms to Python identifiers."""

    def __init__(self, names: dict[sympy.Basic, str]) -> None:
        super().__init__({"strict": True})
        self.names = names

    def _print_atom(self, expr) -> str:
        try:
            return self.names[expr]
        except KeyError:
            raise ValueError(f"no identifier bound for {expr!r}") from None

    _print_Symbol = _print_atom
    _print_Dummy = _print_atom
    _print_AppliedUndef = _print_atom
    _print_Derivative = _print_atom
    _print_Laplacian = _print_atom
    _print_NormalDerivative = _print_atom

    def _print_Rational(self, expr) -> str:
        return repr(float(expr))

    def _print_Integer(self, expr) -> str:
        return repr(float(expr))

    def _print_Float(self, expr) -> str:
        return repr(float(expr))

    def _print_Exp1(self, expr) -> str:
        return repr(float(expr))

    def _print_Pi(self, expr) -> str:
        return repr(float(expr))

    def _print_Pow(self, expr):
        base, exp = expr.args
        if exp.is_Integer and 2 <= int(exp) <= 4:
            b = self.parenthesize(base, sympy.printing.precedence.PRECEDENCE["Pow"], strict=True)
            return f"{b}**{int(exp)}"
        return super()._print_Pow(expr)


def to_torch(expr: sympy.Expr, names: dict[sympy.Basic, str]) -> str:
    """``expr`` as a torch expression over the identifiers in ``names``."""
    return PdecTorchPrinter(names).doprint(expr)
