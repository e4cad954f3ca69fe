"""Vector calculus in the expression language: ``grad``, ``div``, ``norm``, ``dot``.

Each result against a hand-written SymPy construction (never parsed text), every
refusal with its message and column, and the vector operators inside `sum` over a
cube's ``x[i]``.
"""

from __future__ import annotations

import pytest
import sympy

from pdec.errors import Loc, SpecError
from pdec.lang.nodes import Laplacian
from pdec.lang.parse import parse_equation, parse_expr, parse_selector
from pdec.lang.scope import RESERVED, Scope

HERE = Loc("expr", 1, 1)

x, y, t, a = sympy.symbols("x y t a", real=True)
x1, x2, x3 = sympy.symbols("x1 x2 x3", real=True)
U = sympy.Function("u", real=True)
V = sympy.Function("v", real=True)
u, v = U(x, y, t), V(x, y, t)
k = 1 + x**2 * y
"""A define's value, as the spec reader would have parsed it."""

SCOPE = Scope(
    variables=("x", "y", "t"), spatial=("x", "y"), time="t", unknowns=("u", "v"), constants=("a",), defines={"k": k}
)
CUBE = Scope(variables=("x1", "x2", "x3"), spatial=("x1", "x2", "x3"), unknowns=("u",), indexed={"x": ("x1", "x2", "x3")})
UC = U(x1, x2, x3)


def D(f, *vs):
    return sympy.Derivative(f, *vs)


def parse(text: str, scope: Scope = SCOPE) -> sympy.Expr:
    return parse_expr(text, scope, HERE)


RESULTS = [
    ("div(k*grad(u))", sympy.diff(k, x) * D(u, x) + k * D(u, (x, 2)) + sympy.diff(k, y) * D(u, y) + k * D(u, (y, 2))),
    ("div(grad(u))", D(u, (x, 2)) + D(u, (y, 2))),
    ("norm(grad(u))^2", D(u, x) ** 2 + D(u, y) ** 2),
    ("norm(grad(u))", sympy.sqrt(D(u, x) ** 2 + D(u, y) ** 2)),
    ("dot(grad(u), grad(v))", D(u, x) * D(v, x) + D(u, y) * D(v, y)),
    ("dot(grad(u), grad(x^2 + 3*y))", 2 * x * D(u, x) + 3 * D(u, y)),
    ("div(grad(u)*u)", D(u, x) ** 2 + D(u, y) ** 2 + u * (D(u, (x, 2)) + D(u, (y, 2)))),
    ("div(grad(u)/a - 2*grad(v))", (D(u, (x, 2)) + D(u, (y, 2))) / a - 2 * (D(v, (x, 2)) + D(v, (y, 2)))),
    ("div(-grad(u) + grad(v))", -D(u, (x, 2)) - D(u, (y, 2)) + D(v, (x, 2)) + D(v, (y, 2))),
    ("div(+grad(u))", D(u, (x, 2)) + D(u, (y, 2))),
    ("div(grad(u_t))", D(u, t, (x, 2)) + D(u, t, (y, 2))),
    ("norm(grad(x*y))", sympy.sqrt(x**2 + y**2)),
    ("div(grad(x^2*y^3))", 2 * y**3 + 6 * x**2 * y),
    ("dot(grad(u), grad(laplacian(u)))", D(u, x) * (D(u, (x, 3)) + D(u, x, (y, 2))) + D(u, y) * (D(u, (x, 2), y) + D(u, (y, 3)))),
]


@pytest.mark.parametrize("text, expected", RESULTS, ids=[r[0] for r in RESULTS])
def test_vector_operators_against_sympy(text: str, expected: sympy.Expr) -> None:
    assert sympy.expand(parse(text) - expected) == 0


def test_grad_is_spatial_and_laplacian_stays_one_node() -> None:
    """`grad` never differentiates along time; `laplacian(u)` is still the collapsed node, `div(grad(u))` is not."""
    assert not parse("norm(grad(u))^2").has(D(u, t))
    assert parse("laplacian(u)") == Laplacian(u)
    assert not parse("div(grad(u))").has(Laplacian)


def test_equation_sides_and_selector() -> None:
    lhs, rhs = parse_equation("-div(k*grad(u)) = norm(grad(x*y))^2", SCOPE, HERE)
    assert sympy.expand(rhs - (x**2 + y**2)) == 0
    assert lhs.has(D(u, (x, 2)))
    where = Scope(variables=("x", "y"), spatial=("x", "y"), allow_unknowns=False, context="a selector")
    ((relation,),) = parse_selector("norm(grad(x^2 + y^2)) < 1", where, HERE)
    assert relation.op == "<" and relation.lhs == sympy.sqrt(4 * x**2 + 4 * y**2)


SUMS = [
    # x[i] inside a sum: derivatives wait for the index (they used to treat x[i] as a constant)
    ("sum(i, 1, 3, div(x[i]*grad(u)))", sum(D(UC, s) for s in (x1, x2, x3)) + (x1 + x2 + x3) * sum(D(UC, (s, 2)) for s in (x1, x2, x3))),
    ("sum(i, 1, 3, dot(grad(x[i]^2), grad(u)))", sum(2 * s * D(UC, s) for s in (x1, x2, x3))),
    ("sum(i, 1, 3, d(x[i]^2, x1))", 2 * x1),
    ("sum(i, 1, 3, laplacian(x[i]^2))", sympy.Integer(6)),
    ("sum(i, 1, 3, laplacian(x[i]*u))", (x1 + x2 + x3) * sum(D(UC, (s, 2)) for s in (x1, x2, x3)) + 2 * sum(D(UC, s) for s in (x1, x2, x3))),
    ("div(grad(u))", sum(D(UC, (s, 2)) for s in (x1, x2, x3))),
]


