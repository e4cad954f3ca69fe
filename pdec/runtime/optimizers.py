"""First-order optimizers by name: Adam (with step decay), L-BFGS, and Adam then L-BFGS.

The Gauss–Newton optimizers (ENGD, KFAC, two-level KFAC) are separate
modules; until they exist, asking for one is a clear error.
"""

from __future__ import annotations

import torch

FIRST_ORDER = ("adam", "lbfgs", "adam+lbfgs")
LINE_SEARCH_EVALS = 25


class OptimizerNotAvailable(ValueError):
    pass


def make_optimizer(name: str, params: list[torch.nn.Parameter], training: dict) -> torch.optim.Optimizer:
    """The optimizer ``name`` for ``params`` with the spec's settings."""
    if name == "adam":
        return torch.optim.Adam(params, lr=training["lr"])
    if name == "lbfgs":
        # One pdec step is one L-BFGS iteration with a strong-Wolfe line search;
        # no tolerance-based early exit (the run's step budget decides).
        # torch gives the line search `max_eval - 1` evaluations, and its
        # default max_eval for max_iter=1 is 1: the search would never move.
        return torch.optim.LBFGS(
            params, lr=1.0, max_iter=1, max_eval=1 + LINE_SEARCH_EVALS, history_size=50,
            line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0,
        )  # fmt: skip
    raise OptimizerNotAvailable(
        f"optimizer `{name}` is not available in this version of pdec; use one of {', '.join(FIRST_ORDER)}"
    )


def phase(name: str, step: int, steps: int) -> str:
    """Which optimizer runs at ``step``: `adam+lbfgs` hands over half way."""
    if name == "adam+lbfgs":
        return "adam" if step < steps // 2 else "lbfgs"
    return name
