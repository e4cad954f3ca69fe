"""`auto`: the training recipe pdec chooses where a spec leaves it open.

A spec with no `training:` section (or `optimizer: auto`) is trained by a
recipe chosen from the problem; every value the spec does give is kept. The
compiler makes the choice (so the emitted problem, `resolved.json` and a
standalone script all show concrete values), and states it in one line.

Why these recipes (measured on one CPU thread; numbers in the spec headers
and `benchmarks/README.md`):

- **At most three inputs: ENGD on a small network.** Energy natural
  gradient descent (Müller & Zeinhofer, ICML 2023) — the Gauss–Newton step
  on all residuals with a line search — reaches relative L2 errors of
  1e-5…1e-7 on the small Poisson, heat, biharmonic and beam problems in a
  hundred steps, where Adam with 2000 steps stops at 1e-2…1. Its dense step
  costs O(N D²) for N residuals and D parameters, so the network is kept
  near 10³ parameters (tanh, two hidden layers of 32) and the points near
  10³; with that, a step takes about a second.
- **More inputs: the self-scaled Broyden method** (`ssbroyden`; Urbán,
  Stefanou & Pons 2025) on [32, 32]: a dense quasi-Newton method in float64
  whose O(D²) step fits where ENGD's O(N D²) does not (N grows with the
  dimension). On the 5-, 4+1- and 10-dimensional problems it reached 9.3e-7,
  5.1e-7 and 1.5e-6 in 150–300 s, where L-BFGS on [64, 64, 64] stopped at
  8.3e-4 … 1.7e-3. Above ``QN_MAX_PARAMETERS`` (a 100-dimensional input
  layer) the dense matrix is too large to carry and checkpoint: L-BFGS.

With exact conditions (`hard: true`) the condition points carry no residual,
so ENGD gets at least ``ROWS_PER_PARAMETER`` interior points per parameter:
with fewer residuals than parameters its minimum-norm step interpolates the
points (wave1d with exact conditions: loss 2e-3 but error 0.46 with 1000
points, 6.4e-4 with 3000, 150 s on one thread). It also draws fresh points
every step: on Burgers, with 3000 fixed points the loss fell to 2e-8 and the
error stayed at 0.17 (the shock falls between the points); drawn afresh, the
error reached 5e-4 – 3e-3 (300 s), and drawn where the residual is large
(`rar-d`, Wu et al. 2023) 4.5e-5 (426 s; uniform redraws stopped on the
plateau rule at 1.4e-3). The loss is then a noisy estimate, so the plateau
rule waits ``NOISY_PATIENCE`` steps (30 stopped a run at 1.5e-3).

Runs chosen by `auto` stop when the loss has not fallen by 1% over
`patience` steps (or at `--max-time`); an explicit optimizer keeps the old
fixed defaults (2000 steps, [64, 64, 64], no plateau stop).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..contract import Points
from ..symbolic.problem import SymbolicProblem

MAX_INPUTS_FOR_ENGD = 3
ENGD_MAX_PARAMETERS = 3000
"""Above this, one dense Gauss–Newton step takes many seconds on one core."""
ROWS_PER_PARAMETER = 2.5
"""ENGD's interior points per parameter when exact conditions leave no other residuals."""
NOISY_PATIENCE = 100
"""The plateau window when the points are drawn afresh every step."""


@dataclass(frozen=True)
class Recipe:
    optimizer: str
    hidden: tuple[int, ...]
    steps: int
    points: Points
    patience: int
    why: str


FIXED = Recipe("adam", (64, 64, 64), 2000, Points(2000, 500, 500), 0, "")
"""What an explicitly named optimizer gets for the values the spec leaves out."""
SMALL = Recipe("engd", (32, 32), 2000, Points(1000, 400, 400), 30, "at most 3 inputs: ENGD on a small network")
MEDIUM = Recipe("ssbroyden", (32, 32), 20000, Points(2000, 500, 500), 500, "more than 3 inputs: self-scaled Broyden")
LARGE = Recipe("lbfgs", (64, 64, 64), 20000, Points(2000, 500, 500), 500, "a large network: L-BFGS")
QN_MAX_PARAMETERS = 3000
"""`ssbroyden` carries a dense D×D inverse Hessian (72 MB at 3000, in every checkpoint)."""


