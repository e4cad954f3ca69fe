"""KFAC for PINN losses against the exact Gauss–Newton matrix: exact where
theory says so (deep linear networks whose residual rows read one
stream each: the expand setting), approximate otherwise; the per-layer solve
against dense inverses; the two-level correction against KFAC."""

from __future__ import annotations

from types import SimpleNamespace

import dataclasses
import pytest
import torch

import pdec.runtime.kfac as kfac_module
from pdec.contract import TrainingSettings
from pdec.runtime.curvature import gn_linearize
from pdec.runtime.kfac import KFAC, kfac_factors, kfac_layer
from pdec.runtime.kronecker import KroneckerSum, kron_dense
from pdec.runtime.two_level import TwoLevelKFAC, two_level_correction
from pdec.taylor import Partial, TaylorMLP, plan_streams

from optim_cases import SPECS, tiny_problem


def _identity(h, order):
    return [h, torch.ones_like(h)] + [torch.zeros_like(h)] * (order - 1)


def _stream_problem(activation, seed=0):
    """A deep network whose one loss term has a residual row per (stream, point):
    the value and both first derivatives, each minus a target."""
    torch.manual_seed(seed)
    net = TaylorMLP(2, [5, 4], 1, activation)
    problem = SimpleNamespace(model=net, parameters=torch.nn.ParameterDict())
    X = torch.rand(7, 2, dtype=torch.float64)
    ops = [Partial(()), Partial((0,)), Partial((1,))]
    plan = plan_streams(ops, 2)
    target = torch.rand(3 * 7, dtype=torch.float64)

    def residual_fn():
        out = net.taylor(X, plan)
        return {"fit": torch.cat([out[op][:, 0] for op in ops]) - target}

    return problem, residual_fn, {"fit": 1.0}


def _blocks(lin):
    """The exact Gauss–Newton block of every layer."""
    J = lin.jacobian()
    start, out = 0, []
    for o, i in lin.shapes:
        Jl = J[:, start : start + o * i]
        out.append(Jl.T @ Jl)
        start += o * i
    return out


def _rel(a, b):
    return float((a - b).norm() / b.norm())


def test_expand_is_exact_for_deep_linear_networks():
    problem, residual_fn, weights = _stream_problem(_identity)
    lin = gn_linearize(problem, residual_fn, weights)
    factors = kfac_factors(lin, "expand")
    for li, G in enumerate(_blocks(lin)):
        K = kron_dense([(A, B) for A, B, _ in (layers[li] for layers in factors.values())])
        assert _rel(K, G) < 1e-13


@pytest.mark.parametrize("flavour", ["expand", "reduce"])
def test_factors_only_approximate_nonlinear_networks(flavour):
    problem, residual_fn, weights = _stream_problem("tanh")
    lin = gn_linearize(problem, residual_fn, weights)
    factors = kfac_factors(lin, flavour)
    errors = []
    for li, G in enumerate(_blocks(lin)):
        K = kron_dense([(A, B) for A, B, _ in (layers[li] for layers in factors.values())])
        errors.append(_rel(K, G))
    assert max(errors) > 1e-3 and max(errors) < 1.0


def test_reduce_is_not_exact_in_the_expand_setting():
    problem, residual_fn, weights = _stream_problem(_identity)
    lin = gn_linearize(problem, residual_fn, weights)
    factors = kfac_factors(lin, "reduce")
    G = _blocks(lin)[0]
    K = kron_dense([(A, B) for A, B, _ in (layers[0] for layers in factors.values())])
    assert _rel(K, G) > 1e-2


def _spd(n, generator):
    X = torch.randn(n, n + 2, dtype=torch.float64, generator=generator)
    return X @ X.T / n


@pytest.mark.parametrize("terms", [1, 2])
def test_kronecker_solve_is_exact_for_two_terms(terms):
    gen = torch.Generator().manual_seed(terms)
    pairs = [(_spd(4, gen), _spd(3, gen), 3 - k) for k in range(terms)]
    curvature = kfac_layer(pairs, damping=1e-3)
    dense = kron_dense([(A + 1e-3 * torch.eye(4, dtype=torch.float64), B + 1e-3 * torch.eye(3, dtype=torch.float64)) for A, B, _ in pairs])
    V = torch.randn(3, 4, dtype=torch.float64, generator=gen)
    assert torch.allclose((curvature.inverse() @ V).reshape(-1), torch.linalg.solve(dense, V.reshape(-1)), rtol=1e-10, atol=1e-12)
    assert torch.allclose(curvature.dense(), dense, rtol=1e-12, atol=1e-14)


