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

    def _print_sech(self, expr) -> str:
        return f"(1.0 / torch.cosh({self._print(expr.args[0])}))"

    def _print_Heaviside(self, expr) -> str:
        """H(0) = 1/2 (the language's `heaviside`, SymPy's default): (sign(x) + 1)/2."""
        if len(expr.args) > 1 and expr.args[1] != sympy.S.Half:
            raise ValueError(f"Heaviside with H(0) = {expr.args[1]}")
        return f"(0.5 * (torch.sign({self._print(expr.args[0])}) + 1.0))"

    def _print_Max(self, expr) -> str:
        return self._extremum(expr, "maximum", "min")

    def _print_Min(self, expr) -> str:
        return self._extremum(expr, "minimum", "max")

    def _extremum(self, expr, pairwise: str, bound: str) -> str:
        """A number among the arguments clamps (``torch.clamp(x, min=c)`` for ``max(x, c)``);
        tensors pair up (``torch.maximum``)."""
        numbers = [a for a in expr.args if a.is_number]
        tensors = [self._print(a) for a in expr.args if not a.is_number]
        out = tensors[0]
        for t in tensors[1:]:
            out = f"torch.{pairwise}({out}, {t})"
        if numbers:  # SymPy keeps at most one number in Max/Min
            out = f"torch.clamp({out}, {'min' if bound == 'min' else 'max'}={self._print(numbers[0])})"
        return out

    def _print_Piecewise(self, expr) -> str:
        """``torch.where(cond, a, b)``, nested; a number as a branch becomes ``full_like`` of a
        variable (a bare Python float would make ``torch.where`` return float32)."""
        ref = self._print(min(expr.free_symbols, key=str))

        def branch(e) -> str:
            return f"torch.full_like({ref}, {self._print(e)})" if e.is_number else self._print(e)

        *pieces, last = expr.args
        out = branch(last.expr)
        for piece in reversed(pieces):
            out = f"torch.where({self._print(piece.cond)}, {branch(piece.expr)}, {out})"
        return out

    def _print_Pow(self, expr):
        base, exp = expr.args
        if exp.is_Integer and 2 <= int(exp) <= 4:
            b = self.parenthesize(base, sympy.printing.precedence.PRECEDENCE["Pow"], strict=True)
            return f"{b}**{int(exp)}"
        return super()._print_Pow(expr)


def to_torch(expr: sympy.Expr, names: dict[sympy.Basic, str]) -> str:
    """``expr`` as a torch expression over the identifiers in ``names``."""
    return PdecTorchPrinter(names).doprint(expr)