def n_parameters(n_in: int, hidden: tuple[int, ...], n_out: int) -> int:
    sizes = (n_in, *hidden, n_out)
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


def _parameters(problem: SymbolicProblem, hidden: tuple[int, ...]) -> int:
    """Network and PDE parameters of ``problem`` on a network of widths ``hidden`` (behind its
    Fourier features, if any: ``2m`` inputs)."""
    n_in = 2 * problem.fourier[0] if problem.fourier else len(problem.inputs)
    return n_parameters(n_in, tuple(hidden), len(problem.unknowns)) + len(problem.learnable)


def recipe_for(problem: SymbolicProblem) -> Recipe:
    """The recipe `auto` picks for ``problem`` (and for the network the spec gives, if any)."""
    D = _parameters(problem, problem.hidden if problem.hidden is not None else MEDIUM.hidden)
    if len(problem.variables) > MAX_INPUTS_FOR_ENGD:
        if D <= QN_MAX_PARAMETERS:
            return MEDIUM
        return dataclasses.replace(LARGE, why=f"more than 3 inputs and {D} parameters, too many for a dense quasi-Newton step: L-BFGS")
    if D > ENGD_MAX_PARAMETERS:  # the spec's widths, or its Fourier features on [32, 32]
        return dataclasses.replace(LARGE, why=f"the network has {D} parameters, too many for ENGD's dense step")
    return SMALL


def choose(problem: SymbolicProblem) -> SymbolicProblem:
    """``problem`` with every open training choice (and the network, if open) made."""
    t = problem.training
    auto = t.optimizer == "auto"
    recipe = recipe_for(problem) if auto else dataclasses.replace(FIXED, optimizer=t.optimizer)
    training = dataclasses.replace(
        t,
        optimizer=recipe.optimizer,
        steps=recipe.steps if t.steps is None else t.steps,
        points=recipe.points if t.points is None else t.points,
        patience=recipe.patience if t.patience is None else t.patience,
    )
    hidden = recipe.hidden if problem.hidden is None else problem.hidden
    sampler = "uniform" if t.sampler is None else t.sampler
    resample = (1 if sampler == "rar-d" else 0) if t.resample is None else t.resample  # rar-d acts at redraws
    if auto and training.optimizer == "engd" and problem.constrained:
        if t.points is None:
            rows = ROWS_PER_PARAMETER * _parameters(problem, hidden)
            interior = max(training.points.interior, -(-int(rows) // 100) * 100)
            training = dataclasses.replace(training, points=dataclasses.replace(training.points, interior=interior))
        if t.resample is None:
            resample = 1
            sampler = "rar-d" if t.sampler is None else t.sampler
            if t.patience is None:
                training = dataclasses.replace(training, patience=NOISY_PATIENCE)
    training = dataclasses.replace(training, resample=resample, sampler=sampler)
    choice = ""
    if auto:
        chosen = [f"optimizer {training.optimizer}"]
        if problem.hidden is None:
            chosen.append(f"network {list(hidden)}")
        if t.steps is None:
            chosen.append(f"up to {training.steps} steps")
        if t.points is None and training.points != recipe.points:
            chosen.append(f"{training.points.interior} interior points")
        if t.resample is None and resample:
            chosen.append("fresh points every step" + (" where the residual is large (rar-d)" if sampler == "rar-d" else ""))
        if training.patience:
            chosen.append(f"stop when the loss falls by < 1% in {training.patience} steps")
        choice = f"auto ({recipe.why}): " + ", ".join(chosen)
    return dataclasses.replace(problem, training=training, hidden=tuple(hidden), choice=choice)
