"""Exact periodicity (`periodic: x` with `hard: true`): the network sees cos and sin of x, the
unknowns are periodic with their derivatives to rounding, the rewritten residuals equal nested
autograd of the embedded network, and exact Dirichlet data compose with it."""

from __future__ import annotations

import math
import textwrap

import torch

import pdec

ADVECTION = """
name: adv
domain: {x: [-1, 3], y: [0, 1]}
time: {t: [0, 1]}
unknowns: [u, v]
equations:
  - u_t + 3*u_x = laplacian(u) + v*u_y
  - v_t = v_xx + u*v
conditions:
  - {periodic: x, hard: true}
  - {on: y = 0, impose: u = sin(pi*x/2)*exp(-t), hard: true}
  - {on: y = 1, impose: dn(u) = 0}
  - {on: t = 0, impose: v = cos(pi*x), hard: true}
  - {on: boundary, impose: v = 0}
"""
"""Two unknowns, x periodic with period 4, a Laplacian, exact data on a face of another axis
(periodic in x itself) and at the start, soft conditions in the remaining places."""


def _problem(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(ADVECTION), encoding="utf-8")
    return pdec.compile(path, overrides=["model.hidden=[7, 6]"], seed=2)


def _grad(y, X):
    return torch.autograd.grad(y.sum(), X, create_graph=True)[0]


def test_the_network_sees_cos_and_sin_and_the_term_is_gone(tmp_path):
    problem = _problem(tmp_path)
    d = problem.definition
    assert d.inputs == ("cos_x", "sin_x", "y", "t")
    assert [t.kind for t in d.terms] == ["equation", "equation", "boundary", "boundary"]
    X = torch.tensor([[0.3, 0.2, 0.1]], dtype=torch.float64)
    k = 2 * math.pi / 4
    expected = torch.tensor([[math.cos(k * 1.3), math.sin(k * 1.3), 0.2, 0.1]], dtype=torch.float64)
    torch.testing.assert_close(d.embed(X), expected, rtol=0, atol=1e-15)


def test_periodic_in_value_and_every_derivative(tmp_path):
    problem = _problem(tmp_path)
    g = torch.Generator().manual_seed(0)
    Y = torch.rand(20, 2, generator=g, dtype=torch.float64)
    low = torch.cat([torch.full((20, 1), -1.0, dtype=torch.float64), Y], 1)
    high = torch.cat([torch.full((20, 1), 3.0, dtype=torch.float64), Y], 1)
    a, b = problem.values(low), problem.values(high)
    assert {"u", "v", "d(u,x)", "d(v,x,x)", "laplacian(u)", "d(u,y)"} <= set(a)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-12, atol=1e-12)


def test_residuals_and_fields_equal_nested_autograd(tmp_path):
    problem = _problem(tmp_path)
    g = torch.Generator().manual_seed(1)
    X = torch.rand(30, 3, generator=g, dtype=torch.float64) * torch.tensor([4.0, 1.0, 1.0], dtype=torch.float64)
    X = (X - torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)).requires_grad_(True)
    U = problem.solution(X)
    u, v = U[:, 0], U[:, 1]
    gu, gv = _grad(u, X), _grad(v, X)
    u_xx, u_yy = _grad(gu[:, 0], X)[:, 0], _grad(gu[:, 1], X)[:, 1]
    v_xx = _grad(gv[:, 0], X)[:, 0]
    fields = problem.values(X.detach())
    torch.testing.assert_close(fields["d(u,x)"], gu[:, 0].detach(), rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(fields["laplacian(u)"], (u_xx + u_yy).detach(), rtol=1e-10, atol=1e-10)
    residuals = problem.residuals(X.detach())
    torch.testing.assert_close(
        residuals[problem.definition.terms[0].name], (gu[:, 2] + 3 * gu[:, 0] - u_xx - u_yy - v * gu[:, 1]).detach(), rtol=1e-10, atol=1e-10
    )
    torch.testing.assert_close(
        residuals[problem.definition.terms[1].name], (gv[:, 2] - v_xx - u * v).detach(), rtol=1e-10, atol=1e-10
    )


def test_exact_data_hold_with_the_embedding(tmp_path):
    problem = _problem(tmp_path)
    x = torch.linspace(-1, 3, 17, dtype=torch.float64)
    t = torch.linspace(0, 1, 17, dtype=torch.float64)
    U = problem.solution(torch.stack([x, 0 * x, t], 1))
    torch.testing.assert_close(U[:, 0], torch.sin(math.pi * x / 2) * torch.exp(-t), rtol=0, atol=1e-14)
    V = problem.solution(torch.stack([x, t, 0 * t], 1))
    torch.testing.assert_close(V[:, 1], torch.cos(math.pi * x), rtol=0, atol=1e-14)


def test_predict_derivatives_and_export_see_the_embedding(tmp_path):
    """`pdec.load(run)` reports u and its derivatives in x (periodic across the faces) and the
    TorchScript export, which embeds its input itself, equals `predict`."""
    import json
    import subprocess
    import sys

    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(ADVECTION), encoding="utf-8")
    pdec.solve(path, out=tmp_path / "run", steps=2, optimizer="adam", settings=["model.hidden=[5]", "output.plots=false"])
    run = pdec.load(tmp_path / "run")
    X = [[-1.0, 0.3, 0.2], [3.0, 0.3, 0.2], [0.7, 0.9, 0.5]]
    u = run.predict(X)["u"]
    torch.testing.assert_close(u[0], u[1], rtol=1e-13, atol=1e-13)
    d = run.derivatives(X)
    assert "d(u,x)" in d and "d(u,cos_x)" not in d
    torch.testing.assert_close(d["d(u,x)"][0], d["d(u,x)"][1], rtol=1e-12, atol=1e-12)
    model = tmp_path / "model.pt"
    run.export(model)
    code = f"import json, torch; m = torch.jit.load({str(model)!r}); print(json.dumps(m(torch.tensor({X}, dtype=torch.float64))[:, 0].tolist()))"
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    torch.testing.assert_close(torch.tensor(json.loads(printed), dtype=torch.float64), u, rtol=1e-13, atol=1e-15)
