"""KFAC for PINN losses (Dangel, Müller & Zeinhofer, NeurIPS 2024) and
two-level KFAC (Koroko et al. 2023); REFERENCES §2 and §4.

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
each (expand) or whose streams agree (reduce). Nonlinear PDEs and systems
need nothing special: ``g`` is the gradient of the residual, i.e. the
Gauss–Newton linearization. Factors start at the identity and follow an
exponential moving average (``ema``), refreshed every ``update_every``
steps, always in float64; ``damping`` λ is added to every factor.

Solve. A layer with more than two terms and at most ``KFAC_DENSE_MAX``
weights is solved exactly with the dense sum. Otherwise, with two Kronecker terms per layer, ``(A₁⊗B₁ + A₂⊗B₂) x = v`` is
solved exactly via generalized eigendecompositions (Martens & Grosse 2015,
App. B): ``S_Aᵀ A₁ S_A = I``, ``S_Aᵀ A₂ S_A = diag(α)`` (likewise B), and
``X = S_B [(S_Bᵀ V S_A) ⊘ (1 + β αᵀ)] S_Aᵀ``. With more terms they are first
merged into two groups (terms on operator passes, ``S > 1``; terms on
value-only passes), each group by the trace-weighted merge
``Σ_t A_t⊗B_t ≈ (Σ_t π_t A_t) ⊗ (Σ_t B_t)`` with ``π_t = tr B_t / Σ tr B``,
which keeps the trace ``Σ_t tr A_t tr B_t`` exactly and is exact when the
group's A factors agree (e.g. several equations on the interior points).

Learnable PDE parameters get their exact (dense, P×P) Gauss–Newton block,
damped by λ; the cross terms with the network are dropped like the ones
between layers.

Damping. With ``adaptive_damping`` (the default) λ starts at ``damping`` and
follows the Levenberg–Marquardt rule (Martens & Grosse 2015, §6.5): ρ, the
loss change of the Gauss–Newton model's step over its prediction, lowers λ
when above 3/4 and raises it when below 1/4. ``kfac*`` measures ρ at its own
step; ``kfac`` and ``kfac2l`` at the model-optimal step size along their
direction (one JVP and one loss per step), since the line search would hide
a bad model by stepping short.

Optimizers:

- ``kfac``: direction ``-F⁻¹∇`` plus ``momentum`` times the previous step,
  step size from the grid 2^0 … 2^-30 on the loss (first minimum along the
  grid, see ``curvature.gn_line_search``); when no grid point beats the
  current loss, the search is repeated without the momentum term (with
  μ = 0.9 on the 2d Poisson, keeping it sent the loss to 2e9 in 20 steps);
- ``kfac*``: Martens–Grosse: step ``α δ + μ δ_prev`` with ``(α, μ)``
  minimizing the quadratic model ``∇ᵀd + ½ dᵀ(G + λI)d`` over the two
  directions, with exact Gauss–Newton products ``‖J̃d‖²`` (Jacobian–vector
  products read from the recorded streams, ``GNLinearization.jvp``); a step
  that increases the loss is halved until it does not (at most 31 times;
  the model can be far off early in training with a small damping);
- ``kfac2l``: ``kfac`` with a two-level preconditioner (Koroko et al. 2023):
  the KFAC solution ``x`` plus the coarse correction ``Rᵀ β`` with one coarse
  vector per layer (``coarse_space``: ``nicolaides``, the all-ones vector on
  the layer; ``residual``, the layer's KFAC-preconditioned residual
  ``F_i⁻¹ (∇ − (G + λI) x)_i``) and ``β = (R(G + λI)Rᵀ)⁻¹ R v``. The coarse
  matrix takes one Jacobian–vector product per layer (exact Gauss–Newton
  products). ``coarse_correction`` (`training.coarse_correction`; default
  ``multiplicative``) picks ``v``: ``multiplicative``, the residual
  ``∇ − (G + λI) x`` (the Galerkin coarse-grid correction: the error in the
  ``G + λI`` norm never grows); ``additive``, ``v = ∇``, the paper's
  additive form ``P = F_KFAC⁻¹ + Rᵀ(R(G+λI)Rᵀ)⁻¹R``, which on PINN losses
  can increase that error (tests/optim/test_kfac.py).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pdec.contract import COARSE_CORRECTIONS, COARSE_SPACES, KFAC_FLAVOURS, TrainingSettings
from pdec.runtime.curvature import GNLinearization, gn_linearize, gn_one_thread
from pdec.runtime.linesearch import (
    GN_GRID,
    gn_apply,
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
ρ < 1/4 (`KFAC._adapt_damping`; Martens & Grosse use 0.95 per step)."""
DAMPING_RANGE = (1e-14, 1e4)
"""Bounds of the adapted λ."""


