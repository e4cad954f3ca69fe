"""The one protocol every optimizer follows, first order or Gauss–Newton.

Why one protocol: the trainer drives every optimizer the same way, so the
Gauss–Newton optimizers (which need the residuals, not only the loss) and
the ``torch.optim`` ones (which need a closure that backpropagates) differ
only inside their own class. The trainer calls, each step,

    total, losses = optimizer.step(lambda: term_residuals(problem, batches), weights)

where ``residual_fn()`` returns ``{term: residual [M]}`` at the current
parameters and the loss is ``L = Σ_k w_k mean(r_k²)``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Callable

from torch import Tensor

from pdec.contract import TrainingSettings

ResidualFn = Callable[[], "dict[str, Tensor]"]


class Optimizer(ABC):
    """An optimizer of a problem's parameters (network and PDE parameters).

    - ``__init__(problem, settings)``: ``settings`` is the run's
      `TrainingSettings` (read, never copied with restated defaults);
    - ``step(residual_fn, weights) -> (total, losses)``: one update; returns
      the loss and the loss per term, detached (Gauss–Newton: at the accepted
      point; first order: of the last evaluation, for Adam the point the
      step started from);
    - ``info``: numbers logged with each record (learning rate, damping,
      step size, ...);
    - ``recover(step)``: after a non-finite loss the trainer has restored the
      parameters of ``step``; continue from there more cautiously;
    - ``state_dict()`` / ``load_state_dict(state)``: everything a bit-identical
      resume needs.
    """

    name: str = ""
    """The registry name (`optimizers.OPTIMIZERS`)."""

    defaults: dict[str, object] = {"damping": 1e-8, "adaptive_damping": True, "momentum": 0.0}
    """What a setting the spec leaves unset (None) means for this optimizer: its tuned values
    (measured in benchmarks/README.md, "Second order at scale")."""

    def __init__(self, problem, settings: TrainingSettings) -> None:
        unset = {key: value for key, value in self.defaults.items() if getattr(settings, key) is None}
        self.problem, self.settings = problem, dataclasses.replace(settings, **unset) if unset else settings
        self.info: dict[str, float] = {}
        self.budget_used = 0.0
        """The fraction of the run's wall-clock budget (`--max-time`) spent, set by the
        trainer before each step; 0 without a budget. Schedules read it."""

    @property
    def current(self) -> str:
        """The optimizer that took the last step (`adam+lbfgs`: its phase)."""
        return self.name

    @abstractmethod
    def step(self, residual_fn: ResidualFn, weights: dict[str, float]) -> tuple[Tensor, dict[str, Tensor]]: ...

    @abstractmethod
    def recover(self, step: int) -> None: ...

    @abstractmethod
    def state_dict(self) -> dict: ...

    @abstractmethod
    def load_state_dict(self, state: dict) -> None: ...
