"""Tiny problems for the Gauss–Newton optimizers: a spec compiled through the
real path (`load_spec` with overrides, `pdec.compile`) plus fixed points."""

from __future__ import annotations

from pathlib import Path

import torch

import pdec
from pdec.runtime.losses import term_residuals
from pdec.runtime.sampling import Sampler
from pdec.spec.load import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
TINY = ["model.hidden=[4]", "training.points={interior: 12, boundary: 6, initial: 6}"]


def tiny_problem(path, overrides=(), seed: int = 0):
    """``(problem, residual_fn, weights, training)`` for ``path`` with tiny settings."""
    spec = load_spec(path, [*TINY, *overrides])
    problem = pdec.compile(spec, seed=seed)
    training = problem.definition.training
    batches = Sampler(problem.definition, training, dtype=torch.float64, device="cpu", seed=seed).draw()
    weights = {t.name: float(t.weight) for t in problem.definition.terms}
    return problem, (lambda: term_residuals(problem, batches)), weights, training
