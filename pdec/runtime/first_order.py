"""First-order optimizers behind the optimizer protocol: Adam (with step
decay of the learning rate), L-BFGS, and Adam then L-BFGS.

Each wraps a ``torch.optim`` object and drives it with a closure that
evaluates the residuals, the weighted loss ``Σ_k w_k mean(r_k²)`` and its
gradient. After a non-finite loss (`recover`) the optimizer is rebuilt from
scratch with half the previous step scale: a fresh Adam has no moment
estimates, a fresh L-BFGS no curvature pairs, that could have been spoiled
by the non-finite values.
"""

from __future__ import annotations

from abc import abstractmethod

import torch

from pdec.contract import TrainingSettings
from pdec.runtime.distributed import current_world
from pdec.runtime.losses import term_losses
from pdec.runtime.protocol import Optimizer

LINE_SEARCH_EVALS = 25


def _summed(world, params: list[torch.Tensor], losses: dict[str, torch.Tensor]):
    """The loss per term, its total and the parameters' ``.grad`` summed over the ranks, in one
    collective (a parameter without a gradient gets a zero one, the same on every rank)."""
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    values = torch.stack([v.detach().to(torch.float64) for v in losses.values()])
    world.sum_many_([values, *(p.grad for p in params)])
    losses = {k: values[i].to(v.dtype) for i, (k, v) in enumerate(losses.items())}
    return losses, sum(losses.values())


class _TorchOptimizer(Optimizer):
    """A ``torch.optim`` optimizer over the network and PDE parameters, whose
    step size is scaled by ``lr_scale`` (halved by every `recover`)."""

    def __init__(self, problem, settings: TrainingSettings, lr_scale: float = 1.0) -> None:
        super().__init__(problem, settings)
        self.params = list(problem.model.parameters()) + list(problem.parameters.values())
        self.lr_scale = lr_scale
        self._build()

    @abstractmethod
    def _build(self) -> None:
        """(Re)create ``self.optimizer`` at the current ``lr_scale``."""

    def step(self, residual_fn, weights):
        last = None
        world = current_world()

        def closure() -> torch.Tensor:
            nonlocal last
            self.optimizer.zero_grad(set_to_none=True)
            losses = term_losses(residual_fn(), weights)
            total = sum(losses.values())
            total.backward()
            if world.size > 1:  # a rank's share of the loss and its gradient: sum over the ranks
                losses, total = _summed(world, self.params, losses)
            last = (total.detach(), {k: v.detach() for k, v in losses.items()})
            return total

        self.optimizer.step(closure)
        return last

    def recover(self, step: int) -> None:
        self.lr_scale *= 0.5
        self._build()

    def state_dict(self) -> dict:
        return {"lr_scale": self.lr_scale, "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.lr_scale = state["lr_scale"]
        self._build()
        self.optimizer.load_state_dict(state["optimizer"])


class Adam(_TorchOptimizer):
    """Adam at ``lr`` (times ``lr_scale``), multiplied by ``lr_decay`` every
    ``lr_decay_every`` steps; ``info`` holds the current learning rate."""

    name = "adam"

    def _build(self) -> None:
        # fused: one kernel for all parameters (the per-tensor loop was ~7% of a small step)
        self.optimizer = torch.optim.Adam(self.params, lr=self.settings.lr * self.lr_scale, fused=True)
        self.scheduler = torch.optim.lr_scheduler.StepLR(
            self.optimizer, step_size=self.settings.lr_decay_every, gamma=self.settings.lr_decay
        )

    def step(self, residual_fn, weights):
        out = super().step(residual_fn, weights)
        self.scheduler.step()
        self.info = {"lr": self.optimizer.param_groups[0]["lr"]}
        return out

    def state_dict(self) -> dict:
        return {**super().state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.scheduler.load_state_dict(state["scheduler"])


class LBFGS(_TorchOptimizer):
    """L-BFGS with a strong-Wolfe line search; ignores ``lr``."""

    name = "lbfgs"

    def _build(self) -> None:
        # One pdec step is one L-BFGS iteration with a strong-Wolfe line search;
        # no tolerance-based early exit (the run's step budget decides).
        # torch gives the line search `max_eval - 1` evaluations, and its
        # default max_eval for max_iter=1 is 1: the search would never move.
        # lr: the quasi-Newton step 1, times `lr_scale` after recoveries.
        self.optimizer = torch.optim.LBFGS(
            self.params, lr=self.lr_scale, max_iter=1, max_eval=1 + LINE_SEARCH_EVALS, history_size=50,
            line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0,
        )  # fmt: skip


class AdamThenLBFGS(Optimizer):
    """`adam+lbfgs`: Adam for the first half of the run's ``steps``, then
    L-BFGS from Adam's end point (Adam finds the basin, L-BFGS converges in
    it). The phase follows the step count, which `recover` resets to the
    restored step, so a recovery can hand back to Adam. Under a time budget
    the hand-over also comes when half of it is spent: with many steps and
    `--max-time`, the run would otherwise never reach L-BFGS (then the
    hand-over step depends on the machine's speed)."""

    name = "adam+lbfgs"

    def __init__(self, problem, settings: TrainingSettings) -> None:
        super().__init__(problem, settings)
        self.steps = 0
        self.lr_scale = 1.0
        self.inner = self._build(self._phase())

    def _phase(self) -> str:
        return "adam" if self.steps < self.settings.steps // 2 and self.budget_used < 0.5 else "lbfgs"

    def _build(self, phase: str) -> _TorchOptimizer:
        return (Adam if phase == "adam" else LBFGS)(self.problem, self.settings, self.lr_scale)

    @property
    def current(self) -> str:
        return self.inner.name

    def step(self, residual_fn, weights):
        if self.inner.name != self._phase():  # hand over
            self.inner = self._build(self._phase())
        out = self.inner.step(residual_fn, weights)
        self.info = self.inner.info
        self.steps += 1
        return out

    def recover(self, step: int) -> None:
        self.steps = step
        self.lr_scale *= 0.5
        self.inner = self._build(self._phase())

    def state_dict(self) -> dict:
        return {"steps": self.steps, "lr_scale": self.lr_scale, "phase": self.inner.name, "inner": self.inner.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.steps, self.lr_scale = int(state["steps"]), state["lr_scale"]
        self.inner = self._build(state["phase"])
        self.inner.load_state_dict(state["inner"])
