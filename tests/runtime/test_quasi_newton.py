"""`bfgs` and `ssbroyden`: finite termination on a quadratic, Rosenbrock to 1e-10,
the self-scaled update against a hand-computed case, the strong Wolfe search,
bit-identical resume, and recovery after a non-finite loss."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import pdec
from pdec.contract import TrainingSettings
from pdec.runtime.linesearch import wolfe_line_search
from pdec.runtime.quasi_newton import BFGS, SSBroyden, broyden_update, self_scaling
from pdec.runtime.rundir import load_checkpoint, save_checkpoint_file

from optim_cases import ROOT, SPECS, tiny_problem

F64 = torch.float64
QUASI_NEWTON = [BFGS, SSBroyden]


class _Vector:
    """A "problem" whose only parameter is one vector ``x`` (what the optimizers read)."""

    def __init__(self, x0: torch.Tensor) -> None:
        self.model = torch.nn.Module()
        self.model.x = torch.nn.Parameter(x0.clone())
        self.parameters = torch.nn.ParameterDict()

    @property
    def x(self) -> torch.Tensor:
        return self.model.x


def _quadratic(n: int):
    """``L(x) = |M x − c|²`` (one residual term of weight n: ``n · mean``), Hessian
    ``A = 2 MᵀM`` with condition number 100."""
    generator = torch.Generator().manual_seed(n)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=F64))
    M = Q * torch.logspace(0, 1, n, dtype=F64)
    c = torch.randn(n, generator=generator, dtype=F64)
    problem = _Vector(torch.zeros(n, dtype=F64))
    return problem, (lambda: {"r": M @ problem.x - c}), {"r": float(n)}, 2 * M.T @ M


def _rosenbrock(dim: int):
    """``L(x) = Σ 100 (x_{i+1} − x_i²)² + (1 − x_i)²``, minimum 0 at ``x = 1``, from
    the classic start (−1.2, 1) in 2-d and from 0 in more."""
    start = torch.tensor([-1.2, 1.0], dtype=F64) if dim == 2 else torch.zeros(dim, dtype=F64)
    problem = _Vector(start)

    def residual_fn():
        x = problem.x
        return {"r": torch.cat([10 * (x[1:] - x[:-1] ** 2), 1 - x[:-1]])}

    return problem, residual_fn, {"r": 2.0 * (dim - 1)}


def _gradient(opt) -> torch.Tensor:
    return opt._here[4]


@pytest.mark.parametrize("n", [5, 12])
def test_bfgs_ends_on_a_quadratic_in_n_steps(n):
    """BFGS with exact line searches on a strictly convex quadratic makes conjugate
    directions and ends in n steps with ``H = A⁻¹`` (Nocedal & Wright 2006, Thm 6.4
    and §6.1). A near-0 curvature constant makes the search exact up to the
    rounding of the cubic fit (relative error δ ≈ 1e-8 here), which leaves a
    gradient of O(δ)·|g₀| after n steps; step n + 1 is then a Newton step with
    ``H`` accurate to O(δ), and the gradient falls to O(δ²)·|g₀| ≈ 1e-15·|g₀|.
    The bound 1e-10 leaves room; a wrong update (or none) misses it by many orders."""
    problem, residual_fn, weights, A = _quadratic(n)
    opt = BFGS(problem, TrainingSettings())
    opt.curvature = 1e-6
    opt.step(residual_fn, weights)
    g0 = _gradient(opt).norm()  # after one step: the first step's gradient is of the same order
    for _ in range(n):
        opt.step(residual_fn, weights)
    assert _gradient(opt).norm() < 1e-10 * g0
    A_inv = torch.linalg.inv(A)
    assert (opt.H - A_inv).abs().max() < 1e-6 * A_inv.abs().max()


def test_self_scaled_broyden_converges_on_a_quadratic_with_the_default_search():
    """With the default (inexact) search SSBroyden has no finite termination; measured:
    the gradient falls below 1e-10 (relative) in 23 steps for n = 8, condition 100.
    Steepest descent would need ~1000."""
    problem, residual_fn, weights, _ = _quadratic(8)
    opt = SSBroyden(problem, TrainingSettings())
    opt.step(residual_fn, weights)
    g0 = _gradient(opt).norm()
    for _ in range(30):
        opt.step(residual_fn, weights)
        if _gradient(opt).norm() < 1e-10 * g0:
            break
    assert _gradient(opt).norm() < 1e-10 * g0


@pytest.mark.parametrize("cls", QUASI_NEWTON, ids=lambda c: c.name)
@pytest.mark.parametrize("dim", [2, 10])
def test_rosenbrock_to_1e_10(cls, dim):
    """Measured: 40 (2-d) and 59 (10-d) BFGS steps, 34 and 79 SSBroyden steps, to ``|x − 1| < 1e-14``."""
    problem, residual_fn, weights = _rosenbrock(dim)
    opt = cls(problem, TrainingSettings())
    for _ in range(150):
        total, _ = opt.step(residual_fn, weights)
    assert (problem.x - 1).abs().max() < 1e-10
    assert total < 1e-20


def test_self_scaled_update_matches_a_hand_computed_case():
    """H = I, s = (1, 0) from t = 1 and g = (−1, 0), y = (1/2, −1/2):
    yᵀs = 1/2, Hy = y, yᵀHy = 1/2, h = 1, b = −t sᵀg / yᵀs = 2, a = bh − 1 = 1;
    c = √(1/2), ρ⁻ = min(1, 1 − c) ≈ 0.29, θ⁻ = ρ⁻ − 1 ≈ −0.71, θ⁺ = 1/ρ⁻ ≈ 3.4,
    (1 − b)/b = −1/2, so θ = −1/2, σ = 1 + aθ = 1/2, φ = (1 − θ)/σ = 3;
    ρ = min(1, 1/b) = 1/2, σ^{1/(1−n)} = 2, θ ≤ 0: τ = min(ρ · 2, σ) = 1/2.
    v/√(yᵀHy) = s/yᵀs − Hy/yᵀHy = (1, 1), so
    H₊ = 2 [I − 2 y yᵀ + (3/2) v vᵀ] + 2 s sᵀ = 2 [[2, 2], [2, 2]] + [[2, 0], [0, 0]]
       = [[6, 4], [4, 4]]
    (BFGS from the same pair: [[3, 1], [1, 1]]). Both satisfy H₊ y = s."""
    s, y, g = (
        torch.tensor([1.0, 0.0], dtype=F64),
        torch.tensor([0.5, -0.5], dtype=F64),
        torch.tensor([-1.0, 0.0], dtype=F64),
    )
    assert self_scaling(b=2.0, h=1.0, n=2, first=False) == (0.5, 3.0)
    H = torch.eye(2, dtype=F64)
    assert broyden_update(H, s, y, g, 1.0, self_scaled=True, first=False) == {"tau": 0.5, "phi": 3.0}
    assert torch.allclose(H, torch.tensor([[6.0, 4.0], [4.0, 4.0]], dtype=F64), rtol=0, atol=1e-14)
    H_bfgs = torch.eye(2, dtype=F64)
    broyden_update(H_bfgs, s, y, g, 1.0, self_scaled=False, first=False)
    assert torch.allclose(H_bfgs, torch.tensor([[3.0, 1.0], [1.0, 1.0]], dtype=F64), rtol=0, atol=1e-14)
    # the first update after a reset: τ = h/σ = 2, which scales the identity
    assert self_scaling(b=2.0, h=1.0, n=2, first=True) == (2.0, 3.0)


@pytest.mark.parametrize(
    "b, h, n, tau, phi",
    [
        # a = 1/2, θ = (1 − b)/b = −1/5 (inside [θ⁻, θ⁺] ≈ [−0.99, 1.97]), σ = 9/10, φ = (6/5)/σ = 4/3,
        # ρ = 4/5; θ ≤ 0: τ = min(ρ σ^{1/(1−n)}, σ), the first for n = 2 and 3
        (1.25, 1.2, 2, 0.8 / 0.9, 4 / 3),
        (1.25, 1.2, 3, 0.8 / math.sqrt(0.9), 4 / 3),
        # a = 4/9, θ = 1/2, σ = 11/9, φ = 9/22, ρ = 1; θ > 0: τ = ρ min(σ^{1/(1−n)}, 1/θ) = 9/11
        (2 / 3, 13 / 6, 2, 9 / 11, 9 / 22),
        # a = 0 (one dimension): θ = 0, φ = 1, τ = min(1, 1/b)
        (2.0, 0.5, 1, 0.5, 1.0),
    ],
)
def test_self_scaling_parameters(b, h, n, tau, phi):
    assert self_scaling(b, h, n, first=False) == pytest.approx((tau, phi), rel=1e-12)


def test_update_is_skipped_without_positive_curvature():
    H = torch.eye(3, dtype=F64)
    s, g = torch.tensor([1.0, 0.0, 0.0], dtype=F64), torch.tensor([-1.0, 0.0, 0.0], dtype=F64)
    for y in ([-1.0, 0.0, 0.0], [1e-17, 1.0, 0.0], [float("nan"), 0.0, 0.0]):
        assert broyden_update(H, s, torch.tensor(y, dtype=F64), g, 1.0, self_scaled=True, first=False) is None
    assert torch.equal(H, torch.eye(3, dtype=F64))


def test_line_search_meets_strong_wolfe_and_shrinks_past_non_finite_losses():
    """φ(t) = (t − 3)² − 9 has its minimum at t = 3; beyond t = 1.5 the "loss" is NaN.
    From t = 10 the search must come back below 1.5 with a decrease; from t = 1 it
    extrapolates to (near) the minimum with the strong Wolfe conditions."""

    def make(limit):
        def phi(t):
            if t > limit:
                return math.nan, math.nan, t
            return (t - 3) ** 2 - 9, 2 * (t - 3), t

        return phi

    t, f, d, data, evals = wolfe_line_search(make(1.5), 0.0, -6.0, 10.0)
    assert 0 < t <= 1.5 and f < 0 and data == t and evals <= 25
    t, f, d, _, _ = wolfe_line_search(make(math.inf), 0.0, -6.0, 1.0)
    assert f <= 1e-4 * t * -6.0 and abs(d) <= 0.9 * 6.0
    t, f, d, data, _ = wolfe_line_search(make(-1.0), 0.0, -6.0, 1.0)  # NaN everywhere: stay
    assert (t, f, data) == (0.0, 0.0, None)


def _snapshot(problem) -> list[torch.Tensor]:
    return [p.detach().clone() for p in problem.model.parameters()] + [
        p.detach().clone() for p in problem.parameters.values()
    ]


@pytest.mark.parametrize("cls", QUASI_NEWTON, ids=lambda c: c.name)
def test_state_dict_round_trip_resumes_bit_identically(tmp_path, cls):
    """Six steps straight equal three steps, a checkpoint file written and read
    back (weights-only), a new problem and optimizer, and three more steps."""
    spec = SPECS / "heat_inverse.yaml"
    problem, residual_fn, weights, training = tiny_problem(spec, ["model.hidden=[6]"])
    straight = cls(problem, training)
    for _ in range(6):
        total, _ = straight.step(residual_fn, weights)

    problem, residual_fn, weights, training = tiny_problem(spec, ["model.hidden=[6]"])
    first = cls(problem, training)
    for _ in range(3):
        first.step(residual_fn, weights)
    state = {
        "model": problem.model.state_dict(),
        "parameters": problem.parameters.state_dict(),
        "optimizer": first.state_dict(),
    }
    save_checkpoint_file(tmp_path / "checkpoint.pt", state)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    problem, residual_fn, weights, training = tiny_problem(spec, ["model.hidden=[6]"])
    problem.model.load_state_dict(state["model"])
    problem.parameters.load_state_dict(state["parameters"])
    resumed = cls(problem, training)
    resumed.load_state_dict(state["optimizer"])
    for _ in range(3):
        resumed_total, _ = resumed.step(residual_fn, weights)
    assert torch.equal(resumed.H, straight.H)
    for a, b in zip(_snapshot(problem), _snapshot(straight.problem)):
        assert torch.equal(a, b)
    assert torch.equal(resumed_total, total)


def test_solve_resumes_bit_identically(tmp_path, small):
    heat = ROOT / "specs" / "heat.yaml"
    settings = small + ["training.optimizer=ssbroyden", "output.plots=false"]
    straight = pdec.solve(heat, steps=8, out=tmp_path / "straight", settings=settings)
    pdec.solve(heat, steps=4, out=tmp_path / "split", settings=settings)
    resumed = pdec.solve(heat, steps=8, out=tmp_path / "split", settings=settings, resume=True)
    assert resumed.summary["resumed_from"] == 4
    for a, b in zip(_snapshot(straight.problem), _snapshot(resumed.problem)):
        assert torch.equal(a, b)
    assert resumed.summary["final_loss"] == straight.summary["final_loss"]


@pytest.mark.parametrize("cls", QUASI_NEWTON, ids=lambda c: c.name)
def test_recover_resets_the_curvature_and_the_cached_gradient(cls):
    """After a non-finite loss the trainer restores older parameters and calls
    `recover`: H = I again, the first trial step halved, and the next step
    starts from the restored point's own gradient (bit-identical to a fresh
    optimizer with half the scale there), not from the cached one."""
    problem, residual_fn, weights, training = tiny_problem(SPECS / "poisson2d.yaml", ["model.hidden=[6]"])
    opt = cls(problem, training)
    for _ in range(3):
        opt.step(residual_fn, weights)
    restored = {k: v.clone() for k, v in problem.model.state_dict().items()}
    opt.step(residual_fn, weights)
    # NaN at every trial point: the search accepts none, the point stays, H restarts
    here = _snapshot(problem)
    total, _ = opt.step(lambda: {k: v * math.nan for k, v in residual_fn().items()}, weights)
    assert torch.isfinite(total) and opt.info["step_size"] == 0.0 and opt.updates == 0
    assert all(torch.equal(a, b) for a, b in zip(here, _snapshot(problem)))
    opt.step(residual_fn, weights)
    # a non-finite loss at the start (here from the weights) goes back to the trainer
    total, _ = opt.step(residual_fn, {k: math.inf for k in weights})
    assert not torch.isfinite(total)
    problem.model.load_state_dict(restored)
    opt.recover(3)
    assert opt.updates == 0 and opt.scale == 0.5
    assert torch.equal(opt.H, torch.eye(opt.H.shape[0], dtype=F64))
    total, _ = opt.step(residual_fn, weights)
    after = _snapshot(problem)

    problem.model.load_state_dict(restored)
    fresh = cls(problem, training)
    fresh.scale = 0.5
    fresh_total, _ = fresh.step(residual_fn, weights)
    assert torch.equal(total, fresh_total) and torch.isfinite(total)
    for a, b in zip(after, _snapshot(problem)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("spec", ["heat_inverse", "heat_1p1d", "poisson2d"])
@pytest.mark.parametrize("cls", QUASI_NEWTON, ids=lambda c: c.name)
def test_decreases_the_loss_of_a_spec(cls, spec):
    problem, residual_fn, weights, training = tiny_problem(SPECS / f"{spec}.yaml", ["model.hidden=[6]"])
    with torch.no_grad():
        before = sum(weights[k] * r.square().mean() for k, r in residual_fn().items())
    opt = cls(problem, training)
    for _ in range(5):
        total, losses = opt.step(residual_fn, weights)
    assert set(losses) == set(weights)
    assert torch.isfinite(total) and total < 0.5 * before, (float(before), float(total))
    assert {"step_size", "evaluations"} <= set(opt.info)


@pytest.mark.parametrize("cls", QUASI_NEWTON, ids=lambda c: c.name)
def test_large_networks_are_refused(cls):
    problem, *_, training = tiny_problem(SPECS / "poisson2d.yaml", ["model.hidden=[128, 128]"])
    with pytest.raises(ValueError, match="not supported. Use `lbfgs`"):
        cls(problem, dataclasses.replace(training))
