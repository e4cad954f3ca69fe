"""KFAC for PINN losses (Dangel, Müller & Zeinhofer, NeurIPS 2024): the
Kronecker factors, their moving average and damping, and the strategies
`kfac` and `kfac*` (two-level KFAC, `kfac2l`, is in ``two_level.py``).

Curvature. Per linear layer ``[W | b]`` the Gauss–Newton block is
approximated by one Kronecker product per *Kronecker term*: a loss term on
one Taylor pass (a point set; a periodic term has two passes). With the
layer's input streams ``a[s, n]`` (bias column 1 on the value stream, 0 on
the others), the output-stream gradients ``g_b[s, n]`` of the residual block
``b`` and the term's scale ``c² = w/M``:

- expand: ``A = 1/(NS) Σ_{n,s} a aᵀ``, ``B = c² Σ_b Σ_{n,s} g_b g_bᵀ``;
- reduce: ``A = 1/N Σ_n ā āᵀ`` (ā the mean over streams),
  ``B = c² Σ_b Σ_n (Σ_s g_b)(Σ_s g_b)ᵀ``.

Both are exact for deep linear networks whose residual rows read one stream
each (expand) or whose streams agree (reduce) (Eschenhagen et al. 2023 for
the two settings; Dangel, Müller & Zeinhofer 2024 for the Taylor streams).
Nonlinear PDEs and systems need nothing special: ``g`` is the gradient of
the residual, i.e. the Gauss–Newton linearization. Factors start at the
identity and follow an exponential moving average (``ema``), refreshed
every ``update_every`` steps, always in float64; ``damping`` λ is added to
every factor.

Solve. A layer with more than two terms and at most ``KFAC_DENSE_MAX``
weights keeps all its terms (its inverse is dense, `kronecker.py`).
Otherwise the terms are merged into at most two groups, whose sum has an
exact inverse by generalized eigendecompositions (Martens & Grosse 2015,
App. B): terms on operator passes (``S > 1``) and terms on value-only
passes, each group by the trace-weighted merge ``Σ_t A_t⊗B_t ≈
(Σ_t π_t A_t) ⊗ (Σ_t B_t)`` with ``π_t = tr B_t / Σ tr B``, which keeps the
trace ``Σ_t tr A_t tr B_t`` exactly and is exact when the group's A factors
agree (e.g. several equations on the interior points).

Learnable PDE parameters get their exact (dense, P×P) Gauss–Newton block,
damped by λ; the cross terms with the network are dropped like the ones
between layers.

Damping. ``kfac`` and ``kfac2l`` default to a fixed λ = 1e-10 (`KFAC.defaults`), as the
reference implementation of the paper's experiments does with its tuned fixed λ (3e-13 …
1e-8). With ``adaptive_damping`` (``kfac*``'s and ENGD's default) λ starts at ``damping`` and
follows the Levenberg–Marquardt rule (Martens & Grosse 2015, §6.5): ρ, the loss change of
the step taken over the Gauss–Newton model's prediction for it, lowers λ when above 3/4 and
raises it when below 1/4; where the model is good λ reaches its floor within ~60 steps.
(Measuring ρ for `kfac` at the model-optimal step along its direction instead, as pdec did
before, cost a JVP and a loss per step, kept λ between 1e-8 and 7e-7, and ended 1.1–9×
above the fixed λ at equal time: benchmarks/README.md, "Second order at scale".)
"""

from __future__ import annotations

import math
from abc import abstractmethod

import torch
from torch import Tensor

from pdec.contract import KFAC_FLAVOURS, TrainingSettings
from pdec.runtime.curvature import GNLinearization, gn_linearize, reduce_kfac_factors
from pdec.runtime.kronecker import BlockDiagonal, BlockDiagonalInverse, KroneckerSum
from pdec.runtime.linesearch import (
    GN_GRID,
    gn_apply,
    gn_axpy,
    gn_dot,
    gn_line_search,
    gn_loss,
    gn_restore,
    gn_save,
)
from pdec.runtime.protocol import Optimizer

KFAC_DENSE_MAX = 1024
"""Layers with at most this many weights (incl. bias) and more than two
Kronecker terms are solved exactly with the dense sum instead of the merge."""
DAMPING_FACTOR = 0.8
"""Levenberg–Marquardt rule: λ ← 0.8 λ when ρ > 3/4, λ ← λ / 0.8 when
ρ < 1/4 (`KroneckerFactored._adapt_damping`; Martens & Grosse use 0.95 per step)."""
DAMPING_RANGE = (1e-14, 1e4)
"""Bounds of the adapted λ."""


# ---------------------------------------------------------------------------
# factors and the per-layer curvature


