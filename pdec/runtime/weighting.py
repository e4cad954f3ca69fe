"""Loss-term weights: fixed, or adapted during training.

A weighting is a class registered in `WEIGHTINGS` (name → class) with

- ``__init__(problem, training, weights)``: ``weights`` are the spec's fixed
  weights per term, the starting point;
- ``update(step, residual_fn) -> dict[str, float]``: called by the trainer
  every ``training["weighting_every"]`` steps (and at step 0) with
  ``residual_fn()`` returning ``{term: residual [M]}`` at the current
  parameters; returns the weights to use until the next update;
- ``state_dict()`` / ``load_state_dict(state)`` for exact resume.

Weights multiply each term's mean square in the loss; the Gauss–Newton
optimizers receive them too, so curvature is scaled consistently.
"""

from __future__ import annotations


class FixedWeights:
    """The spec's weights, unchanged."""

    def __init__(self, problem, training: dict, weights: dict[str, float]) -> None:
        self.weights = dict(weights)

    def update(self, step: int, residual_fn) -> dict[str, float]:
        return dict(self.weights)

    def state_dict(self) -> dict:
        return {"weights": dict(self.weights)}

    def load_state_dict(self, state: dict) -> None:
        self.weights = dict(state["weights"])


WEIGHTINGS: dict[str, type] = {"fixed": FixedWeights}


def make_weighting(name: str, problem, training: dict, weights: dict[str, float]):
    """The weighting ``name``, starting from the spec's ``weights``."""
    if name not in WEIGHTINGS:
        raise ValueError(
            f"loss weighting `{name}` is not available in this version of pdec; use one of {', '.join(WEIGHTINGS)}"
        )
    return WEIGHTINGS[name](problem, training, weights)