@pytest.mark.parametrize("text, expected", SUMS, ids=[s[0] for s in SUMS])
def test_vectors_and_derivatives_in_indexed_sums(text: str, expected: sympy.Expr) -> None:
    assert sympy.expand(parse(text, CUBE) - expected) == 0


ALONG = "is a vector (along x, y)"
REDUCE = "reduce the vector to a scalar with `div(…)`, `norm(…)` or `dot(…, …)`"
ERRORS = [
    ("u + grad(u)", 5, f"`grad(u)` {ALONG}, but `u` is a scalar and cannot be added to it: {REDUCE}"),
    ("grad(u) - 1", 1, f"`grad(u)` {ALONG}, but `1` is a scalar and cannot be added to it: {REDUCE}"),
    ("grad(u)", 1, f"`grad(u)` {ALONG}, but an equation must be a scalar: {REDUCE}"),
    ("sin(2*grad(u))", 7, f"`2*grad(u)` {ALONG}, but `sin` takes scalars: {REDUCE}"),
    ("where(x < 0, grad(u), 0)", 14, f"`grad(u)` {ALONG}, but `where` takes scalars: {REDUCE}"),
    ("d(grad(u), x)", 3, f"`grad(u)` {ALONG}, but `d` takes scalars: {REDUCE}"),
    ("laplacian(grad(u) + grad(v))", 11, f"`grad(u) + grad(v)` {ALONG}, but `laplacian` takes scalars: {REDUCE}"),
    ("sum(i, 1, 2, grad(u))", 14, f"`grad(u)` {ALONG}, but `sum` takes scalars: {REDUCE}"),
    ("1/grad(u)", 3, f"`grad(u)` {ALONG}, but nothing can be divided by a vector: {REDUCE}"),
    ("2^grad(u)", 3, f"`grad(u)` {ALONG}, but an exponent is a scalar: {REDUCE}"),
    ("grad(u)/0", 1, "division by zero"),
    ("grad(u)*grad(v)", 1, "the product of two vectors `grad(u)` and `grad(v)` is not defined: write `dot(grad(u), grad(v))`"),
    ("grad(u)^2", 1, "the vector `grad(u)` has no powers: for its squared length write `norm(grad(u))^2` or `dot(grad(u), grad(u))`"),
    ("(-grad(u))^2", 3, "the vector `-grad(u)` has no powers"),
    ("grad(grad(u))", 6, "`grad` takes a scalar, not the vector `grad(u)` (second-derivative tensors are not supported)"),
    ("grad(u, v)", 1, "`grad` takes one argument, e.g. `grad(u)` (2 given)"),
    ("div(u)", 1, "`div` takes a vector, e.g. `div(k*grad(u))`; `u` is a scalar"),
    ("div(grad(u), grad(v))", 1, "`div` takes one argument, e.g. `div(k*grad(u))` (2 given)"),
    ("norm(u_x)", 1, "`norm` takes a vector, e.g. `norm(grad(u))`; `u_x` is a scalar (write `abs(…)`)"),
    ("dot(grad(u), v)", 1, "`dot` takes two vectors; `v` is a scalar (multiply scalars with `*`)"),
    ("dot(grad(u))", 1, "`dot` takes two vectors, e.g. `dot(grad(u), grad(v))` (1 argument given)"),
    ("grad(x < 1)", 8, "a comparison is an argument of `where(…)` only, not of `grad`"),
    ("x + 2*(grad(u) + grad(v))", 8, f"`2*(grad(u) + grad(v))` {ALONG}, but `x` is a scalar and cannot be added to it"),
]


@pytest.mark.parametrize("text, col, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_a_vector_where_a_scalar_is_needed_is_a_located_error(text: str, col: int, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse(text)
    assert message in info.value.message
    assert (info.value.loc.line, info.value.loc.col) == (1, col)


def test_vector_errors_in_equations_selectors_and_index() -> None:
    with pytest.raises(SpecError, match=r"`grad\(u\)` is a vector \(along x, y\), but an equation is between scalars") as info:
        parse_equation("u = grad(u)", SCOPE, HERE)
    assert info.value.loc.col == 5
    where = Scope(variables=("x", "y"), spatial=("x", "y"), allow_unknowns=False, context="a selector")
    with pytest.raises(SpecError, match="but a comparison is between scalars") as info:
        parse_selector("grad(x) < 1", where, HERE)
    assert info.value.loc.col == 1
    with pytest.raises(SpecError, match="but an index is a whole number") as info:
        parse("x[grad(x1)]", CUBE)
    assert info.value.loc.col == 3


def test_vector_operators_need_spatial_variables_and_are_reserved() -> None:
    with pytest.raises(SpecError, match="`grad` needs spatial variables"):
        parse("norm(grad(1))", Scope(constants=("c",), allow_unknowns=False, context="constant `c`"))
    assert {"grad", "div", "norm", "dot"} <= RESERVED


def test_a_vector_operator_stays_inside_its_limits() -> None:
    """One component per spatial variable, like the terms of a `sum`; the derivative order bound holds."""
    many = tuple(f"x{i}" for i in range(1, 1002))
    scope = Scope(variables=many, spatial=many, unknowns=("u",))
    with pytest.raises(SpecError, match="`grad` over 1001 spatial variables; at most 1000"):
        parse("norm(grad(x1))", scope)
    with pytest.raises(SpecError, match="derivatives above order 4 are not supported"):
        parse("div(grad(laplacian(u_x)))")