def kfac_factors(lin: GNLinearization, flavour: str = "expand") -> dict[tuple[str, int], list[tuple[Tensor, Tensor, int]]]:
    """``{(term, pass): [(A, B, S) per layer]}`` at the current parameters (float64)."""
    if flavour not in KFAC_FLAVOURS:
        raise ValueError(f"Invalid `kfac_flavour` `{flavour}`. Supported: {', '.join(KFAC_FLAVOURS)}.")
    out: dict[tuple[str, int], list] = {}
    for t in lin.terms:
        by_pass: dict[int, list] = {}
        for piece in t.pieces:
            by_pass.setdefault(piece.pass_index, []).append(piece)
        for p, pieces in by_pass.items():
            layers = []
            for li in range(len(lin.shapes)):
                a = pieces[0].layers[li][0]
                S, N = a.shape[:2]
                if flavour == "expand":
                    a2 = a.reshape(S * N, -1)
                    A = a2.T @ a2 / (N * S)
                else:
                    am = a.mean(0)
                    A = am.T @ am / N
                B = 0
                for piece in pieces:
                    g = piece.layers[li][1]
                    g2 = g.reshape(S * N, -1) if flavour == "expand" else g.sum(0)
                    B = B + g2.T @ g2
                layers.append((A, t.c**2 * B, S))
            out[(t.name, p)] = layers
    return reduce_kfac_factors(out, lin)  # summed over the ranks of a distributed run


