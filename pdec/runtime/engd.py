"""Energy natural gradient descent (ENGD; Müller & Zeinhofer, ICML 2023).

The step solves the Gauss–Newton system of all stacked weighted residuals,
``(J̃ᵀJ̃ + λI) Δ = J̃ᵀ r̃``. Why this matrix: for the PINN loss, ``J̃ᵀJ̃`` is
the energy natural gradient's Gramian ``G_ij = D²E(u_θ)(∂_i u_θ, ∂_j u_θ)``
(exactly for linear PDEs, in its Gauss–Newton form otherwise), so ``Δ`` is
the function-space Newton step projected onto the network's tangent space
(Müller & Zeinhofer 2023). The step size is searched on the grid
2^0 … 2^-30 on the loss. ``J̃`` comes from the Taylor streams
(``curvature.py``), never from ``torch.func.jacrev``. With at least as many
residuals as parameters the system is solved in parameter space, with
fewer in sample space by the Woodbury identity,
``Δ = J̃ᵀ (J̃J̃ᵀ + λI)⁻¹ r̃`` (Guzmán-Cordero et al. 2025); either way by
Cholesky (`engd_solve`).

Dense: O(D²) memory and O(D³) time, so networks above
``GN_MAX_PARAMETERS`` (10⁴) parameters are refused; use `kfac` there.

With ``training.sketch: s`` the step is the randomized variant of
Guzmán-Cordero et al. (2025): the smaller of ``J̃J̃ᵀ`` and ``J̃ᵀJ̃`` is replaced
by its rank-``s`` Nyström approximation (`pdec.runtime.nystrom`), built from
``s`` products ``J̃(J̃ᵀΩ)`` in O(N·D·s) instead of O(N·D·min(N, D)) for the
matrix and its Cholesky. The sketch ``Ω`` is drawn from a generator seeded by
the training seed and the number of sketches drawn so far (checkpointed), so a
resumed run draws the same sketches.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pdec.contract import TrainingSettings
from pdec.runtime.curvature import gn_linearize, gn_one_thread
from pdec.runtime.linesearch import gn_line_search, gn_unflatten
from pdec.runtime.nystrom import nystrom, nystrom_solve
from pdec.runtime.protocol import Optimizer

GN_MAX_PARAMETERS = 10_000
"""ENGD builds the dense Gramian (or kernel): beyond this it refuses."""


JITTER_TRIES = 8
MAX_DAMPING = 1e6
"""Adaptive damping stops growing here: λ that large makes the step a short gradient step."""


def engd_solve(J: Tensor, r: Tensor, damping: float) -> Tensor:
    """``(JᵀJ + λI)⁻¹ Jᵀ r`` by a Cholesky factorization of the smaller Gramian.

    With at least as many rows as columns the D×D system ``(JᵀJ + λI) Δ = Jᵀr``;
    with fewer, the N×N kernel system and ``Δ = Jᵀ (JJᵀ + λI)⁻¹ r`` (the
    Woodbury identity; Guzmán-Cordero et al. 2025). Why Cholesky and not an
    SVD-based least squares: it is about 4× faster at the sizes `auto` uses
    (0.49 s against 2.05 s for 1400 × 1185 on one thread), and squaring the
    conditioning does no harm at the damping in use, which bounds the
    smallest eigenvalue. A factorization that fails (a singular Gramian with
    λ = 0) is retried with a jitter of 1e-14, 1e-12, … of the mean diagonal.
    """
    N, D = J.shape
    wide = N < D
    gram = J @ J.T if wide else J.T @ J
    rhs = r if wide else J.T @ r
    x = gram_solve(gram, rhs, damping)
    if x is None:  # not factorizable even with jitter: a non-finite Jacobian. A non-finite step lets the
        # line search find no finite loss, and the trainer recovers from the last good state.
        return torch.full((D,), float("nan"), dtype=J.dtype, device=J.device)
    return J.T @ x if wide else x


def gram_solve(gram: Tensor, rhs: Tensor, damping: float) -> Tensor | None:
    """``(gram + λI)⁻¹ rhs`` by Cholesky, with the jitter retries of `engd_solve`; None when
    no factorization succeeds."""
    scale = float(gram.diagonal().mean()) or 1.0
    shift = damping
    for attempt in range(JITTER_TRIES):
        system = gram.clone()
        system.diagonal().add_(shift)
        factor, info = torch.linalg.cholesky_ex(system)
        if int(info) == 0:
            return torch.cholesky_solve(rhs.unsqueeze(1), factor)[:, 0]
        shift = damping + scale * 1e-14 * 100**attempt
    return None


def engd_solve_sharded(J: Tensor, r: Tensor, damping: float, world) -> Tensor:
    """`engd_solve` when the rows of ``J`` and ``r`` are spread over the ranks of a distributed
    run: ``J̃ᵀJ̃ = Σ_ranks JᵀJ`` and ``J̃ᵀr̃ = Σ_ranks Jᵀr`` are sums over rows, all-reduced, and
    every rank solves the same D×D system. (The N×N kernel form needs every row on one rank.)"""
    gram, rhs = J.T @ J, J.T @ r
    world.sum_many_([gram, rhs])
    x = gram_solve(gram, rhs, damping)
    return torch.full((J.shape[1],), float("nan"), dtype=J.dtype, device=J.device) if x is None else x


def sketched_solve(J: Tensor, r: Tensor, damping: float, rank: int, generator: torch.Generator, world=None) -> Tensor:
    """`engd_solve` with the rank-``rank`` Nyström approximation of the smaller Gramian:
    ``J̃ᵀ (K̂ + λI)⁻¹ r̃`` with ``K̂ ≈ J̃J̃ᵀ`` when N < D, else ``(Ĝ + λI)⁻¹ J̃ᵀr̃`` with
    ``Ĝ ≈ J̃ᵀJ̃`` (J transposed, the same code). Distributed (``world`` given, rows of ``J``
    spread over the ranks): always the D×D form, its products summed over the ranks (every
    rank draws the same ``Ω``).

    The part of the right-hand side outside the sketch's range is divided by ``λ + λ̂_s``
    (the smallest kept eigenvalue; Frangella, Tropp & Udell 2023), not by ``λ`` alone as in
    ``(K̂ + λI)⁻¹``: with λ ~ 1e-8 that part would be blown up 1e8-fold whenever the sketch
    misses some of the kernel's range, and the line search would cut the whole step to
    nothing (measured on the 2d Poisson, D = 8577 at 40 steps of ENGD: with s = 40 the best
    step along ``(K̂ + λI)⁻¹`` was 0.03, along this one 1.0, with the same Gauss–Newton
    model decrease or better). With a sketch that covers the range (s ≥ rank) both are
    the exact step."""
    N, D = J.shape
    if world is not None:
        def apply(omega: Tensor) -> Tensor:
            y = J.T @ (J @ omega)
            world.sum_many_([y])
            return y

        rhs = J.T @ r
        world.sum_many_([rhs])
        wide = False
    else:
        wide = N < D
        apply = (lambda omega: J @ (J.T @ omega)) if wide else (lambda omega: J.T @ (J @ omega))
        rhs = r if wide else J.T @ r
    try:
        approx = nystrom(apply, N if wide else D, rank, generator, dtype=J.dtype, device=J.device)
    except (FloatingPointError, torch.linalg.LinAlgError):  # a non-finite Jacobian: as in `engd_solve`
        return torch.full((D,), float("nan"), dtype=J.dtype, device=J.device)
    x = nystrom_solve(approx, rhs, damping, tail=float(approx.eigenvalues[-1]) if approx.eigenvalues.numel() else 0.0)
    return J.T @ x if wide else x


def adapt_damping(damping: float, step_size: float, floor: float) -> float:
    """Levenberg–Marquardt's rule on the line search's verdict (Nocedal & Wright 2006, §10.3).

    A full step accepted says the Gauss–Newton model is right: trust it more (λ/3, down to
    the spec's ``damping``). A step cut below 1/4 says it is wrong far out — typically with
    fewer residuals than parameters, where the minimum-norm step is huge and the line search
    shrinks it to nothing (1e-9 on a wave equation with exact conditions): λ×10 shortens
    the step towards the gradient direction, where the model holds."""
    if step_size >= 1.0:
        return max(floor, damping / 3)
    if step_size < 0.25:
        return min(MAX_DAMPING, damping * 10)
    return damping


class ENGD(Optimizer):
    """Energy natural gradient: the full Gauss–Newton step plus a grid line search.

    >>> import pdec
    >>> result = pdec.solve("specs/poisson2d.yaml", optimizer="engd", steps=50)  # doctest: +SKIP
    """

    name = "engd"

    def __init__(self, problem, settings: TrainingSettings) -> None:
        super().__init__(problem, settings)
        D = sum(p.numel() for p in problem.model.parameters()) + sum(p.numel() for p in problem.parameters.values())
        if D > GN_MAX_PARAMETERS:
            raise ValueError(
                f"optimizer `engd` builds the dense {D}×{D} Gauss–Newton matrix; networks above "
                f"{GN_MAX_PARAMETERS} parameters are not supported. Use `kfac` (or `kfac*`) instead."
            )
        self.damping = float(self.settings.damping)
        self.steps = 0
        self.sketches = 0
        """Sketches drawn so far (never reset): with the seed, it seeds the next sketch."""

    def gramian(self, residual_fn, weights) -> Tensor:
        """The dense Gauss–Newton matrix ``J̃ᵀJ̃`` (float64), for tests."""
        J = gn_linearize(self.problem, residual_fn, weights).jacobian()
        return J.T @ J

    def step(self, residual_fn, weights):
        lin = gn_linearize(self.problem, residual_fn, weights)
        J, r = lin.jacobian(), lin.local_residual()
        with gn_one_thread():
            if self.settings.sketch:
                delta = sketched_solve(J, r, self.damping, self.settings.sketch, self._generator(), None if lin.rows is None else lin.world)
            elif lin.rows is None:
                delta = engd_solve(J, r, self.damping)
            else:
                delta = engd_solve_sharded(J, r, self.damping, lin.world)
        vs, vp = gn_unflatten(-delta, lin.shapes, lin.n_pde)
        eta, total, losses = gn_line_search(self.problem, residual_fn, weights, vs, vp, current=lin.total)
        self.steps += 1
        self.info = {"damping": self.damping, "step_size": eta, "rows": float(lin.n_rows)}
        if self.settings.sketch:
            self.info["sketch"] = float(self.settings.sketch)
        if self.settings.adaptive_damping:
            self.damping = adapt_damping(self.damping, eta, float(self.settings.damping))
        return total, losses

    def _generator(self) -> torch.Generator:
        """The generator of the next sketch: seeded by the training seed and the sketch count."""
        generator = torch.Generator().manual_seed(self.settings.seed * 1_000_003 + self.sketches)
        self.sketches += 1
        return generator

    def recover(self, step: int) -> None:
        """ENGD keeps no curvature between steps: the count restarts and the damping grows."""
        self.steps = 0
        if self.settings.adaptive_damping:
            self.damping = min(MAX_DAMPING, self.damping * 100)

    def state_dict(self) -> dict:
        return {"steps": self.steps, "damping": self.damping, "sketches": self.sketches}

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])
        self.damping = float(state.get("damping", self.settings.damping))
        self.sketches = int(state.get("sketches", 0))
