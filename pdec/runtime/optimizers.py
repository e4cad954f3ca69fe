"""Optimizers by name: Adam (with step decay), L-BFGS, Adam then L-BFGS, and
the Gauss–Newton family (ENGD, KFAC, KFAC*, two-level KFAC).

Gauss–Newton optimizers see the residuals, not only the loss. Each is a
class registered in `SECOND_ORDER` (name → class) with

- ``__init__(problem, training)``;
- ``step(residual_fn, weights) -> (total, losses)``: one update, where
  ``residual_fn()`` returns ``{term: residual [M]}`` at the current
  parameters and the loss is ``sum_k weights[k] * mean(r_k ** 2)``; returns
  the total loss and the loss per term at the accepted point (detached);
- ``info``: a dict logged each step (damping, step size, momentum, ...);
- ``state_dict()`` / ``load_state_dict(state)`` for exact resume.
"""

from __future__ import annotations

import torch

FIRST_ORDER = ("adam", "lbfgs", "adam+lbfgs")
SECOND_ORDER: dict[str, type] = {}
"""Gauss–Newton optimizers by name, registered by the modules that define them."""
LINE_SEARCH_EVALS = 25


class OptimizerNotAvailable(ValueError):
    pass


def make_optimizer(name: str, params: list[torch.nn.Parameter], training, problem=None):
    """The optimizer ``name`` for ``params`` with the spec's settings."""
    if name in SECOND_ORDER:
        return SECOND_ORDER[name](problem, training)
    if name == "adam":
        # fused: one kernel for all parameters (the per-tensor loop was ~7% of a small step)
        return torch.optim.Adam(params, lr=training.lr, fused=True)
    if name == "lbfgs":
        # One pdec step is one L-BFGS iteration with a strong-Wolfe line search;
        # no tolerance-based early exit (the run's step budget decides).
        # torch gives the line search `max_eval - 1` evaluations, and its
        # default max_eval for max_iter=1 is 1: the search would never move.
        return torch.optim.LBFGS(
            params, lr=1.0, max_iter=1, max_eval=1 + LINE_SEARCH_EVALS, history_size=50,
            line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0,
        )  # fmt: skip
    available = (*FIRST_ORDER, *SECOND_ORDER)
    raise OptimizerNotAvailable(
        f"optimizer `{name}` is not available in this version of pdec; use one of {', '.join(available)}"
    )


def is_second_order(name: str) -> bool:
    return name in SECOND_ORDER


def phase(name: str, step: int, steps: int) -> str:
    """Which optimizer runs at ``step``: `adam+lbfgs` hands over half way."""
    if name == "adam+lbfgs":
        return "adam" if step < steps // 2 else "lbfgs"
    return name
