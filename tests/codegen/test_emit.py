"""Emitted problem modules: a golden file, and printed residuals against SymPy."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import sympy
import torch

from pdec.codegen.load import load_problem
from pdec.api import compile_spec
from pdec.lang.nodes import NormalDerivative, expand_laplacians
from pdec.lang.numeric import evaluate
from pdec.lang.scope import symbol
from pdec.plan.graph import atom_need, derivative_atoms
from pdec.spec.load import load_spec_text

GOLDEN = Path(__file__).parent / "golden" / "reaction_diffusion.py"
SPEC = """
name: reaction_diffusion
domain: {x: [0, 1], y: [0, 2]}
time: {t: [0, 1]}
unknowns: [u, v]
constants: {D: 0.1, k: 2*D}
equations:
  - u_t = D*laplacian(u) - u*v^2 + k*(1 - u)
  - {name: second, equation: "v_t = k*laplacian(v) + u*v^2 - sin(pi*x)*v"}
conditions:
  - {on: x = 0 or x = 1, impose: u = 1}
  - {on: y = 0 and x > 0.5, impose: dn(v) + v = 0}
  - {on: t = 0, impose: u = 1 - exp(-x^2)}
  - {on: t = 0, impose: v = 0}
model: {hidden: [16, 16], activation: tanh}
training: {optimizer: adam, steps: 100}
"""


def _source() -> str:
    return compile_spec(load_spec_text(SPEC, "reaction_diffusion.yaml")).source


def test_emitted_source_matches_golden_file():
    source = _source()
    if os.environ.get("PDEC_UPDATE_GOLDEN"):
        GOLDEN.write_text(source)
    assert source == GOLDEN.read_text(), "emitted code changed: review it, then rerun with PDEC_UPDATE_GOLDEN=1"


def test_emission_is_deterministic():
    assert _source() == _source()


def test_printed_residuals_equal_sympy_values(spec_path):
    """Every residual function, fed random derivative values, equals SymPy's evaluation of the tree."""
    compiled = compile_spec(spec_path)
    definition = load_problem(compiled.source, compiled.spec.name)
    problem = compiled.problem
    rng = np.random.default_rng(0)
    n = 16
    X = rng.random((n, len(problem.variables)))
    normals = rng.standard_normal((n, len(problem.spatial)))
    params = {p.name: float(p.initial) for p in compiled.spec.parameters}
    spatial = tuple(symbol(s) for s in problem.spatial)
    constants = {symbol(k): v for k, v in problem.constants.items()}
    for term in problem.terms:
        if term.residual is None:
            continue
        expr = term.residual.replace(
            lambda e: isinstance(e, NormalDerivative),
            lambda e: sympy.Add(*(sympy.Symbol(f"__n{i}") * sympy.diff(e.args[0], s) for i, s in enumerate(spatial))),
        )
        D, env = {}, {}
        for atom in derivative_atoms(expr):
            (need,) = atom_need(atom, problem)
            values = 0.5 + rng.random(n)  # positive: keeps sqrt/log arguments in range
            D[need.name] = torch.as_tensor(values)
            env[atom] = values
        placeholders = {a: sympy.Dummy() for a in env}
        numeric = expr.xreplace(placeholders).xreplace(constants)
        numeric = numeric.xreplace({symbol(k): v for k, v in params.items()})
        bound = {placeholders[a]: v for a, v in env.items()}
        bound |= {symbol(v): X[:, i] for i, v in enumerate(problem.variables)}
        bound |= {symbol(name): evaluate(e, bound, n) for name, e in problem.embedding if symbol(name) not in bound}
        bound |= {sympy.Symbol(f"__n{i}"): normals[:, i] for i in range(len(spatial))}
        expected = evaluate(numeric, bound, n)
        P = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
        fn = definition.term(term.name).residual
        got = fn(torch.as_tensor(X), D, P, torch.as_tensor(normals)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=term.name)
