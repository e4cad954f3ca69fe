"""The expression language's semantics, each against an independent SymPy construction.

The expected values are written with SymPy's own operators (never by parsing
text), so a test fails when pdec's grammar or transformer disagrees with the
mathematics, not just when it changes.
"""

from __future__ import annotations

import re
import pytest
import sympy

from pdec.errors import Loc, SpecError
from pdec.lang.nodes import Laplacian, NormalDerivative, expand_laplacians
from pdec.lang.parse import parse_equation, parse_expr, parse_selector
from pdec.lang.printer import to_text
from pdec.symbolic.problem import build_problem
from pdec.lang.scope import Scope
from pdec.lang.selector import BOUNDARY, Relation
from pdec.plan.graph import plan
from pdec.spec.load import load_spec_text
from spec_templates import BURGERS, HEAT, POISSON2D

HERE = Loc("expr", 1, 1)

x, y, t = sympy.symbols("x y t", real=True)
a, b, c = sympy.symbols("a b c", real=True)
x1, x2, x3 = sympy.symbols("x1 x2 x3", real=True)
U = sympy.Function("u", real=True)
V = sympy.Function("v", real=True)
u, v = U(x, y, t), V(x, y, t)

SCOPE = Scope(
    variables=("x", "y", "t"), spatial=("x", "y"), time="t", unknowns=("u", "v"), constants=("a", "b", "c")
)
CONDITION = Scope(
    variables=("x", "y", "t"), spatial=("x", "y"), time="t", unknowns=("u", "v"), allow_dn=True, context="a condition"
)
WHERE = Scope(variables=("x", "y"), spatial=("x", "y"), allow_unknowns=False, context="a selector")
CUBE = Scope(variables=("x1", "x2", "x3"), spatial=("x1", "x2", "x3"), unknowns=("u",), indexed={"x": ("x1", "x2", "x3")})


def parse(text: str, scope: Scope = SCOPE) -> sympy.Expr:
    return parse_expr(text, scope, HERE)


# -- arithmetic ----------------------------------------------------------------

PRECEDENCE = [
    ("-x^2", -(x**2)),
    ("(-x)^2", x**2),
    ("2^3^2", sympy.Integer(512)),
    ("(2^3)^2", sympy.Integer(64)),
    ("x^y^t", x ** (y**t)),
    ("a/b*c", (a / b) * c),
    ("a/(b*c)", a / (b * c)),
    ("a-b-c", (a - b) - c),
    ("a-(b-c)", a - (b - c)),
    ("a+b*c^2", a + b * c**2),
    ("-a*b", -(a * b)),
    ("a^-b", a ** (-b)),
    ("2*-x", -2 * x),
    ("+x", x),
    ("e^x", sympy.exp(x)),
    ("pi", sympy.pi),
    ("abs(x)*sqrt(y)", sympy.Abs(x) * sympy.sqrt(y)),
    ("sin(x)^2 + cos(x)^2", sympy.sin(x) ** 2 + sympy.cos(x) ** 2),
    ("tanh(log(exp(x)))", sympy.tanh(x)),
]


@pytest.mark.parametrize("text, expected", PRECEDENCE, ids=[p[0] for p in PRECEDENCE])
def test_precedence(text: str, expected: sympy.Expr) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["x^y", "2^3^2", "x^y^t", "-x^2", "a^-b", "(x+1)^(1/2)"])
def test_double_star_is_caret(text: str) -> None:
    assert parse(text.replace("^", "**")) == parse(text)


@pytest.mark.parametrize(
    "text, expected",
    [("0.5", sympy.Rational(1, 2)), ("1e-3", sympy.Rational(1, 1000)), ("2.5E2", sympy.Integer(250)), (".1", sympy.Rational(1, 10))],
)
def test_numbers_are_exact_rationals(text: str, expected: sympy.Rational) -> None:
    """Decimal text is read exactly: 0.1 is 1/10, not the float nearest to it."""
    value = parse(text)
    assert value == expected
    assert value.is_Rational


def test_unknown_depends_on_every_variable() -> None:
    assert parse("u") == U(x, y, t)
    assert parse("u + v") == u + v