# ---------------------------------------------------------------------------
# factors


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
    return out


def kfac_dense(pairs: list[tuple[Tensor, Tensor]]) -> Tensor:
    """``Σ A ⊗ B`` in the flat ``[W | b]`` row-major layout (``vec`` over rows of
    ``[out, in+1]``, so the B (output) index is the slow one)."""
    return sum(torch.kron(B, A) for A, B in pairs)


def _merge(pairs: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Trace-weighted merge of Kronecker products into one (exact when the A agree)."""
    if len(pairs) == 1:
        return pairs[0]
    traces = torch.stack([B.diagonal().sum() for _, B in pairs])
    weights = traces / traces.sum() if traces.sum() > 0 else torch.full_like(traces, 1 / len(pairs))
    A = sum(w * A for w, (A, _) in zip(weights, pairs))
    B = sum(B for _, B in pairs)
    return A, B


def _generalized(M1: Tensor, M2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``S`` with ``Sᵀ M₁ S = I`` and ``Sᵀ M₂ S = diag(e)`` (M₁ positive
    definite); returns ``(S, e, eigenvalues of M₁)``."""
    d, Q = torch.linalg.eigh(M1)
    W = Q / d.clamp_min(torch.finfo(d.dtype).tiny).sqrt()
    e, U = torch.linalg.eigh(W.T @ M2 @ W)
    return W @ U, e, d


class KroneckerInverse:
    """The inverse of one layer's ``Σ_t (A_t + λI) ⊗ (B_t + λI)``, exact for
    one or two terms (merged beforehand otherwise): ``X = S_B [(S_Bᵀ V S_A) ⊘ D] S_Aᵀ``."""

    def __init__(self, pairs: list[tuple[Tensor, Tensor, int]], damping: float) -> None:
        self.dense_inverse = None
        n = pairs[0][0].shape[0] * pairs[0][1].shape[0]
        if len(pairs) > 2 and n <= KFAC_DENSE_MAX:
            # small layer: the exact solve of the full sum, dense
            eye_a = torch.eye(pairs[0][0].shape[0], dtype=torch.float64, device=pairs[0][0].device)
            eye_b = torch.eye(pairs[0][1].shape[0], dtype=torch.float64, device=pairs[0][1].device)
            self.pairs = [(A + damping * eye_a, B + damping * eye_b) for A, B, _ in pairs]
            with gn_one_thread():
                e, Q = torch.linalg.eigh(self.dense())
            self.dense_inverse = (Q / e.clamp_min(torch.finfo(e.dtype).tiny)) @ Q.T
            self.cond = (float(e.max() / e.min().clamp_min(1e-300)), 1.0)
            return
        if len(pairs) > 2:
            ops = [(A, B) for A, B, S in pairs if S > 1]
            vals = [(A, B) for A, B, S in pairs if S == 1]
            pairs2 = [_merge(g) for g in (ops, vals) if g]
        else:
            pairs2 = [(A, B) for A, B, _ in pairs]
        eye_a = torch.eye(pairs2[0][0].shape[0], dtype=torch.float64, device=pairs2[0][0].device)
        eye_b = torch.eye(pairs2[0][1].shape[0], dtype=torch.float64, device=pairs2[0][1].device)
        damped = [(A + damping * eye_a, B + damping * eye_b) for A, B in pairs2]
        self.pairs = damped
        with gn_one_thread():
            if len(damped) == 1:
                ((A, B),) = damped
                ea, self.SA = torch.linalg.eigh(A)
                eb, self.SB = torch.linalg.eigh(B)
                self.D = eb[:, None] * ea[None, :]
            else:
                (A1, B1), (A2, B2) = damped
                self.SA, alpha, ea = _generalized(A1, A2)
                self.SB, beta, eb = _generalized(B1, B2)
                self.D = 1 + beta[:, None] * alpha[None, :]
        # condition numbers of the (first) damped factors, from the eigenvalues at hand
        self.cond = (float(ea.max() / ea.min().clamp_min(1e-300)), float(eb.max() / eb.min().clamp_min(1e-300)))

    def solve(self, V: Tensor) -> Tensor:
        if self.dense_inverse is not None:
            return (self.dense_inverse @ V.reshape(-1)).reshape(V.shape)
        return self.SB @ ((self.SB.T @ V @ self.SA) / self.D) @ self.SA.T

    def matvec(self, V: Tensor) -> Tensor:
        return sum(B @ V @ A for A, B in self.pairs)

    def dense(self) -> Tensor:
        return kfac_dense(self.pairs)

    def state(self) -> tuple:
        if self.dense_inverse is not None:
            return (None, None, self.dense_inverse, self.cond, self.pairs)
        return (self.SA, self.SB, self.D, self.cond, self.pairs)

    @classmethod
    def from_state(cls, state: tuple) -> "KroneckerInverse":
        obj = cls.__new__(cls)
        obj.SA, obj.SB, obj.D, obj.cond, obj.pairs = state
        obj.dense_inverse = None
        if obj.SA is None:
            obj.dense_inverse, obj.D = obj.D, None
        return obj


class KFACOperator:
    """Block-diagonal KFAC curvature (layers, then the dense PDE-parameter block)
    as a linear operator: ``@`` (``matvec``), ``solve`` (the inverse), ``dense``."""

    def __init__(self, blocks: list[KroneckerInverse], pde_block: Tensor | None, damping: float = 0.0) -> None:
        self.blocks, self.pde_block, self.damping = blocks, pde_block, damping

    def solve(self, vs: list[Tensor], vp: Tensor) -> tuple[list[Tensor], Tensor]:
        xs = [b.solve(v) for b, v in zip(self.blocks, vs)]
        xp = torch.linalg.solve(self.pde_block, vp) if self.pde_block is not None and vp.numel() else vp.clone()
        return xs, xp

    def matvec(self, vs: list[Tensor], vp: Tensor) -> tuple[list[Tensor], Tensor]:
        xs = [b.matvec(v) for b, v in zip(self.blocks, vs)]
        xp = self.pde_block @ vp if self.pde_block is not None and vp.numel() else vp.clone()
        return xs, xp

    __matmul__ = matvec

    def dense(self) -> Tensor:
        blocks = [b.dense() for b in self.blocks]
        if self.pde_block is not None and self.pde_block.numel():
            blocks.append(self.pde_block)
        return torch.block_diag(*blocks)


def _dot(xs: list[Tensor], xp: Tensor, ys: list[Tensor], yp: Tensor) -> Tensor:
    return sum((x * y).sum() for x, y in zip(xs, ys)) + (xp * yp).sum()


def _axpy(a: float, xs, xp, ys, yp):
    """``a x + y``."""
    return [a * x + y for x, y in zip(xs, ys)], a * xp + yp


def gn_damped_matvec(lin: GNLinearization, damping: float, vs: list[Tensor], vp: Tensor):
    """``(G + λI) v`` with the exact Gauss–Newton matrix (one JVP, one VJP)."""
    gs, gp = lin.vjp(lin.jvp(vs, vp))
    return _axpy(damping, vs, vp, gs, gp)


def two_level_correction(
    lin: GNLinearization,
    op: KFACOperator,
    damping: float,
    grad,
    x,
    coarse_space: str = "nicolaides",
    mode: str = "multiplicative",
):
    """The coarse correction ``Rᵀ (R(G + λI)Rᵀ)⁻¹ R v`` with one coarse vector
    per layer (Koroko et al. 2023); returns ``(xs, xp)`` and the coarse matrix.

    ``additive``: ``v = ∇`` (``P = F_KFAC⁻¹ + Rᵀ(R(G+λI)Rᵀ)⁻¹R``);
    ``multiplicative``: ``v = ∇ − (G + λI) x_KFAC``, the coarse-grid
    correction of the KFAC solution: the Galerkin projection, so the error
    ``‖x − x*‖`` in the ``G + λI`` norm never grows (the additive form can
    make it grow, and does on the PINN losses in tests/optim)."""
    gs, gp = grad
    rs = None
    if mode == "multiplicative" or coarse_space == "residual":
        Fx, Fxp = gn_damped_matvec(lin, damping, *x)
        rs, _ = _axpy(-1.0, Fx, Fxp, gs, gp)
    if coarse_space == "nicolaides":
        Z = [torch.ones_like(g) for g in gs]
    elif coarse_space == "residual":
        Z = [b.solve(r) for b, r in zip(op.blocks, rs)]
        Z = [z / z.abs().max().clamp_min(1e-300) for z in Z]
    else:
        raise ValueError(f"Invalid `coarse_space` `{coarse_space}`. Supported: {', '.join(COARSE_SPACES)}.")
    zero_p = gp.new_zeros(gp.shape)
    cols = []
    for i in range(len(Z)):
        vs = [z if j == i else torch.zeros_like(z) for j, z in enumerate(Z)]
        cols.append(lin.jvp(vs, zero_p))
    JZ = torch.stack(cols, dim=1)
    C = JZ.T @ JZ + damping * torch.diag(torch.stack([z.square().sum() for z in Z]))
    if mode not in COARSE_CORRECTIONS:
        raise ValueError(f"Invalid two-level mode `{mode}`. Supported: {', '.join(COARSE_CORRECTIONS)}.")
    v = gs if mode == "additive" else rs
    rhs = torch.stack([(z * g).sum() for z, g in zip(Z, v)])
    beta = torch.linalg.lstsq(C, rhs.unsqueeze(1)).solution[:, 0]
    return [b * z for b, z in zip(beta, Z)], zero_p, C


# ---------------------------------------------------------------------------
# the optimizers


class KFAC(Optimizer):
    """KFAC for PINN losses with momentum and a grid line search (`kfac`).

    >>> import pdec
    >>> result = pdec.solve("specs/poisson2d.yaml", optimizer="kfac", steps=50)  # doctest: +SKIP
    """

    name = variant = "kfac"

    def __init__(self, problem, settings: TrainingSettings) -> None:
        super().__init__(problem, settings)
        training = settings
        self.ema = float(training.ema)
        self.momentum = float(training.momentum)
        self.flavour = training.kfac_flavour
        if self.flavour not in KFAC_FLAVOURS:
            raise ValueError(f"Invalid `kfac_flavour` `{self.flavour}`. Supported: {', '.join(KFAC_FLAVOURS)}.")
        self.adaptive = bool(training.adaptive_damping)
        self.update_every = max(1, int(training.update_every))
        self.coarse_space = training.coarse_space
        if self.coarse_space not in COARSE_SPACES:
            raise ValueError(
                f"Invalid `coarse_space` `{self.coarse_space}`. Supported: {', '.join(COARSE_SPACES)}."
            )
        self.two_level = training.coarse_correction
        if self.two_level not in COARSE_CORRECTIONS:
            raise ValueError(
                f"Invalid `coarse_correction` `{self.two_level}`. Supported: {', '.join(COARSE_CORRECTIONS)}."
            )
        self.reset()

    def reset(self) -> None:
        """The state of a fresh optimizer: identity factors, the initial damping."""
        self.damping = float(self.settings.damping)
        self.steps = 0
        self.factors: dict = {}
        self.inverses: list[KroneckerInverse] | None = None
        self.previous = None  # the last step, per layer and PDE parameters
        self.info = {}

    def recover(self, step: int) -> None:
        """Curvature and damping may be spoiled by the non-finite step: start afresh."""
        self.reset()

    # -- curvature ---------------------------------------------------------
    def update_factors(self, lin: GNLinearization) -> None:
        """EMA of the factors (each starts at the identity), then the inverses."""
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
        self.inverses = self._invert(self.damping)

    def _invert(self, damping: float) -> list[KroneckerInverse]:
        keys = list(self.factors)
        n_layers = len(self.factors[keys[0]])
        return [KroneckerInverse([self.factors[k][li] for k in keys], damping) for li in range(n_layers)]

    def operator(self, lin: GNLinearization, inverses=None, damping: float | None = None) -> KFACOperator:
        damping = self.damping if damping is None else damping
        pde = None
        if lin.n_pde:
            pde = sum(t.c**2 * t.p_cols.T @ t.p_cols for t in lin.terms if t.p_cols is not None)
            pde = pde + damping * torch.eye(lin.n_pde, dtype=torch.float64, device=pde.device)
        return KFACOperator(self.inverses if inverses is None else inverses, pde, damping)

    # -- the step ------------------------------------------------------------
    def direction(self, lin: GNLinearization, op: KFACOperator, grad):
        return op.solve(*grad)

    def step(self, residual_fn, weights):
        lin = gn_linearize(self.problem, residual_fn, weights)
        if self.inverses is None or self.steps % self.update_every == 0:
            self.update_factors(lin)
        grad = lin.gradient()
        op = self.operator(lin)
        xs, xp = self.direction(lin, op, grad)
        vs, vp = [-x for x in xs], -xp
        damping = self.damping
        if self.variant == "kfac*":
            total, losses, eta, mu, rho = self._auto_step(lin, residual_fn, weights, vs, vp, grad)
        else:
            rho = self._model_ratio(lin, residual_fn, weights, vs, vp, grad) if self.adaptive else None
            mu = self.momentum if self.previous is not None else 0.0
            base = ([mu * p for p in self.previous[0]], mu * self.previous[1]) if mu else None
            saved = gn_save(self.problem) if base is not None else None
            eta, total, losses = gn_line_search(self.problem, residual_fn, weights, vs, vp, base, lin.total)
            if base is not None and not total < lin.total:  # momentum made it worse: search without
                gn_restore(self.problem, saved)
                base, mu = None, 0.0
                eta, total, losses = gn_line_search(self.problem, residual_fn, weights, vs, vp, None, lin.total)
            step_s, step_p = [eta * v for v in vs], eta * vp
            if base is not None:
                step_s, step_p = _axpy(1.0, base[0], base[1], step_s, step_p)
            self.previous = (step_s, step_p)
        self.steps += 1
        if rho is not None:
            self._adapt_damping(rho)
        cond_a = max(b.cond[0] for b in self.inverses)
        cond_b = max(b.cond[1] for b in self.inverses)
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
        predicted = 2 * float(_dot(*grad, *step)) + float(J_step @ J_step)
        actual = float(total) - float(lin.total)
        if not predicted < -1e-12 * float(lin.total):
            return None
        return actual / predicted if math.isfinite(actual) else -math.inf

    @torch.no_grad()
    def _model_ratio(self, lin, residual_fn, weights, vs, vp, grad) -> float | None:
        """``ρ`` at the model's best step ``α* v``, ``α* = -∇ᵀv / ‖J̃v‖²``
        (the line search itself picks shorter steps where the model is wrong,
        so ρ at its step would always look good). One JVP, one loss."""
        Jv = lin.jvp(vs, vp)
        curvature = float(Jv @ Jv)
        slope = float(_dot(*grad, vs, vp))
        if not (curvature > 0 and slope < 0):
            return None
        alpha = -slope / curvature
        saved = gn_save(self.problem)
        gn_apply(self.problem, vs, vp, alpha)
        total, _ = gn_loss(residual_fn, weights)
        gn_restore(self.problem, saved)
        return self._ratio(lin, grad, ([alpha * v for v in vs], alpha * vp), alpha * Jv, total)

    def _auto_step(self, lin, residual_fn, weights, vs, vp, grad):
        """Martens–Grosse: minimize ``∇ᵀd + ½ dᵀ(G+λI)d`` over ``d = α v + μ δ_prev``."""
        gs, gp = grad
        dirs = [(vs, vp)] + ([self.previous] if self.previous is not None else [])
        Jd = [lin.jvp(*d) for d in dirs]
        k = len(dirs)
        M = torch.empty(k, k, dtype=torch.float64)
        b = torch.empty(k, dtype=torch.float64)
        for i in range(k):
            b[i] = _dot(gs, gp, *dirs[i])
            for j in range(k):
                M[i, j] = Jd[i] @ Jd[j] + self.damping * _dot(*dirs[i], *dirs[j])
        if not (torch.isfinite(M).all() and torch.isfinite(b).all()):
            self.previous = None  # a broken model: fall back to the line search
            eta, total, losses = gn_line_search(self.problem, residual_fn, weights, vs, vp, None, lin.total)
            return total, losses, eta, 0.0, None
        coef = -torch.linalg.pinv(M) @ b
        eta, mu = float(coef[0]), float(coef[1]) if k > 1 else 0.0
        step_s, step_p = [eta * v for v in vs], eta * vp
        if k > 1:
            step_s, step_p = _axpy(mu, *self.previous, step_s, step_p)
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

    # -- state ---------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "steps": self.steps,
            "factors": self.factors,
            "inverses": None if self.inverses is None else [b.state() for b in self.inverses],
            "previous": self.previous,
            "damping": self.damping,
        }

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])
        self.factors = state["factors"]
        inv = state["inverses"]
        self.inverses = None if inv is None else [KroneckerInverse.from_state(s) for s in inv]
        self.previous = state["previous"]
        self.damping = float(state["damping"])


class KFACStar(KFAC):
    """`kfac*`: KFAC with Martens–Grosse automatic step size and momentum."""

    name = variant = "kfac*"


class TwoLevelKFAC(KFAC):
    """`kfac2l`: KFAC plus the additive coarse correction (Koroko et al. 2023)."""

    name = variant = "kfac2l"

    def direction(self, lin, op, grad):
        x = op.solve(*grad)
        cs, cp, C = two_level_correction(lin, op, op.damping, grad, x, self.coarse_space, self.two_level)
        return _axpy(1.0, cs, cp, *x)
