"""Vectors in expressions: ``grad``, ``div``, ``norm``, ``dot`` and the arithmetic they allow.

People write variable-coefficient operators the way textbooks do:
``-div(k*grad(u)) = f``, ``norm(grad(u))^2``, ``dot(grad(u), grad(v))``. A
vector is only ever an intermediate value here, one SymPy expression per
*spatial* variable (never time), and every vector operator ends in a scalar
expression in derivatives of the unknowns, the same kind `d(…)` builds:
``div(k*grad(u))`` is Σ_i ∂_i(k ∂_i u). Nothing after the parser knows vectors
exist, so the Taylor streams, the printer and the emitted code need nothing new.

A vector where a scalar is needed (``u + grad(u)``, an equation side) is a
located error that names it, at the operator that built it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy
from lark import Token

from ..errors import SpecError, abbreviate
from .messages import names_list
from .printer import to_text
from .scope import Scope

VECTOR_CALLS = ("grad", "div", "norm", "dot")
MAX_COMPONENTS = 1_000
"""A vector has one component per spatial variable; like a `sum`, at most this many terms."""
_REDUCE = "reduce the vector to a scalar with `div(…)`, `norm(…)` or `dot(…, …)`"


@dataclass(frozen=True)
class Vector:
    """A vector over the spatial variables, as built while parsing one expression."""

    components: tuple[sympy.Expr, ...]
    text: str
    """How messages name it: ``grad(u)``, ``k*grad(u)``."""
    token: Token
    """The operator that built it (the ``grad`` of ``grad(u)``), where its errors point."""
    compound: bool = False
    """``text`` is a sum: parenthesize it inside a product."""


def _term(text: str, compound: bool) -> str:
    return f"({text})" if compound else text


def _scalar_text(value: sympy.Expr) -> str:
    text = abbreviate(to_text(value))
    return f"({text})" if value.is_Add else text


class VectorCalls:
    """The vector operators and vector arithmetic of `transform.ToSympy`.

    Uses the transformer's ``scope``, ``_error``, ``_checked`` and ``_derivative``
    (`calculus.Calculus`): every derivative of a component goes through the one
    rule that refuses a jump differentiated and orders above the limit.
    """

    scope: Scope

    # -- refusals --------------------------------------------------------
    def _vector_error(self, vector: Vector, why: str) -> SpecError:
        """``vector`` stands where a scalar is needed; ``why`` says what needs one."""
        along = names_list(self.scope.spatial)
        return self._error(f"`{vector.text}` is a vector (along {along}), but {why}: {_REDUCE}", vector.token)

    def _scalars(self, values, why: str) -> None:
        """Refuse the first vector among ``values`` (``why``: what needs a scalar)."""
        for value in values:
            if isinstance(value, Vector):
                raise self._vector_error(value, why)

    # -- arithmetic ------------------------------------------------------
    def _vector_sum(self, a, b, sign: int):
        """``a + b`` (``sign`` 1) or ``a - b`` (−1) with a vector on either side."""
        if not (isinstance(a, Vector) and isinstance(b, Vector)):
            vector, scalar = (a, b) if isinstance(a, Vector) else (b, a)
            raise self._vector_error(vector, f"`{abbreviate(to_text(scalar))}` is a scalar and cannot be added to it")
        components = tuple(self._checked(p + sign * q) for p, q in zip(a.components, b.components))
        return Vector(components, f"{a.text} {'+' if sign > 0 else '-'} {_term(b.text, b.compound and sign < 0)}", a.token, True)

    def _vector_product(self, a, b):
        """A scalar times a vector (either order); two vectors have no product here."""
        if isinstance(a, Vector) and isinstance(b, Vector):
            raise self._error(
                f"the product of two vectors `{a.text}` and `{b.text}` is not defined: write `dot({a.text}, {b.text})`",
                a.token,
            )
        vector, scale = (a, b) if isinstance(a, Vector) else (b, a)
        text = f"{_scalar_text(scale)}*{_term(vector.text, vector.compound)}"
        return Vector(tuple(self._checked(scale * c) for c in vector.components), text, vector.token)

    def _vector_quotient(self, a, b):
        """A vector divided by a scalar; nothing is divided by a vector."""
        if isinstance(b, Vector):
            raise self._vector_error(b, "nothing can be divided by a vector")
        if b == 0:
            raise self._error("division by zero", a.token)
        text = f"{_term(a.text, a.compound)}/{_scalar_text(b)}"
        return Vector(tuple(self._checked(c / b) for c in a.components), text, a.token)

    def _vector_negative(self, a: Vector) -> Vector:
        return Vector(tuple(-c for c in a.components), f"-{_term(a.text, a.compound)}", a.token)

    def _vector_power(self, base, exponent) -> SpecError:
        if isinstance(base, Vector):
            return self._error(
                f"the vector `{base.text}` has no powers: for its squared length write "
                f"`norm({base.text})^2` or `dot({base.text}, {base.text})`",
                base.token,
            )
        return self._vector_error(exponent, "an exponent is a scalar")

    # -- the operators ---------------------------------------------------
    def _spatial(self, name: str, token: Token) -> tuple[sympy.Symbol, ...]:
        spatial = self.scope.spatial_symbols()
        if not spatial:
            raise self._error(f"`{name}` needs spatial variables", token)
        if len(spatial) > MAX_COMPONENTS:
            raise self._error(
                f"`{name}` over {len(spatial)} spatial variables; at most {MAX_COMPONENTS} (`laplacian(u)` has no such limit)",
                token,
            )
        return spatial

    def _one_argument(self, name: str, token: Token, args, example: str):
        if len(args) != 1:
            raise self._error(f"`{name}` takes one argument, e.g. `{example}` ({len(args)} given)", token)
        return args[0]

    def _call_grad(self, token: Token, args) -> Vector:
        """∇f: the vector of ∂f/∂x_i over the spatial variables."""
        f = self._one_argument("grad", token, args, "grad(u)")
        if isinstance(f, Vector):
            raise self._error(f"`grad` takes a scalar, not the vector `{f.text}` (second-derivative tensors are not supported)", f.token)
        spatial = self._spatial("grad", token)
        components = tuple(self._derivative(f, [s], token) for s in spatial)
        return Vector(components, f"grad({abbreviate(to_text(f))})", token)

    def _call_div(self, token: Token, args) -> sympy.Expr:
        """∇·v = Σ_i ∂v_i/∂x_i; ``div(grad(u))`` is Σ u_ii (write `laplacian(u)` for one collapsed stream)."""
        v = self._one_argument("div", token, args, "div(k*grad(u))")
        if not isinstance(v, Vector):
            raise self._error(f"`div` takes a vector, e.g. `div(k*grad(u))`; `{abbreviate(to_text(v))}` is a scalar", token)
        spatial = self._spatial("div", token)
        return self._checked(sympy.Add(*(self._derivative(c, [s], token) for c, s in zip(v.components, spatial))), token)

    def _call_norm(self, token: Token, args) -> sympy.Expr:
        """|v| = sqrt(Σ v_i²); ``norm(v)^2`` is Σ v_i² exactly (no root left to differentiate at 0)."""
        v = self._one_argument("norm", token, args, "norm(grad(u))")
        if not isinstance(v, Vector):
            raise self._error(
                f"`norm` takes a vector, e.g. `norm(grad(u))`; `{abbreviate(to_text(v))}` is a scalar (write `abs(…)`)", token
            )
        return self._checked(sympy.sqrt(sympy.Add(*(c**2 for c in v.components))), token)

    def _call_dot(self, token: Token, args) -> sympy.Expr:
        """a·b = Σ a_i b_i."""
        if len(args) != 2:
            count = f"{len(args)} argument{'s' if len(args) != 1 else ''}"
            raise self._error(f"`dot` takes two vectors, e.g. `dot(grad(u), grad(v))` ({count} given)", token)
        for arg in args:
            if not isinstance(arg, Vector):
                raise self._error(f"`dot` takes two vectors; `{abbreviate(to_text(arg))}` is a scalar (multiply scalars with `*`)", token)
        a, b = args
        return self._checked(sympy.Add(*(p * q for p, q in zip(a.components, b.components))), token)
