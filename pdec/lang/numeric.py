"""Evaluate a SymPy tree on NumPy arrays, without generating or exec'ing code.

Used by the front end's own checks (does a selector pick out part of the
boundary? does `exact` satisfy the equations?). Training never comes here: it
runs the emitted torch code.
"""

from __future__ import annotations

import math

import numpy as np
import sympy

from ..errors import Loc, SpecError

_FUNCTIONS = {
    sympy.sin: np.sin,
    sympy.cos: np.cos,
    sympy.tan: np.tan,
    sympy.exp: np.exp,
    sympy.log: np.log,
    sympy.tanh: np.tanh,
    sympy.sinh: np.sinh,
    sympy.cosh: np.cosh,
    sympy.Abs: np.abs,
    sympy.sign: np.sign,
    sympy.sec: lambda a: 1 / np.cos(a),
    sympy.csc: lambda a: 1 / np.sin(a),
    sympy.cot: lambda a: 1 / np.tan(a),
    sympy.sech: lambda a: 1 / np.cosh(a),
    sympy.Heaviside: lambda a: np.heaviside(a, 0.5),
}
_REDUCTIONS = {sympy.Max: np.maximum, sympy.Min: np.minimum}
_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}


def evaluate(expr: sympy.Basic, env: dict[sympy.Symbol, np.ndarray], n: int) -> np.ndarray:
    """Value of ``expr`` at ``n`` points, with symbols bound to arrays in ``env``."""
    with np.errstate(all="ignore"):
        return np.broadcast_to(_eval(expr, env), (n,)).astype(float)


def _eval(expr: sympy.Basic, env: dict[sympy.Symbol, np.ndarray]):
    if expr.is_Number or isinstance(expr, sympy.NumberSymbol):
        return float(expr)
    if isinstance(expr, sympy.Symbol):
        if expr not in env:
            raise KeyError(f"no value for `{expr}`")
        return env[expr]
    if expr.is_Add:
        return sum(_eval(a, env) for a in expr.args)
    if expr.is_Mul:
        result = 1.0
        for a in expr.args:
            result = result * _eval(a, env)
        return result
    if expr.is_Pow:
        base, exponent = _eval(expr.base, env), _eval(expr.exp, env)
        return np.power(np.asarray(base, dtype=float), exponent)
    func = _FUNCTIONS.get(expr.func)
    if func is not None and (expr.func is not sympy.Heaviside or len(expr.args) == 1 or expr.args[1] == sympy.S.Half):
        return func(np.asarray(_eval(expr.args[0], env), dtype=float))
    if isinstance(expr, sympy.Piecewise):
        out = np.asarray(_eval(expr.args[-1].expr, env), dtype=float)
        for piece in reversed(expr.args[:-1]):
            out = np.where(_eval(piece.cond, env), _eval(piece.expr, env), out)
        return out
    if isinstance(expr, sympy.core.relational.Relational) and expr.rel_op in _COMPARE:
        return _COMPARE[expr.rel_op](_eval(expr.lhs, env), _eval(expr.rhs, env))
    if expr.func in _REDUCTIONS:
        values = [np.asarray(_eval(a, env), dtype=float) for a in expr.args]
        return _REDUCTIONS[expr.func].reduce(np.broadcast_arrays(*values))
    raise TypeError(f"cannot evaluate `{expr.func.__name__}` numerically")


def constant_value(expr: sympy.Expr, constants: dict[str, sympy.Expr], what: str, loc: Loc) -> float:
    """The float value of an expression of constants, or a located error.

    Evaluated in floating point (never to arbitrary precision: `sin(e^e^e^e)`
    would take SymPy hours); overflow and complex values are errors.
    """
    value = expr.xreplace({s: constants[s.name] for s in expr.free_symbols if s.name in constants})  # linear in all
    if value.free_symbols:
        raise SpecError(f"`{what}` must be a number, not an expression of variables", loc)
    try:
        result = float(evaluate(value, {}, 1)[0])
    except (TypeError, KeyError, OverflowError, ValueError):
        raise SpecError(f"`{what}` is not a finite real number", loc) from None
    if not math.isfinite(result):
        raise SpecError(f"`{what}` is not a finite real number", loc)
    return result
