"""`define:` (named expressions of the variables) and the vector operators through the whole pipeline.

Defines are substituted where they are read, so the problem is compared with
hand-written SymPy; the compiled residual of a variable-coefficient equation
(``u_t - div(k*grad(u)) + nu*norm(grad(u))^2``) is compared with nested autograd
of the network; every error the section adds is pinned with its line and column.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import sympy
import torch

import pdec
from pdec.errors import SpecError
from pdec.show import describe
from pdec.plan.graph import plan
from pdec.spec.load import load_spec_text
from pdec.symbolic.problem import build_problem

FILE = "spec.yaml"

SPEC = """\
name: coefficients
domain:
  x: [0, 1]
  y: [0, 1]
time:
  t: [0, 1]
unknowns: [u]
constants:
  a: 2
parameters:
  nu: 0.5
define:
  r2: x^2 + y^2
  k: 1 + r2/a
equations:
  - u_t - div(k*grad(u)) + nu*norm(grad(u))^2 = exp(-r2)
conditions:
  - on: boundary and r2 < 1
    impose: u = r2*t
  - on: t = 0
    impose: u = k - 1
"""
"""Line numbers: constants 8-9, parameters 10-11, define 12-14, equations 15-16, conditions 17-21."""

MANUFACTURED = """\
domain: {x: [0, 1], y: [0, 1]}
unknowns: [u]
define:
  k: 1 + x^2
  s: sin(pi*x)*sin(pi*y)
equations:
  - -div(k*grad(u)) = 2*pi^2*k*s - 2*pi*x*cos(pi*x)*sin(pi*y)
conditions:
  - {on: boundary, impose: u = 0}
exact:
  u: s
"""
"""-∇·((1 + x²)∇u) = f with u = sin(πx) sin(πy), f worked out by hand."""

x, y, t, a, nu = sympy.symbols("x y t a nu", real=True)
U = sympy.Function("u", real=True)
u = U(x, y, t)


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def _problem(text: str):
    return build_problem(load_spec_text(text, FILE))


def test_defines_are_substituted_in_equations_conditions_and_selectors() -> None:
    problem = _problem(SPEC)
    r2 = x**2 + y**2
    k = 1 + r2 / a
    D = sympy.Derivative
    div = sympy.diff(k, x) * D(u, x) + k * D(u, (x, 2)) + sympy.diff(k, y) * D(u, y) + k * D(u, (y, 2))
    pde, bc, ic = problem.terms
    assert sympy.expand(pde.residual - (D(u, t) - div + nu * (D(u, x) ** 2 + D(u, y) ** 2) - sympy.exp(-r2))) == 0
    assert sympy.expand(bc.residual - (u - r2 * t)) == 0
    assert sympy.expand(ic.residual - (u - (k - 1))) == 0
    (filter_,) = bc.supports[0].relations
    assert filter_.op == "<" and sympy.expand(filter_.lhs - r2) == 0
    assert problem.defines == {"r2": r2, "k": k}
    assert not any(s.name in ("r2", "k") for term in problem.terms for s in term.residual.free_symbols)


def test_show_lists_the_defines_and_prints_the_residuals_in_full() -> None:
    problem = _problem(SPEC)
    text = describe(problem, plan(problem))
    assert "  defines    r2 = x^2 + y^2, k = 1 + (x^2 + y^2)/a" in text
    assert "r2" not in text.split("defines")[1].split("\n", 1)[1]


def test_manufactured_solution_satisfies_the_variable_coefficient_equation() -> None:
    """`pdec check` puts `exact` into the residual: silent when right, a warning when the coefficient differs."""
    assert _problem(MANUFACTURED).warnings == ()
    wrong = _problem(edit(MANUFACTURED, "k: 1 + x^2", "k: 1 + 2*x^2"))
    assert [w.message.split(":")[0] for w in wrong.warnings] == ["`exact` does not satisfy equation `pde`"]


def _grad(y: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    return torch.autograd.grad(y.sum(), X, create_graph=True)[0]


def test_compiled_residual_equals_nested_autograd(tmp_path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC, encoding="utf-8")
    problem = pdec.compile(path, overrides=["model.hidden=[7, 5]"], seed=4)
    X = torch.tensor(np.random.default_rng(1).random((40, 3)), dtype=torch.float64, requires_grad=True)
    g = _grad(problem.solution(X)[:, 0], X)
    k = 1 + (X[:, 0] ** 2 + X[:, 1] ** 2) / 2
    div = _grad(k * g[:, 0], X)[:, 0] + _grad(k * g[:, 1], X)[:, 1]
    expected = g[:, 2] - div + 0.5 * (g[:, 0] ** 2 + g[:, 1] ** 2) - torch.exp(-(X[:, 0] ** 2 + X[:, 1] ** 2))
    torch.testing.assert_close(problem.residuals(X.detach())["pde"], expected.detach(), rtol=1e-11, atol=1e-11)
    B = X.detach().clone()
    B[:, 0] = 0.0
    bc = problem.residual("bc1", B, torch.tensor([[-1.0, 0.0]], dtype=torch.float64).expand(40, 2))
    torch.testing.assert_close(bc, problem.solution(B)[:, 0] - B[:, 1] ** 2 * B[:, 2], rtol=1e-12, atol=1e-12)


def test_a_define_in_exact_and_in_an_exact_condition(tmp_path) -> None:
    text = edit(MANUFACTURED, "impose: u = 0}", "impose: u = 0, hard: true}")
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    problem = pdec.compile(path, overrides=["model.hidden=[4]"])
    X = torch.tensor([[0.25, 0.5], [0.5, 0.75]], dtype=torch.float64)
    s = torch.sin(torch.pi * X[:, 0]) * torch.sin(torch.pi * X[:, 1])
    torch.testing.assert_close(problem.exact(X)["u"], s)


def test_cube_defines_with_indexed_sums() -> None:
    text = """\
