"""Exact conditions (`hard: true`): ``u = G + φ·N`` meets the data to rounding, its derivatives
equal nested autograd of ``G + φ·N``, the residuals trained are the spec's, and conditions that
cannot be exact are refused with a located error."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import pdec
from pdec.errors import SpecError

WAVE = """
name: wave
domain: {x: [0, 1]}
time: {t: [0, 0.5]}
unknowns: [u]
equations:
  - u_tt = 4*u_xx + x*u
conditions:
  - {name: left, on: x = 0, impose: u = sin(t), hard: true}
  - {name: right, on: x = 1, impose: u = t^2, hard: true}
  - {name: shape, on: t = 0, impose: u = x^2*(1 - x)^2 + 0*x, hard: true}
  - {name: speed, on: t = 0, impose: u_t = 1 - x, hard: true}
"""
"""Different data on every piece, an imposed rate, compatible where the pieces meet:
the Boolean sum of three projectors, one of them Hermite."""

HEAT_SQUARE = """
name: heat2
domain: {x: [-1, 2], y: [0, 1]}
time: {t: [0, 1]}
unknowns: [u]
equations:
  - u_t = laplacian(u) + u*u_x
conditions:
  - {name: walls, on: boundary, impose: u = exp(-t)*cos(x + y), hard: true}
  - {name: start, on: t = 0, impose: u = cos(x + y) + x*(x + 1)*(x - 2)*y*(1 - y), hard: true}
  - {name: flux, on: y = 0, impose: dn(u) = 0}
"""
"""The whole box boundary (one expression) with different initial data and a soft Neumann term."""

DISK = """
name: disk
domain: {shape: ball, variables: [x, y], center: [0.5, 0], radius: 2}
unknowns: [u]
equations:
  - -laplacian(laplacian(u)) + u = x
conditions:
  - {on: boundary, impose: 2*u = x^2 - y, hard: true}
  - {on: boundary, impose: dn(u) = 0}
"""
"""A ball's sphere, a coefficient on the unknown, and a bilaplacian (expanded, not collapsed)."""