# -- derivatives -----------------------------------------------------------------


@pytest.mark.parametrize("text", ["u_xy", "u_yx", "d(u, x, y)", "d(u, y, x)", "d(d(u, x), y)", "d(u_x, y)", "d(u_y, x)"])
def test_mixed_derivative_forms_agree(text: str) -> None:
    assert parse(text) == sympy.Derivative(u, x, y) == sympy.diff(u, y, x)


@pytest.mark.parametrize("text", ["d(u, x, 3)", "u_xxx", "d(u, x, x, x)", "d(u_xx, x)", "d(u, x, 2, x)"])
def test_third_derivative_forms_agree(text: str) -> None:
    assert parse(text) == sympy.Derivative(u, (x, 3))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("u_t", sympy.Derivative(u, t)),
        ("u_xxyy", sympy.Derivative(u, (x, 2), (y, 2))),
        ("d(u, x, 2, y)", sympy.Derivative(u, (x, 2), y)),
        ("d(u, t, 4)", sympy.Derivative(u, (t, 4))),
        ("d(u*v, x)", sympy.diff(u * v, x)),
        ("d(sin(u), x, y)", sympy.diff(sympy.sin(u), x, y)),
        ("d(x^2*y, x)", 2 * x * y),
    ],
)
def test_derivatives(text: str, expected: sympy.Expr) -> None:
    assert parse(text) == expected


def test_derivative_order_limit() -> None:
    assert parse("u_xxxx") == sympy.Derivative(u, (x, 4))
    with pytest.raises(SpecError, match="derivatives above order 4 are not supported"):
        parse("d(u_xxxx, y)")


def test_laplacian_stays_one_node() -> None:
    lap = parse("laplacian(u)")
    assert lap == Laplacian(u)
    assert isinstance(lap, Laplacian) and lap.args == (u,)
    assert not lap.has(sympy.Derivative)
    assert expand_laplacians(lap, (x, y)) == sympy.diff(u, x, 2) + sympy.diff(u, y, 2)


def test_bilaplacian_nests() -> None:
    bilap = parse("laplacian(laplacian(u))")
    assert bilap == Laplacian(Laplacian(u))
    assert isinstance(bilap.args[0], Laplacian)
    spatial = (x, y)
    expected = sum(sympy.diff(u, p, 2, q, 2) for p in spatial for q in spatial)
    assert sympy.expand(expand_laplacians(bilap, spatial) - expected) == 0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("laplacian(2*u + 3*v)", 2 * Laplacian(u) + 3 * Laplacian(v)),
        ("laplacian(a*u - v/2)", a * Laplacian(u) - Laplacian(v) / 2),
        ("laplacian(u + x^2*y)", Laplacian(u) + 2 * y),
    ],
)
def test_laplacian_distributes_over_linear_combinations(text: str, expected: sympy.Expr) -> None:
    assert parse(text) == expected


def test_laplacian_of_a_product_is_expanded_correctly() -> None:
    expected = sympy.diff(x * u, x, 2) + sympy.diff(x * u, y, 2)
    assert sympy.expand(parse("laplacian(x*u)") - expected) == 0


def test_derivative_of_laplacian_expands() -> None:
    """No Taylor stream carries d(laplacian(u), x): it becomes third derivatives."""
    result = parse("d(laplacian(u), x)")
    assert not result.has(Laplacian)
    assert result == sympy.Derivative(u, (x, 3)) + sympy.Derivative(u, x, (y, 2))


def test_normal_derivative_only_in_conditions() -> None:
    assert parse("dn(u)", CONDITION) == NormalDerivative(u)
    with pytest.raises(SpecError, match="`dn` .* is only allowed in conditions, not in an equation"):
        parse("dn(u)")


def test_equation_sides() -> None:
    lhs, rhs = parse_equation("u_t = a*laplacian(u) + sin(x)", SCOPE, HERE)
    assert lhs == sympy.Derivative(u, t)
    assert rhs == a * Laplacian(u) + sympy.sin(x)