def test_small_layers_with_more_terms_are_solved_exactly():
    gen = torch.Generator().manual_seed(5)
    pairs = [(_spd(4, gen), _spd(3, gen), s) for s in (5, 1, 1)]
    curvature = kfac_layer(pairs, damping=1e-4)
    dense = kron_dense([(A + 1e-4 * torch.eye(4, dtype=torch.float64), B + 1e-4 * torch.eye(3, dtype=torch.float64)) for A, B, _ in pairs])
    V = torch.randn(3, 4, dtype=torch.float64, generator=gen)
    assert torch.allclose((curvature.inverse() @ V).reshape(-1), torch.linalg.solve(dense, V.reshape(-1)), rtol=1e-9, atol=1e-11)
    again = KroneckerSum.from_state_dict(curvature.state_dict())
    assert torch.equal(again.inverse() @ V, curvature.inverse() @ V)


def test_merge_for_more_terms_keeps_the_trace_and_is_exact_for_equal_inputs(monkeypatch):
    monkeypatch.setattr(kfac_module, "KFAC_DENSE_MAX", 0)  # the merge is for large layers
    gen = torch.Generator().manual_seed(7)
    A = _spd(4, gen)
    pairs = [(A, _spd(3, gen), 5), (A, _spd(3, gen), 5), (_spd(4, gen), _spd(3, gen), 1)]
    curvature = kfac_layer(pairs, damping=0.0)
    exact = kron_dense([(a, b) for a, b, _ in pairs])
    assert torch.allclose(curvature.dense(), exact, rtol=1e-12, atol=1e-13)
    pairs[1] = (_spd(4, gen), pairs[1][1], 5)
    approx = kfac_layer(pairs, damping=0.0).dense()
    exact = kron_dense([(a, b) for a, b, _ in pairs])
    assert torch.allclose(approx.trace(), exact.trace(), rtol=1e-12)
    assert not torch.allclose(approx, exact, rtol=1e-3)
    V = torch.randn(3, 4, dtype=torch.float64, generator=gen)
    x = kfac_layer(pairs, damping=0.0).inverse() @ V
    assert torch.allclose(approx @ x.reshape(-1), V.reshape(-1), atol=1e-10)


def _energy_error(lin, damping, x, exact):
    J = lin.jacobian()
    e = x - exact
    return float(e @ (J.T @ (J @ e)) + damping * e @ e)


@pytest.mark.parametrize("coarse_space", ["nicolaides", "residual"])
@pytest.mark.parametrize("spec", ["poisson2d", "heat", "poisson5d"])
def test_two_level_correction_reduces_the_error(spec, coarse_space):
    problem, residual_fn, weights, training = tiny_problem(SPECS / f"{spec}.yaml", ["model.hidden=[6, 6]"])
    training = dataclasses.replace(training, ema=0.0, damping=1e-3, coarse_space=coarse_space)
    opt = KFAC(problem, training)
    lin = gn_linearize(problem, residual_fn, weights)
    opt.update_factors(lin)
    inverse = opt.curvature(lin).inverse()
    grad = lin.gradient()
    flat = lambda xs, xp: torch.cat([x.reshape(-1) for x in xs] + [xp])  # noqa: E731
    J = lin.jacobian()
    exact = torch.linalg.solve(J.T @ J + 1e-3 * torch.eye(J.shape[1], dtype=torch.float64), flat(*grad))
    x1 = inverse @ grad
    x2 = TwoLevelKFAC(problem, training).direction(lin, inverse, grad)
    e1 = _energy_error(lin, 1e-3, flat(*x1), exact)
    e2 = _energy_error(lin, 1e-3, flat(*x2), exact)
    assert e2 < 0.999 * e1


def test_additive_correction_can_increase_the_error():
    """Why `kfac2l` defaults to the multiplicative (Galerkin) correction."""
    problem, residual_fn, weights, training = tiny_problem(SPECS / "poisson2d.yaml", ["model.hidden=[6, 6]"])
    training = dataclasses.replace(training, ema=0.0, damping=1e-3)
    opt = KFAC(problem, training)
    lin = gn_linearize(problem, residual_fn, weights)
    opt.update_factors(lin)
    inverse, grad = opt.curvature(lin).inverse(), lin.gradient()
    flat = lambda xs, xp: torch.cat([x.reshape(-1) for x in xs] + [xp])  # noqa: E731
    J = lin.jacobian()
    exact = torch.linalg.solve(J.T @ J + 1e-3 * torch.eye(J.shape[1], dtype=torch.float64), flat(*grad))
    x1 = inverse @ grad
    cs, cp, _ = two_level_correction(lin, inverse, 1e-3, grad, x1, "nicolaides", "additive")
    x2 = [a + b for a, b in zip(x1[0], cs)], x1[1] + cp
    assert _energy_error(lin, 1e-3, flat(*x2), exact) > _energy_error(lin, 1e-3, flat(*x1), exact)


