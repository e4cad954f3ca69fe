"""Dense quasi-Newton optimizers: BFGS (`bfgs`) and the self-scaled Broyden
family (`ssbroyden`; Urbán, Stefanou & Pons 2025, "Unveiling the optimization
process of PINNs: how accurate and competitive can PINNs be?",
arXiv 2405.04230; Kiyani et al. 2025, arXiv 2501.16371).

Each step moves along ``d = −H g`` with a strong Wolfe line search
(`linesearch.wolfe_line_search`), where ``H`` is a dense D × D approximation
of the inverse Hessian of the loss ``L = Σ_k w_k mean(r_k²)``, updated from
the step ``s = θ₊ − θ`` and the gradient change ``y = g₊ − g`` by

    H₊ = (1/τ) [H − H y yᵀH / (yᵀHy) + φ v vᵀ] + s sᵀ / (yᵀs),
    v  = (yᵀHy)^{1/2} (s / (yᵀs) − H y / (yᵀHy)),

which satisfies the secant equation ``H₊ y = s`` for every ``τ, φ``. BFGS is
``τ = φ = 1``; SSBroyden chooses both each step from ``b = sᵀH⁻¹s / yᵀs`` and
``h = yᵀHy / yᵀs`` (`self_scaling`, after Al-Baali's self-scaled Broyden
class): ``τ`` rescales ``H`` towards the curvature just observed, ``φ`` picks
the member of the Broyden class between DFP (φ = 0) and BFGS (φ = 1).

Why dense and not L-BFGS: a PINN's loss is ill-conditioned, and the full
matrix keeps curvature from every step, which is what lets these methods
reach losses many orders below L-BFGS's (Urbán et al. 2025). The price is
O(D²) memory and time per step, so networks above `QN_MAX_PARAMETERS`
parameters are refused. ``H`` has the dtype of the parameters: float64
(`training.dtype`, the default) is what reaches the floor; in float32 the
rounding of the loss stops the line search orders of magnitude earlier.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pdec.contract import TrainingSettings
from pdec.runtime.distributed import current_world
from pdec.runtime.linesearch import WOLFE_CURVATURE, wolfe_line_search
from pdec.runtime.losses import term_losses
from pdec.runtime.protocol import Optimizer

QN_MAX_PARAMETERS = 10_000
"""The dense D × D inverse Hessian (800 MB in float64 at 10⁴): beyond this the optimizers refuse."""


def self_scaling(b: float, h: float, n: int, first: bool) -> tuple[float, float]:
    """``(τ, φ)`` of the self-scaled Broyden update (Urbán et al. 2025, §2.2).

    With ``a = b h − 1 ≥ 0`` (Cauchy–Schwarz), ``c = √(a / (1 + a))``,
    ``ρ⁻ = min(1, h (1 − c))``, the Broyden parameter in Hessian form is
    ``θ = max(θ⁻, min(θ⁺, (1 − b) / b))`` with ``θ⁻ = (ρ⁻ − 1) / a``,
    ``θ⁺ = 1 / ρ⁻``; in inverse form ``φ = (1 − θ) / σ``, ``σ = 1 + a θ``.
    The scaling is ``τ = min(ρ σ^{−1/(n−1)}, σ)`` for ``θ ≤ 0`` and
    ``τ = ρ min(σ^{−1/(n−1)}, 1/θ)`` for ``θ > 0``, with ``ρ = min(1, 1/b)``;
    at the first update after a reset ``τ = h / σ``, which scales the
    identity to the curvature just observed (the role ``yᵀs / yᵀy`` plays for
    BFGS). ``a = 0`` (``s`` parallel to ``Hy``, always so in one dimension)
    makes every member of the class the same update: then ``θ = 0``.
    """
    a = max(b * h - 1.0, 0.0)
    if a <= 1e-14:
        theta = 0.0
    else:
        c = math.sqrt(a / (1.0 + a))
        rho_minus = min(1.0, h * (1.0 - c))
        theta = max((rho_minus - 1.0) / a, min(1.0 / rho_minus, (1.0 - b) / b))
    sigma = 1.0 + a * theta
    phi = (1.0 - theta) / sigma
    if first:
        return h / sigma, phi
    root = sigma ** (1.0 / (1.0 - n)) if n > 1 else 1.0
    rho = min(1.0, 1.0 / b)
    tau = min(rho * root, sigma) if theta <= 0 else rho * min(root, 1.0 / theta)
    return tau, phi


@torch.no_grad()
def broyden_update(H: Tensor, s: Tensor, y: Tensor, g: Tensor, t: float, self_scaled: bool, first: bool):
    """Update ``H`` in place from the step ``s = t d`` along ``d = −H g`` and the
    gradient change ``y``; return ``{"tau": τ, "phi": φ}``, or None when skipped.

    Skipped when ``yᵀs ≤ ε |y| |s|`` (ε the dtype's machine epsilon): without
    positive curvature along ``s`` the update would lose positive definiteness
    (strong Wolfe steps always have it; a search that ran out of evaluations may
    not). ``b = sᵀH⁻¹s / yᵀs`` is ``−t sᵀg / yᵀs`` because ``H⁻¹s = −t g``.
    BFGS's first update replaces ``H = I`` by ``(yᵀs / yᵀy) I`` before updating
    (Nocedal & Wright 2006, eq. 6.20). Every term of the update lies in the span
    of ``s`` and ``Hy``, so it is one pass over ``H``:
    ``H₊ = H/τ + [s Hy] C [s Hy]ᵀ`` with the symmetric 2 × 2 matrix ``C``.
    """
    ys = float(y @ s)
    if not ys > torch.finfo(H.dtype).eps * float(y.norm() * s.norm()):  # also false for NaN
        return None
    b = -t * float(s @ g) / ys
    if not b > 0:
        return None
    if first and not self_scaled:
        H.mul_(ys / float(y @ y))
    Hy = H @ y
    yHy = float(y @ Hy)
    rho = 1.0 / ys
    tau, phi = self_scaling(b, yHy * rho, H.shape[0], first) if self_scaled else (1.0, 1.0)
    C = torch.tensor(
        [[phi * yHy * rho * rho / tau + rho, -phi * rho / tau], [-phi * rho / tau, (phi - 1.0) / (yHy * tau)]],
        dtype=H.dtype, device=H.device,
    )  # fmt: skip
    U = torch.stack([s, Hy], dim=1)
    H.addmm_(U, C @ U.T, beta=1.0 / tau)
    return {"tau": tau, "phi": phi}


class BFGS(Optimizer):
    """Dense BFGS with a strong Wolfe line search; ignores ``lr``.

    The first step after a start or reset goes along ``−g`` with the trial step
    ``min(1, 1/|g|)`` (times ``scale``, halved by every `recover`); later steps
    try the quasi-Newton step 1 first. ``info``: the step size and the number of
    loss evaluations of the line search.

    >>> import pdec
    >>> result = pdec.solve("specs/poisson2d.yaml", optimizer="bfgs", steps=500)  # doctest: +SKIP
    """

    name = "bfgs"
    self_scaled = False
    curvature = WOLFE_CURVATURE
    """c₂ of the line search; near 0 the search is nearly exact (tests: finite termination on a quadratic)."""

    def __init__(self, problem, settings: TrainingSettings) -> None:
        super().__init__(problem, settings)
        self.params = list(problem.model.parameters()) + list(problem.parameters.values())
        D = sum(p.numel() for p in self.params)
        if D > QN_MAX_PARAMETERS:
            raise ValueError(
                f"optimizer `{self.name}` keeps a dense {D}×{D} inverse Hessian; networks above "
                f"{QN_MAX_PARAMETERS} parameters are not supported. Use `lbfgs` (or `kfac`) instead."
            )
        self.H = torch.eye(D, dtype=self.params[0].dtype, device=self.params[0].device)
        self.updates = 0
        """Updates of ``H`` since the last reset (0: ``H = I``)."""
        self.scale = 1.0
        self.steps = 0
        self._here: tuple | None = None
        """``(θ, weights, loss, losses, gradient)`` at the current point, from the last line search."""

    # -- the loss and its gradient at a flat parameter vector ------------------
    def _flat(self) -> Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.params])

    @torch.no_grad()
    def _set(self, x: Tensor) -> None:
        start = 0
        for p in self.params:
            p.copy_(x[start : start + p.numel()].view_as(p))
            start += p.numel()

    def _evaluate(self, residual_fn, weights):
        with torch.enable_grad():
            losses = term_losses(residual_fn(), weights)
            total = sum(losses.values())
            grads = torch.autograd.grad(total, self.params, allow_unused=True)
        g = torch.cat([(d if d is not None else torch.zeros_like(p)).reshape(-1) for d, p in zip(grads, self.params)])
        world = current_world()
        if world.size > 1:  # a rank's share of the loss and gradient (`distributed.py`): sum over the ranks
            values = torch.stack([v.detach().to(torch.float64) for v in losses.values()])
            world.sum_many_([values, g])
            losses = {k: values[i].to(v.dtype) for i, (k, v) in enumerate(losses.items())}
            total = sum(losses.values())
        return total.detach(), {k: v.detach() for k, v in losses.items()}, g

    def _current(self, x: Tensor, residual_fn, weights):
        """Loss and gradient at ``x``: those of the last accepted line-search point
        when nothing changed since (parameters, weights, collocation points)."""
        here = self._here
        if here is not None and not self.settings.resample and here[1] == weights and torch.equal(here[0], x):
            return here[2:]
        return self._evaluate(residual_fn, weights)

    def _reset(self) -> None:
        self.H.zero_()
        self.H.diagonal().fill_(1.0)
        self.updates = 0

    # -- the protocol -------------------------------------------------------------
    def step(self, residual_fn, weights):
        x0 = self._flat()
        f0, losses0, g0 = self._current(x0, residual_fn, weights)
        self.steps += 1
        if not (torch.isfinite(f0) and torch.isfinite(g0).all()):
            self._here = None
            return f0, losses0  # the trainer restores the last good state and calls `recover`
        d = -(self.H @ g0)
        d0 = float(g0 @ d)
        if not d0 < 0:  # rounding has spoiled H (or g = 0): restart from steepest descent
            self._reset()
            d, d0 = -g0, -float(g0 @ g0)
        self.info = {"step_size": 0.0, "evaluations": 0.0}
        if d0 == 0:  # a stationary point
            self._here = (x0, dict(weights), f0, losses0, g0)
            return f0, losses0
        t = 1.0 if self.updates else self.scale * min(1.0, 1.0 / math.sqrt(-d0))

        def phi(t: float):
            x = torch.add(x0, d, alpha=t)
            self._set(x)
            f, losses, g = self._evaluate(residual_fn, weights)
            return float(f), float(g @ d), (x, f, losses, g)

        t, _, _, data, evals = wolfe_line_search(phi, float(f0), d0, t, c2=self.curvature)
        self.info = {"step_size": t, "evaluations": float(evals)}
        if data is None:  # no lower point along d: stay, and next time start over from −g
            self._set(x0)
            self._reset()
            self._here = (x0, dict(weights), f0, losses0, g0)
            return f0, losses0
        x, f, losses, g = data
        self._set(x)
        scaling = broyden_update(self.H, x - x0, g - g0, g0, t, self.self_scaled, first=self.updates == 0)
        if scaling is not None:
            self.updates += 1
            if self.self_scaled:
                self.info.update(scaling)
        self._here = (x, dict(weights), f, losses, g)
        return f, losses

    def recover(self, step: int) -> None:
        """The trainer restored older parameters after a non-finite loss: forget the
        curvature (``H = I``) and the cached gradient, and halve the first trial step."""
        self._reset()
        self._here = None
        self.scale *= 0.5

    def state_dict(self) -> dict:
        return {"H": self.H, "updates": self.updates, "scale": self.scale, "steps": self.steps, "here": self._here}

    def load_state_dict(self, state: dict) -> None:
        self.H = state["H"].to(dtype=self.H.dtype, device=self.H.device).clone()
        self.updates, self.scale, self.steps = int(state["updates"]), float(state["scale"]), int(state["steps"])
        here, device = state["here"], self.H.device  # checkpoints are read onto the CPU
        self._here = None if here is None else (
            here[0].to(device), here[1], here[2].to(device), {k: v.to(device) for k, v in here[3].items()}, here[4].to(device)
        )  # fmt: skip


class SSBroyden(BFGS):
    """The self-scaled Broyden update (`self_scaling`) in place of BFGS's;
    ``info`` adds its ``tau`` and ``phi``.

    >>> import pdec
    >>> result = pdec.solve("specs/poisson2d.yaml", optimizer="ssbroyden", steps=500)  # doctest: +SKIP
    """

    name = "ssbroyden"
    self_scaled = True