# -- indexed sums on a cube --------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("sum(i, 1, 3, x[i])", x1 + x2 + x3),
        ("sum(i, 1, 3, sin(pi*x[i]))", sympy.sin(sympy.pi * x1) + sympy.sin(sympy.pi * x2) + sympy.sin(sympy.pi * x3)),
        ("sum(i, 2, 3, i*x[i]^2)", 2 * x2**2 + 3 * x3**2),
        ("sum(i, 1, 2, sum(j, 1, 3, x[i]*x[j]))", sympy.expand((x1 + x2) * (x1 + x2 + x3))),
        ("x[2]", x2),
        ("u_x1x2", sympy.Derivative(U(x1, x2, x3), x1, x2)),
    ],
)
def test_indexed_sums(text: str, expected: sympy.Expr) -> None:
    assert parse(text, CUBE) == expected


def test_sum_of_derivatives_along_indexed_variables() -> None:
    w = U(x1, x2, x3)
    assert parse("sum(i, 1, 3, d(u, x[i], 2))", CUBE) == sum(sympy.Derivative(w, (s, 2)) for s in (x1, x2, x3))


def test_index_out_of_range() -> None:
    with pytest.raises(SpecError, match=r"index 4 of `x` is out of range 1\.\.3"):
        parse("x[4]", CUBE)


# -- selectors -------------------------------------------------------------------


def test_selector_and_binds_tighter_than_or() -> None:
    dnf = parse_selector("x = 0 or x = 1 and y > 0.5", WHERE, HERE)
    assert [[(r.lhs, r.op, r.rhs) for r in clause] for clause in dnf] == [
        [(x, "=", 0)],
        [(x, "=", 1), (y, ">", sympy.Rational(1, 2))],
    ]
    # each relation remembers where its operator stands
    assert [r.loc.col for clause in dnf for r in clause] == [3, 12, 22]


def test_selector_and_distributes_over_or() -> None:
    dnf = parse_selector("x = 0 or y = 0 and boundary", WHERE, HERE)
    assert len(dnf) == 2
    assert dnf[1][1] == BOUNDARY
    assert isinstance(dnf[1][0], Relation) and (dnf[1][0].lhs, dnf[1][0].rhs) == (y, 0)


def test_selector_chained_comparison() -> None:
    (clause,) = parse_selector("0 < x <= 1", WHERE, HERE)
    assert [(r.lhs, r.op, r.rhs) for r in clause] == [(0, "<", x), (x, "<=", 1)]


def test_selector_parentheses_get_a_selector_message() -> None:
    with pytest.raises(SpecError) as info:
        parse_selector("(x = 0 or x = 1) and y > 0.5", WHERE, HERE)
    assert "equation" not in info.value.message


# -- the plan: canonical names and linearity -------------------------------------


def _graph(text: str):
    return plan(build_problem(load_spec_text(text, "spec.yaml")))


def test_heat_plan() -> None:
    graph = _graph(HEAT)
    assert graph.variables == ("x", "t")
    terms = {tp.name: tp for tp in graph.terms}
    assert [n.name for n in terms["pde"].needs] == ["d(u,t)", "d(u,x,x)"]
    assert terms["pde"].linear and terms["pde"].order == 2
    assert [n.name for n in terms["bc1"].needs] == ["u"]
    assert (terms["bc1"].kind, terms["ic1"].kind) == ("boundary", "initial")
    assert all(tp.linear for tp in graph.terms)
    assert graph.max_order == 2


def test_burgers_is_nonlinear() -> None:
    graph = _graph(BURGERS)
    pde = graph.terms[0]
    assert pde.name == "pde" and not pde.linear
    assert [n.name for n in pde.needs] == ["u", "d(u,x)", "d(u,t)", "d(u,x,x)"]
    # the displayed residual is lhs - rhs in the spec language, and reads back as such
    scope = Scope(variables=("x", "t"), spatial=("x",), time="t", unknowns=("u",), constants=("nu",))
    w, nu = sympy.Function("u", real=True)(x, t), sympy.Symbol("nu", real=True)
    expected = sympy.Derivative(w, t) + w * sympy.Derivative(w, x) - nu * sympy.Derivative(w, (x, 2))
    assert parse(pde.residual, scope) == expected


