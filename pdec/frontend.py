"""The front end in one call: spec file → checked SymPy problem → operator graph."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .lang.problem import SymbolicProblem, build_problem
from .plan.graph import OperatorGraph, plan
from .spec.load import load_spec
from .spec.schema import Spec


@dataclass(frozen=True)
class Compiled:
    """Everything the back end needs to know about a spec, before any torch."""

    spec: Spec
    problem: SymbolicProblem
    graph: OperatorGraph


def compile_spec(spec: str | Path | Spec) -> Compiled:
    """Load (if given a path), check and plan a spec. Raises `SpecError`."""
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    problem = build_problem(spec)
    return Compiled(spec, problem, plan(problem))
