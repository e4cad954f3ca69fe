"""`pdec.compile(spec).derivatives(X)` equals nested autograd, for every example spec."""

from __future__ import annotations

import re

import torch

import pdec

NAME = re.compile(r"d\((\w+),([\w,]+)\)")


def nested(model, X: torch.Tensor, k: int, name: str, variables: list[str], spatial: list[str]) -> torch.Tensor:
    """The derivative called ``name`` of output ``k``, by repeated `torch.autograd.grad`."""

    def partial(f: torch.Tensor, column: int) -> torch.Tensor:
        return torch.autograd.grad(f.sum(), X, create_graph=True)[0][:, column]

    def laplacian(f: torch.Tensor) -> torch.Tensor:
        return sum(partial(partial(f, variables.index(s)), variables.index(s)) for s in spatial)

    u = model(X)[:, k]
    if name.startswith("laplacian(laplacian("):
        return laplacian(laplacian(u))
    if name.startswith("laplacian("):
        return laplacian(u)
    match = NAME.fullmatch(name)
    if match is None:
        return u
    for v in match.group(2).split(","):
        u = partial(u, variables.index(v))
    return u


def test_derivatives_match_nested_autograd(spec_path):
    """The network's derivatives in its own inputs (the embedded ones under exact periodicity)."""
    problem = pdec.compile(spec_path, dtype=torch.float64)
    assert problem.compiled.spec.training.laplacian_samples == 0, "randomized Laplacian: compare in expectation instead"
    generator = torch.Generator().manual_seed(0)
    X = torch.rand(4, len(problem.variables), dtype=torch.float64, generator=generator)
    d = problem.definition
    Z = (d.embed(X) if d.embed else X).requires_grad_(True)
    derivatives = problem.derivatives(X)
    assert derivatives
    for name, value in derivatives.items():
        unknown = re.match(r"(?:laplacian\()*(?:d\()?(\w+)", name).group(1)
        k = problem.unknowns.index(unknown)
        reference = nested(problem.model, Z, k, name, list(d.network_inputs), problem.spatial)
        scale = reference.abs().max().clamp_min(1.0)
        assert ((value - reference).abs().max() / scale) < 1e-10, name


def test_reported_fields_match_nested_autograd_of_the_solution(spec_path):
    """What a run reports (`Problem.values`: u = G + φ·N, embedded inputs) against nested
    autograd of `Problem.solution` in the spec's own variables."""
    problem = pdec.compile(spec_path, dtype=torch.float64)
    generator = torch.Generator().manual_seed(1)
    X = torch.rand(4, len(problem.variables), dtype=torch.float64, generator=generator).requires_grad_(True)
    fields = problem.values(X.detach())
    assert set(problem.unknowns) <= set(fields)

    def solution(Y):
        return problem.solution(Y)

    for name, value in fields.items():
        unknown = re.match(r"(?:laplacian\()*(?:d\()?(\w+)", name).group(1)
        k = problem.unknowns.index(unknown)
        reference = nested(solution, X, k, name, problem.variables, problem.spatial)
        scale = reference.abs().max().clamp_min(1.0)
        assert ((value - reference).abs().max() / scale) < 1e-10, name


def test_residuals_are_finite_for_every_equation(spec_path):
    problem = pdec.compile(spec_path, dtype=torch.float64)
    X = torch.rand(3, len(problem.variables), dtype=torch.float64)
    residuals = problem.residuals(X)
    assert set(residuals) == {t.name for t in problem.compiled.problem.equations}
    assert all(r.shape == (3,) and torch.isfinite(r).all() for r in residuals.values())
