"""Adaptive loss weights: formulas by hand, guards, resume, and the trainer path."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

import pdec
from resume_check import assert_resume_is_bit_identical
from pdec.runtime.losses import term_residuals
from pdec.runtime.sampling import Sampler
from pdec.runtime.weighting import FLOOR, WEIGHTINGS, make_weighting
from pdec.spec.load import load_spec

ROOT = Path(__file__).resolve().parents[2]
POISSON = str(ROOT / "specs" / "poisson1d.yaml")
WAVE = str(ROOT / "specs" / "wave1d.yaml")
SMALL = ["model.hidden=[5]", "training.points={interior: 12, boundary: 6}"]


def tiny(spec=POISSON, hidden="[5]"):
    problem = pdec.compile(load_spec(spec, [f"model.hidden={hidden}"]))
    training = problem.definition.training
    batches = Sampler(problem.definition, training, dtype=torch.float64, device="cpu", seed=0, points=10).draw()
    return problem, training, batches


def by_hand(problem, batches):
    """Per term: ∇θ mean(r²) flattened, and the rows ∂r_m/∂θ, one autograd call per entry."""
    params = list(problem.model.parameters())
    grads, rows = {}, {}
    for name in [t.name for t in problem.definition.terms]:
        r = term_residuals(problem, batches)[name]
        grads[name] = torch.cat([g.reshape(-1) for g in torch.autograd.grad(r.square().mean(), params)])
        rows[name] = torch.stack(
            [torch.cat([g.reshape(-1) for g in torch.autograd.grad(term_residuals(problem, batches)[name][m], params)])
             for m in range(r.numel())]
        )
    return grads, rows


def test_inverse_dirichlet_by_hand():
    problem, training, batches = tiny()
    training = dataclasses.replace(training, weighting_alpha=0.5)
    start = {k: 1.0 for k in [t.name for t in problem.definition.terms]}
    w = make_weighting("inverse-dirichlet", problem, training, start).update(0, lambda: term_residuals(problem, batches))
    grads, _ = by_hand(problem, batches)
    std = {k: float(g.std()) for k, g in grads.items()}
    top = max(std.values())
    for k in start:
        assert w[k] == pytest.approx(0.5 * 1.0 + 0.5 * top / std[k], rel=1e-10)
    assert min(w.values()) == pytest.approx(1.0)  # the term with the largest spread keeps weight 1


def test_ntk_by_hand():
    problem, training, batches = tiny()
    training = dataclasses.replace(training, weighting_points=1000)  # every entry
    start = {k: 1.0 for k in [t.name for t in problem.definition.terms]}
    w = make_weighting("ntk", problem, training, start).update(0, lambda: term_residuals(problem, batches))
    _, rows = by_hand(problem, batches)
    per_entry = {k: float((J @ J.T).trace()) / J.shape[0] for k, J in rows.items()}
    total = sum(per_entry.values())
    for k in start:
        assert w[k] == pytest.approx(total / per_entry[k], rel=1e-10)


def test_lra_by_hand():
    """λ̂ = max|∇L_r| / mean|∇(λ L_b)| with the current λ (REFERENCES §6): the
    boundary weight starts at 3, so the weighted and unweighted rules differ."""
    problem, training, batches = tiny()
    training = dataclasses.replace(training, weighting_alpha=0.1)
    start = {"pde": 1.0, "bc1": 3.0}
    w = make_weighting("lra", problem, training, start).update(0, lambda: term_residuals(problem, batches))
    grads, _ = by_hand(problem, batches)
    target = float(grads["pde"].abs().max()) / (3.0 * float(grads["bc1"].abs().mean()))
    assert w["pde"] == 1.0
    assert w["bc1"] == pytest.approx(0.9 * 3.0 + 0.1 * target, rel=1e-10)


@pytest.mark.parametrize("name", sorted(set(WEIGHTINGS) - {"fixed"}))
@pytest.mark.parametrize("how", ["zero", "detached"])
def test_weights_finite_when_a_gradient_vanishes(name, how):
    problem, training, batches = tiny()

    def residual_fn():
        r = term_residuals(problem, batches)
        r["bc1"] = r["bc1"] * 0.0 if how == "zero" else torch.zeros_like(r["bc1"]).detach()
        return r

    weighting = make_weighting(name, problem, training, {k: 1.0 for k in [t.name for t in problem.definition.terms]})
    for step in range(3):
        w = weighting.update(step, residual_fn)
        assert all(math.isfinite(v) and v > 0 for v in w.values()), w
    assert w["bc1"] <= 2 / FLOOR


def test_ntk_weights_on_a_system_of_terms():
    """Four terms (equation, ends, displacement, velocity), two point sets shared."""
    problem, training, batches = tiny(WAVE, "[4, 4]")
    w = make_weighting("ntk", problem, training, {k: 1.0 for k in [t.name for t in problem.definition.terms]}).update(
        0, lambda: term_residuals(problem, batches)
    )
    assert set(w) == set([t.name for t in problem.definition.terms])
    assert all(math.isfinite(v) and v > 0 for v in w.values())


@pytest.mark.parametrize("weighting", ["ntk", "inverse-dirichlet"])
def test_resume_is_bit_identical(tmp_path, weighting):
    settings = SMALL + [f"training.weighting={weighting}", "training.weighting_every=3", "output.plots=false"]
    assert_resume_is_bit_identical(POISSON, settings, tmp_path)


def test_weights_are_logged_and_adapt(tmp_path):
    settings = SMALL + ["training.weighting=ntk", "training.weighting_every=2", "training.log_every=2", "output.plots=false"]
    pdec.solve(POISSON, steps=4, out=tmp_path, settings=settings)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records and all(set(r["weights"]) == {"pde", "bc1"} for r in records)
    assert records[-1]["weights"]["bc1"] != 1.0