def test_poisson_plan_uses_one_laplacian_stream() -> None:
    graph = _graph(POISSON2D)
    pde = graph.terms[0]
    assert [n.name for n in pde.needs] == ["laplacian(u)"]
    assert pde.linear and pde.order == 2


@pytest.mark.parametrize(
    "equation, names, linear",
    [
        ("laplacian(laplacian(u)) = 0", ["laplacian(laplacian(u))"], True),
        ("u_yx + u_xxyy = 0", ["d(u,x,y)", "d(u,x,x,y,y)"], True),
        ("u_xx*u_yy - u_xy^2 = 1", ["d(u,x,x)", "d(u,x,y)", "d(u,y,y)"], False),
        ("sin(u) = x", ["u"], False),
        ("exp(x)*u_x = 0", ["d(u,x)"], True),
    ],
)
def test_plan_names_and_linearity(equation: str, names: list[str], linear: bool) -> None:
    text = POISSON2D.replace("-laplacian(u) = 2*pi^2*sin(pi*x)*sin(pi*y)", equation).replace("exact:\n  u: sin(pi*x)*sin(pi*y)\n", "")
    pde = _graph(text).terms[0]
    assert [n.name for n in pde.needs] == names
    assert pde.linear is linear


# -- the printer: exact text and value (STYLE #8) ----------------------------------

PRINTED = [
    (-(x**2), "-x^2"),
    (1 / x, "1/x"),
    (1 / (x + 1), "1/(1 + x)"),
    (sympy.sqrt(x), "sqrt(x)"),
    (1 / sympy.sqrt(x), "1/sqrt(x)"),
    (x ** sympy.Rational(2, 3), "x^(2/3)"),
    (2 ** (-x), "2^(-x)"),
    (x ** (y**t), "x^(y^t)"),
    ((x + y) ** 2, "(x + y)^2"),
    (sympy.E, "e"),
    (sympy.exp(x), "exp(x)"),
    (sympy.Abs(x), "abs(x)"),
    (sympy.Rational(1, 3) * x, "x/3"),
    (sympy.pi * x, "pi*x"),
    (sympy.Derivative(u, x, y), "u_xy"),
    (sympy.Derivative(u, (x, 2)), "u_xx"),
    (sympy.Derivative(u, t), "u_t"),
    (u**2 * sympy.Derivative(u, x), "u^2*u_x"),
    (Laplacian(u), "laplacian(u)"),
    (Laplacian(Laplacian(u)), "laplacian(laplacian(u))"),
]
PRINTED = [pytest.param(expr, text, id=text) for expr, text in PRINTED] + [
    pytest.param((x**y) ** t, "(x^y)^t", id="(x^y)^t"),
]


def _value(expr: sympy.Expr) -> complex:
    """``expr`` at a point, with u, v replaced by smooth functions (derivatives done by SymPy)."""
    concrete = {u: sympy.sin(x + 2 * y) * sympy.exp(t / 3), v: sympy.cos(x * y) + t}
    expr = expand_laplacians(expr, (x, y)).subs(concrete).doit()
    return complex(expr.subs({x: sympy.Rational(3, 10), y: sympy.Rational(7, 10), t: sympy.Rational(1, 5)}).evalf(30))


@pytest.mark.parametrize("expr, text", PRINTED)
def test_printer_text_and_value(expr: sympy.Expr, text: str) -> None:
    assert to_text(expr) == text
    back = parse(text)
    assert back == expr
    assert _value(back) == pytest.approx(_value(expr), rel=1e-12)


def test_printer_normal_derivative() -> None:
    assert to_text(NormalDerivative(u)) == "dn(u)"
    assert parse("dn(u)", CONDITION) == NormalDerivative(u)


def test_printer_names_multi_letter_variables_with_d() -> None:
    w = U(x1, x2, x3)
    assert to_text(sympy.Derivative(w, x1, x2)) == "d(u, x1, x2)"
    assert parse("d(u, x1, x2)", CUBE) == sympy.Derivative(w, x1, x2)