def _merge(pairs: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Trace-weighted merge of Kronecker products into one (exact when the A agree)."""
    if len(pairs) == 1:
        return pairs[0]
    traces = torch.stack([B.diagonal().sum() for _, B in pairs])
    weights = traces / traces.sum() if traces.sum() > 0 else torch.full_like(traces, 1 / len(pairs))
    A = sum(w * A for w, (A, _) in zip(weights, pairs))
    B = sum(B for _, B in pairs)
    return A, B


def kfac_layer(pairs: list[tuple[Tensor, Tensor, int]], damping: float) -> KroneckerSum:
    """One layer's damped curvature ``Σ_t (A_t + λI) ⊗ (B_t + λI)`` from its
    Kronecker terms ``(A, B, S)``, with the terms of a large layer merged into
    at most two (operator passes, value passes) so the inverse is exact and cheap."""
    n = pairs[0][0].shape[0] * pairs[0][1].shape[0]
    if len(pairs) > 2 and n > KFAC_DENSE_MAX:
        ops = [(A, B) for A, B, S in pairs if S > 1]
        vals = [(A, B) for A, B, S in pairs if S == 1]
        pairs = [_merge(g) for g in (ops, vals) if g]
    else:
        pairs = [(A, B) for A, B, _ in pairs]
    eye_a = torch.eye(pairs[0][0].shape[0], dtype=torch.float64, device=pairs[0][0].device)
    eye_b = torch.eye(pairs[0][1].shape[0], dtype=torch.float64, device=pairs[0][1].device)
    return KroneckerSum([(A + damping * eye_a, B + damping * eye_b) for A, B in pairs])


# ---------------------------------------------------------------------------
# the shared base and the strategies


class KroneckerFactored(Optimizer):
    """What the KFAC strategies share: the factors' moving average, the
    per-layer curvature and its inverse, the adaptive damping and the state.
    A strategy supplies ``direction`` (the preconditioned gradient) and
    ``update`` (how far to go along it)."""

    def __init__(self, problem, settings: TrainingSettings) -> None:
        super().__init__(problem, settings)
        settings = self.settings  # with this optimizer's defaults filled in
        self.ema = float(settings.ema)
        self.momentum = float(settings.momentum)
        self.flavour = settings.kfac_flavour
        if self.flavour not in KFAC_FLAVOURS:
            raise ValueError(f"Invalid `kfac_flavour` `{self.flavour}`. Supported: {', '.join(KFAC_FLAVOURS)}.")
        self.adaptive = bool(settings.adaptive_damping)
        self.update_every = max(1, int(settings.update_every))
        self.reset()

    def reset(self) -> None:
        """The state of a fresh optimizer: identity factors, the initial damping."""
        self.damping = float(self.settings.damping)
        self.steps = 0
        self.factors: dict = {}
        self.layers: list[KroneckerSum] | None = None
        self.previous = None  # the last step, per layer and PDE parameters
        self.info = {}

    def recover(self, step: int) -> None:
        """Curvature and damping may be spoiled by the non-finite step: start afresh."""
        self.reset()

    # -- curvature ---------------------------------------------------------
    def update_factors(self, lin: GNLinearization) -> None:
        """EMA of the factors (each starts at the identity), then the damped
        per-layer curvature (its inverse is computed on first use)."""
        new = kfac_factors(lin, self.flavour)
        beta = self.ema
        for key, layers in new.items():
            old = self.factors.get(key)
            if old is None:
                old = [
                    (torch.eye(A.shape[0], dtype=torch.float64, device=A.device),
                     torch.eye(B.shape[0], dtype=torch.float64, device=B.device), S)
                    for A, B, S in layers
                ]  # fmt: skip
            self.factors[key] = [
                (beta * A0 + (1 - beta) * A, beta * B0 + (1 - beta) * B, S) for (A0, B0, _), (A, B, S) in zip(old, layers)
            ]
        keys = list(self.factors)
        n_layers = len(self.factors[keys[0]])
        self.layers = [kfac_layer([self.factors[k][li] for k in keys], self.damping) for li in range(n_layers)]

    def curvature(self, lin: GNLinearization) -> BlockDiagonal:
        """The block-diagonal KFAC matrix: the layers' curvature from the last
        factor update, the PDE parameters' exact block at the current λ."""
        pde = None
        if lin.n_pde:
            pde = sum(t.c**2 * t.p_cols.T @ t.p_cols for t in lin.terms if t.p_cols is not None)
            pde = lin.world.sum_(pde)  # a sum over points: over the ranks too
            pde = pde + self.damping * torch.eye(lin.n_pde, dtype=torch.float64, device=pde.device)
        return BlockDiagonal(self.layers, pde)

    # -- the step ------------------------------------------------------------
    def direction(self, lin: GNLinearization, inverse: BlockDiagonalInverse, grad):
        """The preconditioned gradient ``F⁻¹ ∇`` (the step goes against it)."""
        return inverse @ grad

    @abstractmethod
    def update(self, lin, residual_fn, weights, v, grad):
        """Move along ``v``; returns ``(total, losses, step size, momentum, ρ or None)``."""

    def step(self, residual_fn, weights):
        lin = gn_linearize(self.problem, residual_fn, weights)
        if self.layers is None or self.steps % self.update_every == 0:
            self.update_factors(lin)
        grad = lin.gradient()
        inverse = self.curvature(lin).inverse()
        xs, xp = self.direction(lin, inverse, grad)
        damping = self.damping
        total, losses, eta, mu, rho = self.update(lin, residual_fn, weights, ([-x for x in xs], -xp), grad)
        self.steps += 1
        if rho is not None:
            self._adapt_damping(rho)
        cond_a = max(b.cond[0] for b in inverse.blocks)
        cond_b = max(b.cond[1] for b in inverse.blocks)
        self.info = {"damping": damping, "step_size": eta, "momentum": mu, "cond_A": cond_a, "cond_B": cond_b}
        if rho is not None:
            self.info["rho"] = rho
        return total, losses

    # -- adaptive damping ------------------------------------------------------
    def _adapt_damping(self, rho: float) -> None:
        """The Levenberg–Marquardt rule (Martens & Grosse 2015, §6.5) on ``ρ``,
        the loss change of the Gauss–Newton model's step over its prediction.

        Why: a fixed λ that suits one problem stalls another (1e-10 works on
        the 2d Poisson and stalls the heat equation, where the undamped KFAC
        direction is long in directions the Gauss–Newton model cannot see;
        benchmarks/README.md). ρ ≈ 1: trust the model more; ρ small or
        negative: damp more. The new λ takes effect with the next inverses."""
        if rho > 0.75:
            self.damping *= DAMPING_FACTOR
        elif rho < 0.25:
            self.damping /= DAMPING_FACTOR
        self.damping = min(max(self.damping, DAMPING_RANGE[0]), DAMPING_RANGE[1])

    @staticmethod
    def _ratio(lin, grad, step, J_step, total) -> float | None:
        """``ρ = ΔL / (2∇ᵀd + ‖J̃d‖²)`` for the step ``d``, or None when the
        model predicts no decrease above rounding."""
        predicted = 2 * float(gn_dot(*grad, *step)) + float(J_step @ J_step)
        actual = float(total) - float(lin.total)
        if not predicted < -1e-12 * float(lin.total):
            return None
        return actual / predicted if math.isfinite(actual) else -math.inf

    # -- state ---------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "steps": self.steps,
            "factors": self.factors,
            "layers": None if self.layers is None else [b.state_dict() for b in self.layers],
            "previous": self.previous,
            "damping": self.damping,
        }

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])
        self.factors = state["factors"]
        layers = state["layers"]
        self.layers = None if layers is None else [KroneckerSum.from_state_dict(s) for s in layers]
        self.previous = state["previous"]
        self.damping = float(state["damping"])


