"""Loss-term weights: fixed, or adapted during training.

A weighting is a class registered in `WEIGHTINGS` (name → class) with

- ``__init__(problem, training, weights)``: ``weights`` are the spec's fixed
  weights per term, the starting point;
- ``update(step, residual_fn) -> dict[str, float]``: called by the trainer
  every ``training.weighting_every`` steps (and at step 0) with
  ``residual_fn()`` returning ``{term: residual [M]}`` at the current
  parameters; returns the weights to use until the next update;
- ``state_dict()`` / ``load_state_dict(state)`` for exact resume.

Weights multiply each term's mean square in the loss; the Gauss–Newton
optimizers receive them too, so curvature is scaled consistently.

The adaptive rules, with ``L_k = mean(r_k²)`` unweighted:

- ``inverse-dirichlet`` (Maddu et al. 2021): ``λ̂_k = max_t std(∇θ L_t) /
  std(∇θ L_k)``, then ``λ ← (1−α) λ + α λ̂`` with ``α = weighting_alpha``;
- ``ntk`` (Wang, Yu & Perdikaris 2020): ``λ_k = Σ_j t_j / t_k`` with
  ``t_k = Tr K_kk / M_k`` the NTK trace per entry on ``weighting_points``
  entries per term (``ntk.py``); per entry so that terms with fewer points
  are comparable — the paper's ``Σ_j Tr K_jj / Tr K_kk`` when all ``M_k``
  are equal;
- ``lra``, learning-rate annealing (Wang, Teng & Perdikaris 2021): the
  equations keep their spec weights; every other term gets
  ``λ̂_k = max|∇θ L_r| / mean|∇θ(λ_k L_k)|`` (``L_r`` the weighted sum of
  the equations, ``λ_k`` the current weight: the gradient of the weighted
  term), moving average as above. With the unweighted ``∇θ L_k`` instead, the weight of a term
  that is nearly satisfied grows without bound: on specs/helmholtz.yaml the
  boundary weight reached 3e7, the network stayed at zero and the error at
  1.0 (fixed weights: 0.21).

Guards: a term whose gradient (or NTK trace) vanishes would get an infinite
weight; its denominator is floored at ``FLOOR`` times the largest one (for
``lra``, the numerator) and at the smallest positive float, so weights stay
finite and positive, at most ``1/FLOOR`` relative to the others. If anything is not finite the
previous weights are kept. ``θ`` is all trainable parameters for the
gradient rules and the network's for ``ntk``.
"""

from __future__ import annotations

import math

import torch

from pdec.runtime.distributed import current_world
from pdec.runtime.ntk import ntk_traces, term_groups

FLOOR = 1e-12
TINY = 1e-300


class FixedWeights:
    """The spec's weights, unchanged."""

    sharded = True
    """Whether `update` takes a rank's shard of the residuals (distributed runs: it sums what it
    needs over the ranks); False: it is given every point on every rank (`NtkWeights`, whose
    entries are chosen by position)."""

    def __init__(self, problem, training: dict, weights: dict[str, float]) -> None:
        self.weights = dict(weights)

    def update(self, step: int, residual_fn) -> dict[str, float]:
        return dict(self.weights)

    def state_dict(self) -> dict:
        return {"weights": dict(self.weights)}

    def load_state_dict(self, state: dict) -> None:
        self.weights = dict(state["weights"])


def floored(values: dict[str, float], reference: float = 0.0) -> dict[str, float]:
    """Denominators floored at ``FLOOR × max(values, reference)`` (and ``TINY``):
    ratios against the largest stay at most ``1/FLOOR``."""
    top = max([*values.values(), reference])
    return {k: max(v, FLOOR * top, TINY) for k, v in values.items()}


