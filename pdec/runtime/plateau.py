"""Stop on a loss plateau: when the best loss has not fallen by ``RELATIVE`` over ``patience`` steps.

Why a relative drop over a window, not a threshold on the loss: PINN losses
span ten orders of magnitude between problems, and second-order optimizers
move in bursts (a Gauss–Newton run often creeps for a few steps before the
next fall), so a window of steps decides, and the loss itself never does.
"""

from __future__ import annotations

import math

RELATIVE = 0.01


class Plateau:
    """``update(step, loss)`` returns True once the run has plateaued (never with ``patience`` 0)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = math.inf
        self.best_step = 0

    def update(self, step: int, loss: float) -> bool:
        if loss < self.best * (1 - RELATIVE):
            self.best, self.best_step = loss, step
        elif not math.isfinite(self.best) and math.isfinite(loss):
            self.best, self.best_step = loss, step
        return self.patience > 0 and step - self.best_step >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "best_step": self.best_step}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_step = float(state["best"]), int(state["best_step"])
