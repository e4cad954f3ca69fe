"""Causal training: the equations' residual weighted by time slabs (Wang, Sankaran & Perdikaris 2022).

A PINN of a time-dependent problem can fit the equation at late times before
the solution there is known from earlier ones, and settle on a wrong one (on
Allen–Cahn, a trivial state). Causal training respects the order: the time
interval is cut into ``SLABS`` slabs with losses ``L_i`` (mean squared
residual of the interior points in slab ``i``), and slab ``i`` counts with

    w_i = exp(−ε Σ_{k<i} L_k),

held fixed (no gradient), so late slabs wait until the early ones are fitted.
Applied per point as ``r_p ← √w_{slab(p)} · r_p``, the loss is ``mean_p w r²``
(the paper's ``(1/N_t) Σ_i w_i L_i`` for equal slabs), and every optimizer —
Gauss–Newton ones included — sees the same weighted residuals. ε grows ×10
(up to ``MAX_EPSILON``) once every weight exceeds ``DONE`` (the paper's
schedule: all slabs are fitted at this ε, tighten it).
"""

from __future__ import annotations

import math

import torch

SLABS = 32
DONE = 0.99
MAX_EPSILON = 100.0


def slab_index(t: torch.Tensor, t0: float, t1: float, slabs: int = SLABS) -> torch.Tensor:
    """Each point's slab (``t1`` itself in the last one)."""
    return ((t.detach() - t0) / (t1 - t0) * slabs).floor().clamp(0, slabs - 1).long()


def slab_weights(index: torch.Tensor, r2: torch.Tensor, epsilon: float, slabs: int = SLABS, world=None) -> torch.Tensor:
    """``w_i`` per slab from the points' slabs (`slab_index`) and squared residuals ``r2``
    (detached). An empty slab has loss 0 (it adds nothing to the later ones). ``world``: the
    points are a rank's shard, the slab sums are summed over the ranks (`distributed.py`)."""
    total = torch.zeros(slabs, dtype=r2.dtype, device=r2.device).index_add_(0, index, r2.detach())
    count = torch.zeros(slabs, dtype=r2.dtype, device=r2.device).index_add_(0, index, torch.ones_like(r2))
    if world is not None:
        world.sum_many_([total, count])
    loss = total / count.clamp(min=1)
    before = torch.cat([loss.new_zeros(1), torch.cumsum(loss, 0)[:-1]])  # exclusive: no inf − inf
    return torch.exp(-epsilon * before)


class Causal:
    """ε and its schedule; ``weigh(X, r)`` scales one equation's residual. The trainer owns one."""

    def __init__(self, epsilon: float, interval: tuple[float, float], time_column: int) -> None:
        self.epsilon = float(epsilon)
        self.interval = interval
        self.column = time_column
        self.last_min_weight = math.nan
        self.min_weight = math.inf
        """The smallest slab weight seen since the last `update` (over equations and line searches)."""

    def weigh(self, X: torch.Tensor, r: torch.Tensor, world=None) -> torch.Tensor:
        index = slab_index(X[:, self.column], *self.interval)
        w = slab_weights(index, r.square(), self.epsilon, world=world)
        self.min_weight = min(self.min_weight, float(w.min()))
        return r * w[index].sqrt()

    def update(self) -> None:
        """After a step: tighten ε when every slab is fitted at the current one."""
        if self.min_weight > DONE and self.epsilon < MAX_EPSILON:
            self.epsilon = min(MAX_EPSILON, self.epsilon * 10)
        self.last_min_weight, self.min_weight = self.min_weight, math.inf

    def state_dict(self) -> dict:
        return {"epsilon": self.epsilon}

    def load_state_dict(self, state: dict) -> None:
        self.epsilon = float(state["epsilon"])