def test_min_max_heaviside_sech_through_the_pipeline(tmp_path):
    """The new functions parse, print to torch and evaluate in the emitted residual as NumPy says."""
    import numpy as np
    import torch

    import pdec

    spec = tmp_path / "f.yaml"
    spec.write_text(
        "name: f\ndomain: {x: [-1, 1], y: [0, 1]}\nunknowns: [u]\n"
        "equations:\n  - laplacian(u) = max(x, 0.25)*heaviside(y - 0.5) + sech(2*x) - min(x, y, 0.75) + max(x, y)\n"
        "conditions:\n  - {on: boundary, impose: u = 0}\n",
        encoding="utf-8",
    )
    problem = pdec.compile(spec, overrides=["model.hidden=[4]"])
    g = np.random.default_rng(0)
    X = np.c_[g.uniform(-1, 1, 50), g.uniform(0, 1, 50)]
    X[0] = [0.1, 0.5]  # heaviside(0) = 1/2
    x, y = X[:, 0], X[:, 1]
    forcing = np.maximum(x, 0.25) * np.heaviside(y - 0.5, 0.5) + 1 / np.cosh(2 * x) - np.minimum(np.minimum(x, y), 0.75) + np.maximum(x, y)
    Xt = torch.tensor(X)
    lap = problem.values(Xt)["laplacian(u)"].detach().numpy()
    np.testing.assert_allclose(problem.residuals(Xt)["pde"].detach().numpy(), lap - forcing, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("text, message", [("max(x)", "`max` takes two or more arguments, got 1"), ("sech(x, y)", "`sech` takes one argument, got 2")])
def test_function_arity_errors(text, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        parse_expr(text, Scope(variables=("x", "y")), Loc("spec.yaml", 1, 1, text))


def test_where_through_the_pipeline_and_back_to_text(tmp_path):
    """`where(cond, a, b)` parses to a Piecewise, prints back in the language (round trip), and the
    emitted residual equals NumPy's value; comparisons elsewhere are refused where they stand."""
    import numpy as np
    import torch

    import pdec

    x = sympy.Symbol("x", real=True)
    scope = Scope(variables=("x", "y"))
    expr = parse_expr("where(x < 0.5, x^2, 1 - x)", scope, Loc("s", 1, 1, ""))
    assert expr == sympy.Piecewise((x**2, x < sympy.Rational(1, 2)), (1 - x, True))
    assert parse_expr(to_text(expr), scope, Loc("s", 1, 1, "")) == expr
    spec = tmp_path / "w.yaml"
    spec.write_text(
        "name: w\ndomain: {x: [0, 1], y: [0, 1]}\nunknowns: [u]\n"
        "equations:\n  - laplacian(u) = where(x + y >= 1, sin(x), max(y, 0.5))\n"
        "conditions:\n  - {on: boundary, impose: u = 0}\n",
        encoding="utf-8",
    )
    problem = pdec.compile(spec, overrides=["model.hidden=[4]"])
    X = np.random.default_rng(1).random((40, 2))
    forcing = np.where(X[:, 0] + X[:, 1] >= 1, np.sin(X[:, 0]), np.maximum(X[:, 1], 0.5))
    Xt = torch.tensor(X)
    lap = problem.values(Xt)["laplacian(u)"].detach().numpy()
    np.testing.assert_allclose(problem.residuals(Xt)["pde"].detach().numpy(), lap - forcing, rtol=1e-13, atol=1e-13)
    for text, message in [("sin(x < 1)", "a comparison is an argument of `where(…)` only"), ("where(x, 1, 2)", "`where` takes a comparison and two values")]:
        with pytest.raises(SpecError, match=re.escape(message)):
            parse_expr(text, scope, Loc("s", 1, 1, text))


def test_a_derivative_across_a_where_jump_is_refused():
    scope = Scope(variables=("x", "y"))
    with pytest.raises(SpecError, match="differentiates a `where` across its jump"):
        parse_expr("d(where(x < 0.5, x, 1), x)", scope, Loc("s", 1, 1, ""))
    assert parse_expr("d(where(y < 0.5, x, 1), x)", scope, Loc("s", 1, 1, "")).has(sympy.Piecewise)