def _problem(tmp_path, text: str, name: str = "spec.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return pdec.compile(path, overrides=["model.hidden=[6, 5]"], seed=3)


def _points(problem, n: int = 40, seed: int = 0) -> torch.Tensor:
    g = np.random.default_rng(seed)
    d = problem.definition.domain
    if hasattr(d, "radius"):
        r = d.radius * np.sqrt(g.random(n)) * 0.99
        a = 2 * np.pi * g.random(n)
        X = np.c_[d.center[0] + r * np.cos(a), d.center[1] + r * np.sin(a)]
    else:
        X = np.asarray(d.lo) + (np.asarray(d.hi) - np.asarray(d.lo)) * g.random((n, len(d.lo)))
    if problem.definition.time_interval:
        t0, t1 = problem.definition.time_interval
        X = np.c_[X, t0 + (t1 - t0) * g.random(n)]
    return torch.tensor(X, dtype=torch.float64, requires_grad=True)


def _grad(y: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    return torch.autograd.grad(y.sum(), X, create_graph=True)[0]


def test_wave_meets_every_piece_to_rounding(tmp_path):
    problem = _problem(tmp_path, WAVE)
    n = 50
    t = torch.linspace(0, 0.5, n, dtype=torch.float64)
    x = torch.linspace(0, 1, n, dtype=torch.float64)
    zeros, ones = torch.zeros(n, dtype=torch.float64), torch.ones(n, dtype=torch.float64)
    left = problem.solution(torch.stack([zeros, t], 1))[:, 0]
    right = problem.solution(torch.stack([ones, t], 1))[:, 0]
    torch.testing.assert_close(left, torch.sin(t), rtol=0, atol=1e-14)
    torch.testing.assert_close(right, t**2, rtol=0, atol=1e-14)
    X0 = torch.stack([x, zeros], 1).requires_grad_(True)
    u0 = problem.solution(X0)[:, 0]
    torch.testing.assert_close(u0, x**2 * (1 - x) ** 2, rtol=0, atol=1e-14)
    torch.testing.assert_close(_grad(u0, X0)[:, 1], 1 - x, rtol=0, atol=1e-13)
    assert [t.name for t in problem.definition.terms] == ["pde"]


def _u_and_autograd(problem, X):
    u = problem.solution(X)[:, 0]
    g = _grad(u, X)
    return u, g


def test_wave_derivatives_and_residual_equal_nested_autograd(tmp_path):
    problem = _problem(tmp_path, WAVE)
    X = _points(problem)
    u, g = _u_and_autograd(problem, X)
    u_xx = _grad(g[:, 0], X)[:, 0]
    u_tt = _grad(g[:, 1], X)[:, 1]
    values = problem.values(X.detach())
    torch.testing.assert_close(values["u"], u.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(values["d(u,x,x)"], u_xx.detach(), rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(values["d(u,t,t)"], u_tt.detach(), rtol=1e-11, atol=1e-11)
    residual = problem.residuals(X.detach())["pde"]
    torch.testing.assert_close(residual, (u_tt - 4 * u_xx - X[:, 0] * u).detach(), rtol=1e-11, atol=1e-11)


def test_box_boundary_with_other_initial_data(tmp_path):
    problem = _problem(tmp_path, HEAT_SQUARE)
    g = torch.Generator().manual_seed(0)
    t = torch.rand(30, generator=g, dtype=torch.float64)
    s = torch.rand(30, generator=g, dtype=torch.float64)
    for X in (torch.stack([-1 + 0 * s, s, t], 1), torch.stack([3 * s - 1, 1 + 0 * s, t], 1)):
        torch.testing.assert_close(
            problem.solution(X)[:, 0], torch.exp(-X[:, 2]) * torch.cos(X[:, 0] + X[:, 1]), rtol=0, atol=1e-14
        )
    X = torch.stack([3 * s - 1, s, 0 * t], 1)
    x, y = X[:, 0], X[:, 1]
    torch.testing.assert_close(
        problem.solution(X)[:, 0], torch.cos(x + y) + x * (x + 1) * (x - 2) * y * (1 - y), rtol=0, atol=1e-14
    )
    X = _points(problem)
    u, gr = _u_and_autograd(problem, X)
    lap = _grad(gr[:, 0], X)[:, 0] + _grad(gr[:, 1], X)[:, 1]
    expected = gr[:, 2] - lap - u * gr[:, 0]
    torch.testing.assert_close(problem.residuals(X.detach())["pde"], expected.detach(), rtol=1e-11, atol=1e-11)
    # the soft Neumann term on y = 0 is trained in N but means the spec's dn(u) = -u_y
    B = torch.stack([3 * s - 1, 0 * s, t], 1).requires_grad_(True)
    u_y = _grad(problem.solution(B)[:, 0], B)[:, 1]
    normals = torch.tensor([[0.0, -1.0]], dtype=torch.float64).expand(30, 2)
    torch.testing.assert_close(problem.residual("flux", B.detach(), normals), -u_y.detach(), rtol=1e-11, atol=1e-11)


def test_disk_bilaplacian(tmp_path):
    problem = _problem(tmp_path, DISK)
    a = torch.linspace(0, 2 * np.pi, 25, dtype=torch.float64)
    X = torch.stack([0.5 + 2 * torch.cos(a), 2 * torch.sin(a)], 1)
    torch.testing.assert_close(problem.solution(X)[:, 0], (X[:, 0] ** 2 - X[:, 1]) / 2, rtol=0, atol=1e-13)
    X = _points(problem)
    u, g = _u_and_autograd(problem, X)
    lap = _grad(g[:, 0], X)[:, 0] + _grad(g[:, 1], X)[:, 1]
    gl = _grad(lap, X)
    bilap = _grad(gl[:, 0], X)[:, 0] + _grad(gl[:, 1], X)[:, 1]
    expected = -bilap + u - X[:, 0]
    torch.testing.assert_close(problem.residuals(X.detach())["pde"], expected.detach(), rtol=1e-9, atol=1e-9)


def test_predict_and_export_report_u_not_n(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(WAVE), encoding="utf-8")
    out = tmp_path / "run"
    result = pdec.solve(path, out=out, steps=2, optimizer="adam", settings=["model.hidden=[6]"])
    run = pdec.load(out)
    X = np.array([[0.0, 0.3], [1.0, 0.2], [0.5, 0.0]])
    u = run.predict(X)["u"].numpy()
    np.testing.assert_allclose(u, [np.sin(0.3), 0.04, 0.0625], rtol=0, atol=1e-14)
    assert result.summary["steps"] == 2
    model = tmp_path / "model.pt"
    run.export(model)
    code = (
        f"import json, torch; m = torch.jit.load({str(model)!r}); "
        f"print(json.dumps(m(torch.tensor({X.tolist()}, dtype=torch.float64))[:, 0].tolist()))"
    )
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    np.testing.assert_allclose(json.loads(printed), u, rtol=1e-13, atol=1e-15)


CANNOT = {
    "a derivative": ("x = 0", "u_x = 0", "`u_x` cannot be imposed exactly"),
    "a nonlinear condition": ("x = 0", "u^2 = 1", "linear with a constant coefficient"),
    "part of a face": ("x = 0 and t > 0.1", "u = 0", "`and` restricts it to a part"),
    "two unknown terms": ("x = 0", "u = u_t", "this condition involves"),
    "data that jump": ("t = 0", "u = where(x < 0.5, 1, 0)", "exact data must be smooth"),
}


@pytest.mark.parametrize("case", CANNOT, ids=list(CANNOT))
def test_conditions_that_cannot_be_exact(tmp_path, case):
    on, impose, message = CANNOT[case]
    text = f"""
name: bad
domain: {{x: [0, 1]}}
time: {{t: [0, 1]}}
unknowns: [u]
equations:
  - u_t = u_xx
conditions:
  - on: {on}
    impose: {impose}
    hard: true
"""
    with pytest.raises(SpecError, match=message) as info:
        _problem(tmp_path, text)
    assert info.value.loc is not None and info.value.loc.line == 10


def test_incompatible_data_is_refused_where_it_meets(tmp_path):
    text = WAVE.replace("impose: u = t^2", "impose: u = t^2 + 1")
    with pytest.raises(SpecError, match="disagree where they meet"):
        _problem(tmp_path, text)


def test_hard_belongs_to_impose_and_periodic(tmp_path):
    (tmp_path / "obs.csv").write_text("x,t,u\n0.5,0.1,0.2\n", encoding="utf-8")
    text = WAVE.replace("- {name: speed", "- {data: obs.csv, hard: true}\n  - {name: speed")
    with pytest.raises(SpecError, match="`hard` belongs to `impose` or `periodic`"):
        _problem(tmp_path, text)


def test_zero_data_beside_a_normal_derivative(tmp_path):
    """G = 0 (a number) and a soft `dn` condition elsewhere: dn(G) is 0, not a node to fold."""
    text = """
name: mixed
domain: {x: [0, 1], y: [0, 1]}
unknowns: [u]
equations:
  - -laplacian(u) = 1
conditions:
  - {name: wall, on: x = 0, impose: u = 0, hard: true}
  - {name: flux, on: x = 1, impose: dn(u) = 0}
"""
    problem = _problem(tmp_path, text)
    y = torch.linspace(0, 1, 9, dtype=torch.float64)
    B = torch.stack([torch.ones_like(y), y], 1).requires_grad_(True)
    u_x = _grad(problem.solution(B)[:, 0], B)[:, 0]
    normals = torch.tensor([[1.0, 0.0]], dtype=torch.float64).expand(9, 2)
    torch.testing.assert_close(problem.residual("flux", B.detach(), normals), u_x.detach(), rtol=1e-12, atol=1e-12)


def test_review_cases(tmp_path):
    """Cases a review found: a soft periodic term still matches slopes beside exact data; exact
    data with a kink is a located error, not a crash in the code generator; a constant
    coefficient given by a spec constant is fine; `where` with number branches keeps float64."""
    import numpy as np

    from pdec.runtime.sampling import Sampler

    periodic = """
name: p
domain: {x: [0, 1], y: [0, 1]}
unknowns: [u]
equations:
  - laplacian(u) = where(x < 0.5, 0.1, 0.2)
conditions:
  - {on: x = 0 or x = 1, impose: u = 0, hard: true}
  - {periodic: y}
"""
    problem = _problem(tmp_path, periodic, "p.yaml")
    batches = Sampler(problem.definition, problem.definition.training, dtype=torch.float64, device="cpu", seed=0).draw()
    term = problem.definition.terms_of("periodic")[0]
    assert {"u", "d(u,y)"} <= set(problem.values(batches[term.point_set].X, term.point_set))
    X = torch.tensor(np.random.default_rng(0).random((20, 2)))
    lap = problem.values(X)["laplacian(u)"]
    expected = lap - torch.where(X[:, 0] < 0.5, torch.full_like(X[:, 0], 0.1), torch.full_like(X[:, 0], 0.2))
    torch.testing.assert_close(problem.residuals(X)["pde"], expected, rtol=1e-14, atol=1e-14)
    kink = periodic.replace("impose: u = 0, hard: true", "impose: u = abs(x - 0.5)*0 + abs(y - 0.5), hard: true")
    with pytest.raises(SpecError, match="exact data must be smooth") as info:
        _problem(tmp_path, kink, "k.yaml")
    assert info.value.loc is not None
    constant = periodic.replace("impose: u = 0, hard: true", "impose: k*u = 1, hard: true").replace("unknowns: [u]", "unknowns: [u]\nconstants: {k: 2}")
    assert _problem(tmp_path, constant, "c.yaml").definition.solution


SQUARE_DATA = """
name: square
domain: {x: [0, 2], y: [-1, 1]}
time: {t: [0, 1]}
unknowns: [u]
equations:
  - u_t = laplacian(u)
conditions:
  - {on: boundary, impose: u = DATA, hard: true}
  - {on: t = 0, impose: u = DATA, hard: true}
"""


@pytest.mark.parametrize("inside", ["x*(2 - x)*(1 - y^2)*t", "x*(2 - x)*(1 - y^2)*t*exp(x*y)"])
def test_g_reads_the_data_only_where_it_holds(tmp_path, inside):
    """Two data expressions equal on the faces and the initial slice but not inside give the same
    ``G``: the extension reads the boundary values only. With the data's own expression as ``G``
    (the old shortcut) a manufactured solution would be handed to the network (``N = 0``)."""
    data = "exp(-t)*sin(x + y)"
    plain = _problem(tmp_path, SQUARE_DATA.replace("DATA", data), "a.yaml")
    other = _problem(tmp_path, SQUARE_DATA.replace("DATA", f"{data} + {inside}"), "b.yaml")
    X = _points(plain).detach()
    with torch.no_grad():
        for p in (plain, other):
            p.model.layers[-1].weight.zero_()
            p.model.layers[-1].bias.zero_()  # N = 0: the solution is G
        G_plain, G_other = plain.solution(X)[:, 0], other.solution(X)[:, 0]
    torch.testing.assert_close(G_plain, G_other, rtol=0, atol=1e-13)
    x, y, t = X.unbind(1)
    assert (G_plain - torch.exp(-t) * torch.sin(x + y)).abs().max() > 1e-3  # not the expression itself