def test_levenberg_marquardt_rule():
    opt = KFAC(None, TrainingSettings(damping=1e-6))
    opt._adapt_damping(0.9)  # the model predicted the decrease well: trust it more
    assert opt.damping == pytest.approx(1e-6 * kfac_module.DAMPING_FACTOR)
    opt._adapt_damping(0.5)
    assert opt.damping == pytest.approx(1e-6 * kfac_module.DAMPING_FACTOR)
    opt._adapt_damping(-3.0)  # the loss went up: damp more
    assert opt.damping == pytest.approx(1e-6)
    for _ in range(400):
        opt._adapt_damping(1.0)
    assert opt.damping == kfac_module.DAMPING_RANGE[0]


def test_adaptive_damping_rescues_a_too_small_damping(tmp_path):
    """On the heat equation KFAC with λ = 1e-10 stalls (its direction is long
    where the Gauss–Newton model cannot see); the Levenberg–Marquardt rule
    raises λ and training proceeds (measured: loss 2.8e-5 against 1.0e-2)."""
    import pdec

    losses = {}
    for adaptive in ("true", "false"):
        result = pdec.solve(
            SPECS / "heat_1p1d.yaml",
            optimizer="kfac*",
            steps=150,
            out=tmp_path / adaptive,
            settings=[
                "training.damping=1e-10",
                "training.ema=0.5",
                f"training.adaptive_damping={adaptive}",
                "training.points.interior=300",
                "training.log_every=1000",
                "output.grid=11",
                "output.plots=false",
            ],
        )
        losses[adaptive] = result.summary["final_loss"]
    assert losses["true"] < losses["false"] / 30, losses


def test_momentum_that_increases_the_loss_is_dropped(tmp_path):
    """With μ = 0.9 the momentum term alone can raise the loss whatever the
    step size; `kfac` then searches without it (before: loss 2e9 in 20 steps)."""
    import pdec

    pdec.solve(
        SPECS / "poisson2d.yaml",
        optimizer="kfac",
        steps=40,
        out=tmp_path,
        settings=["training.momentum=0.9", "training.ema=0.5", "training.log_every=1", "output.plots=false", "output.grid=11"],
    )
    import json

    losses = [json.loads(line)["loss"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(b <= a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < losses[0] / 10


def test_unset_settings_take_each_optimizers_tuned_defaults():
    """`damping`, `adaptive_damping` and `momentum` left unset mean the optimizer's own tuned
    values (kfac: fixed λ = 1e-10, μ = 0.6; the others: λ = 1e-8 adapted); set ones are kept."""
    from pdec.runtime.engd import ENGD
    from pdec.runtime.kfac import KFACStar

    problem, fn, weights, training = tiny_problem(SPECS / "poisson2d.yaml")
    assert training.damping is None and training.adaptive_damping is None and training.momentum is None
    kfac = KFAC(problem, training)
    assert (kfac.damping, kfac.adaptive, kfac.momentum) == (1e-10, False, 0.6)
    assert isinstance(TwoLevelKFAC(problem, training).defaults, dict) and TwoLevelKFAC(problem, training).momentum == 0.6
    star = KFACStar(problem, training)
    assert (star.damping, star.adaptive) == (1e-8, True)
    assert ENGD(problem, training).damping == 1e-8
    explicit = KFAC(problem, dataclasses.replace(training, damping=1e-6, adaptive_damping=True, momentum=0.0))
    assert (explicit.damping, explicit.adaptive, explicit.momentum) == (1e-6, True, 0.0)


def test_momentum_buffer_is_searched_as_a_whole():
    """`kfac` keeps the heavy-ball buffer b ← μ b + δ of the unscaled KFAC directions δ and
    steps η b (the reference implementation's momentum): after two steps the buffer is
    μ δ₁ + δ₂, and the parameters moved by η₁ δ₁ + η₂ b."""
    problem, fn, weights, training = tiny_problem(SPECS / "poisson2d.yaml", ["model.hidden=[6]"])
    opt = KFAC(problem, dataclasses.replace(training, momentum=0.5))
    directions = []
    original = opt.direction

    def recording(lin, inverse, grad):
        xs, xp = original(lin, inverse, grad)
        directions.append(([-x.clone() for x in xs], -xp.clone()))
        return xs, xp

    opt.direction = recording
    weights_before = [p.detach().clone() for p in problem.model.parameters()]
    opt.step(fn, weights)
    eta1 = opt.info["step_size"]
    opt.step(fn, weights)
    eta2, mu = opt.info["step_size"], opt.info["momentum"]
    assert mu == 0.5  # this tiny problem's second buffer goes downhill
    (d1, _), (d2, _) = directions
    buffer = [0.5 * a + b for a, b in zip(d1, d2)]
    for b, kept in zip(buffer, opt.previous[0]):
        torch.testing.assert_close(kept, b)
    moved = [p.detach() - w for p, w in zip(problem.model.parameters(), weights_before)]
    per_layer = [torch.cat([W, b[:, None]], dim=1) for W, b in zip(moved[::2], moved[1::2])]  # [W | b], as δ
    for m, a, b in zip(per_layer, d1, buffer):
        torch.testing.assert_close(m, eta1 * a + eta2 * b)