domain: {shape: cube, dim: 3}
unknowns: [u]
define:
  r2: sum(i, 1, 3, x[i]^2)
equations:
  - -div(exp(-r2)*grad(u)) = 1
"""
    (pde,) = _problem(text).terms
    xs = sympy.symbols("x1 x2 x3", real=True)
    w = sympy.exp(-sum(s**2 for s in xs))
    uc = sympy.Function("u", real=True)(*xs)
    expected = -sum(sympy.diff(w * sympy.Derivative(uc, s), s) for s in xs) - 1
    assert sympy.simplify(pde.residual - expected) == 0


ERRORS = [
    pytest.param(
        edit(SPEC, "  a: 2\n", "  a: 2\n  c: 1 + x^2\n"), 10, 10,
        "constant `c` depends on the variable `x`, but a constant is a number: move `c` under `define:`, which names expressions of the variables",
        id="constant-uses-variable",
    ),
    pytest.param(
        edit(SPEC, "  a: 2\n", "  a: 2*t\n"), 9, 8,
        "constant `a` depends on the variable `t`, but a constant is a number", id="constant-uses-time",
    ),
    pytest.param(
        edit(SPEC, "  a: 2\n", "  a: 2\n  c: k + 1\n"), 10, 6,
        "constant `c` uses `k`, an expression of the variables from `define:`: move `c` there too", id="constant-uses-define",
    ),
    pytest.param(
        edit(SPEC, "  a: 2\n", "  a: 2\n  c: kk + 1\n"), 10, 6, "undefined name `kk`", id="constant-typo-stays-a-typo",
    ),
    pytest.param(
        edit(SPEC, "  r2: x^2 + y^2\n  k: 1 + r2/a\n", "  k: 1 + r2/a\n  r2: x^2 + y^2\n"), 13, 10,
        "`r2` is defined below `k`: a define may use only the defines above it (move `r2` up)", id="forward-reference",
    ),
    pytest.param(
        edit(SPEC, "  k: 1 + r2/a\n", "  k: 1 + r2/k\n"), 14, 13,
        "define `k` is written in terms of itself: a define is an abbreviation, not an equation", id="self-reference",
    ),
    pytest.param(
        edit(SPEC, "  r2: x^2 + y^2\n  k: 1 + r2/a\n", "  r2: k + 1\n  k: r2\n"), 13, 7,
        "`k` is defined below `r2`", id="cycle",
    ),
    pytest.param(edit(SPEC, "  k: 1 + r2/a\n", "  k: 1 + u_x\n"), 14, 10, "the unknown `u` cannot appear in define `k`", id="unknown"),
    pytest.param(
        edit(SPEC, "  k: 1 + r2/a\n", "  k: 1 + nu*x\n"), 14, 10, "the learnable parameter `nu` cannot appear in define `k`", id="parameter",
    ),
    pytest.param(
        edit(SPEC, "  k: 1 + r2/a\n", "  k: grad(r2)\n"), 14, 6,
        "`grad(x^2 + y^2)` is a vector (along x, y), but define `k` must be a scalar: reduce the vector to a scalar with "
        "`div(…)`, `norm(…)` or `dot(…, …)`",
        id="vector-define",
    ),
    pytest.param(edit(SPEC, "  r2: x^2", "  y: x^2"), 13, 3, "`y` is both a variable and a define: names must be unique", id="clash-variable"),
    pytest.param(edit(SPEC, "  r2: x^2", "  u: x^2"), 13, 3, "`u` is both an unknown and a define: names must be unique", id="clash-unknown"),
    pytest.param(edit(SPEC, "  r2: x^2", "  a: x^2"), 13, 3, "`a` is both a constant and a define: names must be unique", id="clash-constant"),
    pytest.param(edit(SPEC, "  r2: x^2", "  nu: x^2"), 13, 3, "`nu` is both a parameter and a define: names must be unique", id="clash-parameter"),
    pytest.param(edit(SPEC, "  r2: x^2", "  grad: x^2"), 13, 3, "`grad` is a built-in name and cannot be used as a define name", id="reserved"),
    pytest.param(edit(SPEC, "  r2: x^2", "  2r: x^2"), 13, 3, "invalid define name `2r`: use letters, digits and `_`", id="invalid-name"),
    pytest.param(edit(SPEC, "  r2: x^2 + y^2\n", "  r2:\n"), 13, 6, "`define.r2` must be text (nothing given)", id="empty-value"),
    pytest.param(edit(SPEC, "define:\n", "defines:\n"), 12, 1, "unknown key `defines` in the spec. Did you mean `define`?", id="misspelt-section"),
    pytest.param(
        edit(SPEC, "  - u_t - div(k*grad(u))", "  - u_t - k*grad(u)"), 16, 13,
        "`(1 + (x^2 + y^2)/a)*grad(u)` is a vector (along x, y), but `u_t` is a scalar and cannot be added to it", id="vector-in-equation",
    ),
    pytest.param(
        edit(SPEC, "impose: u = r2*t", "impose: grad(u) = grad(r2*t)"), 19, 13,
        "`grad(u)` is a vector (along x, y), but an equation is between scalars", id="vector-condition",
    ),
]


@pytest.mark.parametrize("text, line, col, message", ERRORS)
def test_errors_are_located(text: str, line: int, col: int, message: str) -> None:
    with pytest.raises(SpecError) as info:
        _problem(text)
    assert message in info.value.message
    assert (info.value.loc.line, info.value.loc.col) == (line, col)


def test_defines_that_double_are_refused_before_they_hang() -> None:
    """``a{i}: a{i-1}*(a{i-1} + 1)`` doubles the written-out size at each line: refused at the
    define that passes the expression limit, in well under a second."""
    chain = "".join(f"  a{i}: a{i - 1}*(a{i - 1} + 1)\n" for i in range(1, 40))
    start = time.process_time()
    with pytest.raises(SpecError, match="expression has more than 50000 parts once its defines are written out") as info:
        load_spec_text(edit(SPEC, "define:\n", "define:\n  a0: x + 1\n" + chain), FILE)
    assert time.process_time() - start < 5
    assert (info.value.loc.line, info.value.loc.col) == (13 + 14, 8)  # a14: 2^14 copies of x + 1


def test_many_defines_take_linear_time() -> None:
    chain = "".join(f"  d{i}: d{i - 1} + x\n" for i in range(1, 3000))
    start = time.process_time()
    spec = load_spec_text(edit(SPEC, "define:\n", "define:\n  d0: x\n" + chain), FILE)
    assert spec.defines[2999].expr == 3000 * x
    assert time.process_time() - start < 15