class KFAC(KroneckerFactored):
    """`kfac`: the heavy-ball buffer ``b ← μ b + δ`` of the KFAC directions
    ``δ = -F⁻¹∇``, with the step ``η b`` from the grid 2^0 … 2^-30 on the loss
    (first minimum along the grid, `linesearch.gn_line_search`).

    Why the line search sees the whole buffer: that is the reference
    implementation of the paper's experiments, whose tuned runs all use
    μ = 0.44–0.76; searching only ``η δ`` on top of a fixed ``μ × last step``
    lets a stale momentum term push the loss up that no step size can undo.
    When no grid point beats the current loss along the buffer, the buffer is
    reset to ``δ`` and searched again.

    >>> import pdec
    >>> result = pdec.solve("specs/poisson2d.yaml", optimizer="kfac", steps=50)  # doctest: +SKIP
    """

    name = "kfac"
    defaults = {"damping": 1e-10, "adaptive_damping": False, "momentum": 0.6}
    """Tuned (benchmarks/README.md, "Second order at scale"): a fixed tiny λ as in the reference
    implementation, whose tuned runs use μ = 0.44–0.76; 1e-8 cost 10× on the 1+1d heat equation."""

    def update(self, lin, residual_fn, weights, v, grad):
        vs, vp = v
        mu = self.momentum if self.previous is not None else 0.0
        buffer = gn_axpy(mu, *self.previous, vs, vp) if mu else (vs, vp)
        saved = gn_save(self.problem) if mu else None
        eta, total, losses = gn_line_search(self.problem, residual_fn, weights, *buffer, None, lin.total)
        if mu and not total < lin.total:  # the buffer points uphill: start it afresh
            gn_restore(self.problem, saved)
            buffer, mu = (vs, vp), 0.0
            eta, total, losses = gn_line_search(self.problem, residual_fn, weights, vs, vp, None, lin.total)
        self.previous = buffer if self.momentum else None
        rho = None
        if self.adaptive:
            step = ([eta * x for x in buffer[0]], eta * buffer[1])
            with torch.no_grad():
                rho = self._ratio(lin, grad, step, lin.jvp(*step), total)
        return total, losses, eta, mu, rho


class KFACStar(KroneckerFactored):
    """`kfac*`: the Martens–Grosse step ``d = α δ + μ δ_prev`` with ``(α, μ)``
    minimizing the quadratic model ``∇ᵀd + ½ dᵀ(G + λI)d`` over the KFAC
    direction δ and the previous step (Martens & Grosse 2015, §7), with exact
    Gauss–Newton products ``‖J̃d‖²`` (Jacobian–vector products read from the
    recorded streams, ``GNLinearization.jvp``). A step that increases the
    loss is halved until it does not (at most 31 times: the model can be far
    off early in training with a small damping)."""

    name = "kfac*"

    def update(self, lin, residual_fn, weights, v, grad):
        vs, vp = v
        gs, gp = grad
        dirs = [(vs, vp)] + ([self.previous] if self.previous is not None else [])
        Jd = [lin.jvp(*d) for d in dirs]
        k = len(dirs)
        M = torch.empty(k, k, dtype=torch.float64)
        b = torch.empty(k, dtype=torch.float64)
        for i in range(k):
            b[i] = gn_dot(gs, gp, *dirs[i])
            for j in range(k):
                M[i, j] = Jd[i] @ Jd[j] + self.damping * gn_dot(*dirs[i], *dirs[j])
        if not (torch.isfinite(M).all() and torch.isfinite(b).all()):
            self.previous = None  # a broken model: fall back to the line search
            eta, total, losses = gn_line_search(self.problem, residual_fn, weights, vs, vp, None, lin.total)
            return total, losses, eta, 0.0, None
        coef = -torch.linalg.pinv(M) @ b
        eta, mu = float(coef[0]), float(coef[1]) if k > 1 else 0.0
        step_s, step_p = [eta * v for v in vs], eta * vp
        if k > 1:
            step_s, step_p = gn_axpy(mu, *self.previous, step_s, step_p)
        saved = gn_save(self.problem)
        scale = 1.0
        rho = None
        for _ in GN_GRID:  # safeguard: halve a step that increases the loss
            gn_apply(self.problem, step_s, step_p, scale)
            total, losses = gn_loss(residual_fn, weights)
            if rho is None:  # the model's own step
                J_step = eta * Jd[0] + (mu * Jd[1] if k > 1 else 0)
                rho = self._ratio(lin, grad, (step_s, step_p), J_step, total) if self.adaptive else None
            if torch.isfinite(total) and total <= lin.total:
                break
            gn_restore(self.problem, saved)
            scale *= 0.5
        else:
            gn_apply(self.problem, step_s, step_p, scale)
            total, losses = gn_loss(residual_fn, weights)
        self.previous = ([scale * x for x in step_s], scale * step_p)
        return total, losses, scale * eta, scale * mu, rho