def term_gradients(problem, residual_fn) -> dict[str, torch.Tensor]:
    """``{term: ∇θ mean(r_k²)}`` flattened over all trainable parameters (unweighted)."""
    params = [p for p in list(problem.model.parameters()) + list(problem.parameters.values()) if p.requires_grad]
    out = {}
    for group in term_groups(problem):
        with torch.enable_grad():
            residuals = residual_fn()
        for name in (n for n in group if n in residuals):
            loss = residuals[name].square().mean()
            if not loss.requires_grad:  # does not depend on θ: a zero gradient
                out[name] = torch.cat([torch.zeros_like(p).reshape(-1) for p in params])
                continue
            grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            out[name] = torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads)])
    current_world().sum_many_(list(out.values()))  # a rank's share (`distributed.py`): sum over the ranks
    return out


class _Averaged(FixedWeights):
    """A rule ``λ̂`` blended as ``λ ← (1−α) λ + α λ̂`` (α = ``weighting_alpha``)."""

    def __init__(self, problem, training: dict, weights: dict[str, float]) -> None:
        super().__init__(problem, training, weights)
        self.problem = problem
        self.alpha = float(training.weighting_alpha)
        self.points = int(training.weighting_points)

    def target(self, residual_fn) -> dict[str, float]:
        raise NotImplementedError

    def update(self, step: int, residual_fn) -> dict[str, float]:
        target = self.target(residual_fn)
        blended = {k: (1 - self.alpha) * self.weights[k] + self.alpha * target.get(k, self.weights[k]) for k in self.weights}
        if all(math.isfinite(v) and v > 0 for v in blended.values()):
            self.weights = blended
        return dict(self.weights)


class InverseDirichletWeights(_Averaged):
    """Maddu, Sturm, Müller & Sbalzarini 2021: balance the gradient variances."""

    def target(self, residual_fn) -> dict[str, float]:
        std = {k: float(g.std()) if g.numel() > 1 else float(g.abs().sum()) for k, g in term_gradients(self.problem, residual_fn).items()}
        top = max(std.values(), default=0.0)
        return {k: top / v for k, v in floored(std).items()} if top > 0 else {}


class LearningRateAnnealingWeights(_Averaged):
    """Wang, Teng & Perdikaris 2021: scale boundary-type terms to the residual's largest gradient."""

    def target(self, residual_fn) -> dict[str, float]:
        grads = term_gradients(self.problem, residual_fn)
        equations = [t.name for t in self.problem.definition.terms_of("equation") if t.name in grads]
        if not equations:
            return {}
        top = float(sum(self.weights[k] * grads[k] for k in equations).abs().max())
        means = floored({k: float(self.weights[k] * g.abs().mean()) for k, g in grads.items() if k not in equations}, top)
        return {k: top / v for k, v in means.items()} if top > 0 else {}


class NtkWeights(FixedWeights):
    """Wang, Yu & Perdikaris 2020: ``λ_k = Σ_j t_j / t_k`` from NTK traces per entry."""

    sharded = False

    def __init__(self, problem, training: dict, weights: dict[str, float]) -> None:
        super().__init__(problem, training, weights)
        self.problem = problem
        self.points = int(training.weighting_points)

    def update(self, step: int, residual_fn) -> dict[str, float]:
        traces = ntk_traces(self.problem, residual_fn, self.points)
        per_entry = {k: trace / max(count, 1) for k, (trace, count) in traces.items()}
        total = sum(per_entry.values())
        new = {k: total / v for k, v in floored(per_entry).items()} if total > 0 else {}
        merged = {k: new.get(k, self.weights[k]) for k in self.weights}
        if all(math.isfinite(v) and v > 0 for v in merged.values()):
            self.weights = merged
        return dict(self.weights)


WEIGHTINGS: dict[str, type] = {
    "fixed": FixedWeights,
    "inverse-dirichlet": InverseDirichletWeights,
    "ntk": NtkWeights,
    "lra": LearningRateAnnealingWeights,
}


def make_weighting(name: str, problem, training: dict, weights: dict[str, float]):
    """The weighting ``name``, starting from the spec's ``weights``."""
    if name not in WEIGHTINGS:
        raise ValueError(
            f"loss weighting `{name}` is not available in this version of pdec; use one of {', '.join(WEIGHTINGS)}"
        )
    return WEIGHTINGS[name](problem, training, weights)
