"""The lark tree of an expression → SymPy (one method per grammar rule)."""

from __future__ import annotations

import math
from dataclasses import dataclass
import re
from fractions import Fraction

import numpy as np
import sympy
from lark import Token, Transformer, v_args

from ..errors import Loc, SpecError, abbreviate, did_you_mean
from .numeric import evaluate
from .calculus import Calculus
from .nodes import IndexRef, PendingDerivative, Unbound
from .messages import names_list, undefined_name
from .scope import FUNCTIONS, NAMED_NUMBERS, OPERATORS, VARIADIC, Scope, symbol
from .printer import to_text
from .selector import BOUNDARY, Relation
from .vectors import VECTOR_CALLS, Vector, VectorCalls

MAX_MAGNITUDE_DIGITS = 300
"""Numbers beyond 1e300 in magnitude (or below 1e-300) are refused: they overflow float64."""
MAX_INT_EXPONENT = 1000
MAX_SUM_TERMS = 1_000

_NUMBER = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?", re.ASCII)


@dataclass(frozen=True)
class _Condition:
    """A comparison written as a call's argument (the first of `where`), with its token for errors."""

    relation: sympy.Basic
    token: Token


@v_args(inline=True)
class ToSympy(Transformer, Calculus, VectorCalls):
    """Build SymPy from a parse tree, checking names against a `Scope`.

    Names that are not defined become `Unbound` markers: inside ``sum`` they
    are the index and get substituted; anything left at the end is an error
    reported at its first use (`check_bound`). Vectors (`vectors.Vector`) live
    only between the rules that accept them; every other rule refuses one.
    """

    def __init__(self, scope: Scope, base: Loc, sum_indices: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.scope = scope
        self.base = base
        self.sum_indices = sum_indices
        """Names used as the index of some `sum`: only these may be unbound."""
        self.unbound: dict[str, Loc] = {}
        self.sum_terms = 0

    # -- helpers ---------------------------------------------------------
    def _loc(self, token: Token) -> Loc:
        line = token.line or 1
        if line <= 1:
            return self.base.shifted((token.column or 1) - 1)
        return Loc(self.base.file, self.base.line + line - 1, token.column or 1, "")

    def _error(self, message: str, token: Token | None = None) -> SpecError:
        return SpecError(message, self._loc(token) if token is not None else self.base)

    def _checked(self, value: sympy.Expr, token: Token | None = None, what: str | None = None) -> sympy.Expr:
        """Refuse non-finite, complex or float-overflowing values as soon as they appear.

        ``what`` names the construct for the message (``log(0)``); without it a
        non-finite value can only have come from a division.
        """
        if value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            raise self._error(f"`{what}` is not finite" if what else "division by zero", token)
        if value.has(sympy.I):
            raise self._error(f"`{what or to_text(value)}` is not real: the language has real numbers only", token)
        if value.has(sympy.DiracDelta):  # a jump differentiated (sign, heaviside; a kink twice)
            raise self._error(
                f"`{what or to_text(value)}` differentiates a function with a jump or kink (`abs`, `sign`, "
                "`heaviside`, `min`, `max`) where it is not smooth",
                token,
            )
        if value.is_Rational and value != 0:
            p, q = abs(value.p), value.q
            if p.bit_length() - q.bit_length() > 997:
                raise self._error("number too large for float64 (beyond 1e300)", token)
            if q.bit_length() - p.bit_length() > 997:
                raise self._error("number too small for float64 (below 1e-300)", token)
        return value

    # -- entry points ----------------------------------------------------
    def start_expr(self, expr):
        self._scalars([expr], f"{self.scope.context} must be a scalar")
        return expr

    def start_equation(self, lhs, _eq, rhs):
        self._scalars([lhs, rhs], "an equation is between scalars")
        return (lhs, rhs)

    def start_selector(self, selector):
        return selector

    # -- selectors: every node returns disjunctive normal form -------------
    def sel_boundary(self):
        return ((BOUNDARY,),)

    def comparison(self, *items):
        self._scalars(items[::2], "a comparison is between scalars")
        relations = []
        for i in range(1, len(items), 2):
            op = "=" if items[i].type == "EQ" else str(items[i])
            relations.append(Relation(items[i - 1], op, items[i + 1], self._loc(items[i])))
        return (tuple(relations),)

    def condition(self, lhs, op: Token, rhs):
        """``lhs < rhs`` as a call's argument: only `where`'s first one may be a comparison."""
        self._scalars([lhs, rhs], "a comparison is between scalars")
        return _Condition({"<": sympy.StrictLessThan, "<=": sympy.LessThan, ">": sympy.StrictGreaterThan, ">=": sympy.GreaterThan}[str(op)](lhs, rhs), op)

    def sel_and(self, left, right):
        return tuple(a + b for a in left for b in right)

    def sel_or(self, left, right):
        return left + right

    # -- arithmetic ------------------------------------------------------
    def number(self, token: Token):
        match = _NUMBER.fullmatch(str(token))
        mantissa, exponent = match.group(1), int(match.group(2) or 0)
        digits = len(mantissa.split(".")[0].lstrip("0"))
        if abs(exponent) > MAX_MAGNITUDE_DIGITS + 20 or digits + exponent > MAX_MAGNITUDE_DIGITS:
            size = "small (below 1e-300)" if exponent < 0 else "large (beyond 1e300)"
            raise self._error(f"number `{abbreviate(str(token))}` is too {size} for float64", token)
        value = Fraction(mantissa) * Fraction(10) ** exponent
        return self._checked(sympy.Rational(value.numerator, value.denominator), token)

    def add(self, a, b):
        if isinstance(a, Vector) or isinstance(b, Vector):
            return self._vector_sum(a, b, 1)
        return self._checked(a + b)

    def sub(self, a, b):
        if isinstance(a, Vector) or isinstance(b, Vector):
            return self._vector_sum(a, b, -1)
        return self._checked(a - b)

    def mul(self, a, b):
        if isinstance(a, Vector) or isinstance(b, Vector):
            return self._vector_product(a, b)
        return self._checked(a * b)

    def div(self, a, b):
        if isinstance(a, Vector) or isinstance(b, Vector):
            return self._vector_quotient(a, b)
        if b == 0:
            raise self._error("division by zero")
        return self._checked(a / b)

    def neg(self, a):
        if isinstance(a, Vector):
            return self._vector_negative(a)
        return -a

    def pos(self, a):
        return a

    def pow(self, base, token: Token, exponent):
        if isinstance(base, Vector) or isinstance(exponent, Vector):
            raise self._vector_power(base, exponent)
        if exponent.is_Number and base.is_Number and base != 0:
            digits = float(exponent) * math.log10(abs(float(base)))  # decimal exponent of the result
            if digits > MAX_MAGNITUDE_DIGITS:
                raise self._error("power too large for float64 (beyond 1e300)", token)
            if digits < -MAX_MAGNITUDE_DIGITS:
                raise self._error("power too small for float64 (below 1e-300)", token)
        elif exponent.is_Integer and abs(exponent) > MAX_INT_EXPONENT:
            raise self._error(f"exponent {exponent} is too large (at most {MAX_INT_EXPONENT})", token)
        if base == 0 and exponent.is_Number and exponent.is_negative:
            raise self._error("division by zero (0 to a negative power)", token)
        return self._checked(base**exponent, token, what=f"{to_text(base)}^{to_text(exponent)}")

    # -- names -----------------------------------------------------------
    def name(self, token: Token):
        name = str(token)
        scope = self.scope
        if name in scope.variables or name in scope.constants or name in scope.parameters:
            return symbol(name)
        if name in scope.defines:
            return scope.defines[name]
        if name in scope.refused:
            raise self._error(scope.refused[name], token)
        if name in scope.unknowns:
            if not scope.allow_unknowns:
                raise self._error(f"the unknown `{name}` cannot appear in {scope.context}", token)
            return scope.unknown(name)
        if name in NAMED_NUMBERS:
            return NAMED_NUMBERS[name]
        if name in FUNCTIONS or name in OPERATORS:
            raise self._error(f"`{name}` is a function: call it as `{name}(...)`", token)
        if name in scope.indexed:
            raise self._error(f"`{name}` has {len(scope.indexed[name])} components: write `{name}[i]`", token)
        if name in scope.excluded:
            raise self._error(f"the learnable parameter `{name}` cannot appear in {scope.context}", token)
        if "_" in name:
            derivative = self._subscript_derivative(name, token)
            if derivative is not None:
                return derivative
        if name not in self.sum_indices:
            raise self._error(undefined_name(name, self.scope.names()), token)
        self.unbound.setdefault(name, self._loc(token))
        return Unbound(name, real=True)

    def _subscript_derivative(self, name: str, token: Token):
        """``u_xy`` → ∂²u/∂x∂y, splitting the subscript into variable names."""
        base, _, subscript = name.partition("_")
        if base not in self.scope.unknowns:
            return None
        if not self.scope.allow_unknowns:
            raise self._error(f"the unknown `{base}` cannot appear in {self.scope.context}", token)
        splits = _split_variables(subscript, self.scope.variables)
        if not splits:
            missing = "t" if subscript == "t" and self.scope.time is None else None
            hint = (
                " This problem has no time variable: add a `time:` section."
                if missing
                else f" Variables are {names_list(self.scope.variables)}."
            )
            raise self._error(f"`{name}`: `{subscript}` is not a list of variables.{hint}", token)
        if len(splits) > 1:
            raise self._error(f"`{name}` is ambiguous: write it with d(...), e.g. `d({base}, ...)`", token)
        variables = [symbol(v) for v in splits[0]]
        return self._derivative(self.scope.unknown(base), variables, token)

    def index(self, token: Token, idx):
        base = str(token)
        self._scalars([idx], "an index is a whole number")
        if base not in self.scope.indexed:
            raise self._error(f"`{base}` cannot be indexed: only a cube's variable can (`x[i]`)", token)
        if idx.is_Integer:
            return self._component(base, int(idx), token)
        if idx.free_symbols and all(isinstance(s, Unbound) for s in idx.free_symbols):
            return IndexRef(sympy.Symbol(base), idx)
        raise self._error(f"index of `{base}` must be an integer or a `sum` index", token)

    def _component(self, base: str, i: int, token: Token | None):
        names = self.scope.indexed[base]
        if not 1 <= i <= len(names):
            raise self._error(f"index {i} of `{base}` is out of range 1..{len(names)}", token)
        return symbol(names[i - 1])

    # -- calls -----------------------------------------------------------
    def call(self, token: Token, *args):
        name = str(token)
        conditions = [i for i, a in enumerate(args) if isinstance(a, _Condition)]
        if name not in VECTOR_CALLS and (name in FUNCTIONS or name in OPERATORS):
            self._scalars(args, f"`{name}` takes scalars")
        if name == "where":
            if len(args) != 3 or conditions != [0]:
                raise self._error("`where` takes a comparison and two values: `where(x < 0.5, a, b)`", token)
            cond, then, otherwise = args[0].relation, args[1], args[2]
            return self._checked(sympy.Piecewise((then, cond), (otherwise, True)), token, what="where(…)")
        if conditions:
            raise self._error(f"a comparison is an argument of `where(…)` only, not of `{name}`", args[conditions[0]].token)
        if name in FUNCTIONS:
            if name in VARIADIC and len(args) < 2:
                raise self._error(f"`{name}` takes two or more arguments, got {len(args)}", token)
            if name not in VARIADIC and len(args) != 1:
                raise self._error(f"`{name}` takes one argument, got {len(args)}", token)
            what = f"{name}({', '.join(to_text(a) for a in args)})"
            return self._checked(FUNCTIONS[name](*args), token, what=what)
        handler = {
            "d": self._call_d, "dn": self._call_dn, "laplacian": self._call_laplacian, "sum": self._call_sum,
            "grad": self._call_grad, "div": self._call_div, "norm": self._call_norm, "dot": self._call_dot,
        }  # fmt: skip
        if name in handler:
            return handler[name](token, args)
        known = [*FUNCTIONS, *OPERATORS]
        if name in self.scope.unknowns:
            raise self._error(
                f"`{name}` is an unknown, not a function: write `{name}`; it depends on all variables", token
            )
        raise self._error(f"unknown function `{name}`.{did_you_mean(name, known)} Functions are {', '.join(known)}", token)

    def _check_index_powers(self, body, index: Unbound, first: int, last: int, token: Token) -> None:
        """Apply the power guards to every value the index takes, before substituting it.

        Substituting first would let SymPy evaluate ``9^9^(9*i)`` exactly.
        """
        values = np.arange(first, last + 1, dtype=float)
        for node in sympy.preorder_traversal(body):
            if not (isinstance(node, sympy.Pow) and node.exp.has(index)):
                continue
            try:
                exponents = evaluate(node.exp, {index: values}, len(values))
            except (TypeError, KeyError):
                continue  # depends on other names too: checked after substitution
            worst = float(np.max(np.abs(exponents))) if len(exponents) else 0.0
            if node.base.is_Number and node.base != 0:
                if not np.isfinite(worst) or worst * abs(math.log10(abs(float(node.base)))) > MAX_MAGNITUDE_DIGITS:
                    raise self._error("power too large for float64 (beyond 1e300) for some value of the sum index", token)
            elif not np.isfinite(worst) or worst > MAX_INT_EXPONENT:
                raise self._error(
                    f"exponent {worst:.0f} is too large (at most {MAX_INT_EXPONENT}) for some value of the sum index",
                    token,
                )

    def _call_sum(self, token: Token, args):
        if len(args) != 4:
            raise self._error("`sum` takes four arguments: `sum(i, first, last, expression)`", token)
        index, first, last, body = args
        if not isinstance(index, Unbound):
            raise self._error("the first argument of `sum` must be a new index name, e.g. `i`", token)
        if not (first.is_Integer and last.is_Integer):
            raise self._error("the bounds of `sum` must be integers", token)
        count = int(last) - int(first) + 1
        if count > MAX_SUM_TERMS:
            raise self._error(f"`sum` over {count} terms; at most {MAX_SUM_TERMS}", token)
        self.sum_terms += count * len(sympy.Add.make_args(body))
        if self.sum_terms > MAX_SUM_TERMS:
            raise self._error(f"sums expand to more than {MAX_SUM_TERMS} terms in one expression", token)
        self._check_index_powers(body, index, int(first), int(last), token)
        self.unbound.pop(index.name, None)
        terms = []
        for k in range(int(first), int(last) + 1):
            term = body.xreplace({index: sympy.Integer(k)})
            if term.has(IndexRef):
                term = term.replace(
                    lambda e: isinstance(e, IndexRef) and e.args[1].is_Integer,
                    lambda e: self._component(e.args[0].name, int(e.args[1]), token),
                )
            if term.has(PendingDerivative):
                term = term.replace(
                    lambda e: isinstance(e, PendingDerivative) and not e.has(IndexRef, Unbound),
                    lambda e: self._derivative(e.args[0], list(e.args[1:]), token),
                )
            terms.append(term)
        return sympy.Add(*terms)


def _split_variables(subscript: str, variables: tuple[str, ...]) -> list[list[str]]:
    """All ways to read ``subscript`` as a sequence of variable names."""
    if not subscript:
        return [[]]
    results = []
    for var in variables:
        if subscript.startswith(var):
            for rest in _split_variables(subscript[len(var) :], variables):
                results.append([var, *rest])
                if len(results) > 1:
                    return results
    return results


def check_bound(transformer: ToSympy, result) -> None:
    """Report the first name that was never defined (sum indices are bound)."""
    if isinstance(result, tuple) and result and isinstance(result[0], tuple):  # a selector
        exprs = [rel.lhs - rel.rhs for clause in result for rel in clause if isinstance(rel, Relation)]
    elif isinstance(result, tuple):
        exprs = list(result)
    else:
        exprs = [result]
    names: set[str] = set()
    for expr in exprs:
        names |= {s.name for s in expr.atoms(Unbound)}
        names |= {str(ref.args[1]) for ref in expr.atoms(IndexRef)}
    if names:
        base = transformer.base
        name = min(names, key=lambda n: (transformer.unbound.get(n, base).col, n))
        loc = transformer.unbound.get(name, base)
        raise SpecError(undefined_name(name, transformer.scope.names()), loc)
