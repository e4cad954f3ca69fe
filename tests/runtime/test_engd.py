"""ENGD: the Gramian from the Taylor streams equals JᵀJ from torch.func, the
sample-space solve equals the parameter-space one, large networks are refused."""

from __future__ import annotations

import math

import pytest
import torch

from pdec.runtime.curvature import gn_linearize
from pdec.runtime.engd import ENGD, MAX_DAMPING, adapt_damping, engd_solve

from optim_cases import SPECS, tiny_problem


class _Stacked(torch.nn.Module):
    """The stacked scaled residuals as a module, for `torch.func.functional_call`."""

    def __init__(self, problem, batches_fn, weights) -> None:
        super().__init__()
        self.model, self.pde = problem.model, problem.parameters
        self.fn, self.weights = batches_fn, weights

    def forward(self):
        res = self.fn()
        return torch.cat([math.sqrt(self.weights[k] / r.numel()) * r for k, r in res.items()])


def _reference_jacobian(problem, residual_fn, weights) -> torch.Tensor:
    module = _Stacked(problem, residual_fn, weights)
    params = {k: v.detach() for k, v in module.named_parameters()}
    jac = torch.func.jacrev(lambda p: torch.func.functional_call(module, p, ()))(params)
    cols = []
    for i, layer in enumerate(problem.model.linear_layers()):
        W, b = jac[f"model.layers.{i}.weight"], jac[f"model.layers.{i}.bias"]
        cols.append(torch.cat([W, b[..., None]], dim=2).reshape(W.shape[0], -1))
    cols += [jac[f"pde.{k}"].reshape(-1, 1) for k in problem.parameters]
    return torch.cat(cols, dim=1)


@pytest.mark.parametrize("spec", ["poisson2d", "heat_inverse", "burgers", "kovasznay", "poisson_mixed"])
def test_gramian_equals_torch_func(spec):
    problem, residual_fn, weights, training = tiny_problem(SPECS / f"{spec}.yaml")
    J = _reference_jacobian(problem, residual_fn, weights)
    G = ENGD(problem, training).gramian(residual_fn, weights)
    assert G.shape == (J.shape[1], J.shape[1])
    assert torch.allclose(G, J.T @ J, rtol=1e-10, atol=1e-12)


def test_gradient_is_half_the_loss_gradient():
    problem, residual_fn, weights, _ = tiny_problem(SPECS / "heat_inverse.yaml")
    lin = gn_linearize(problem, residual_fn, weights)
    vs, vp = lin.gradient()
    res = residual_fn()
    loss = sum(weights[k] * r.square().mean() for k, r in res.items())
    params = [p for layer in problem.model.linear_layers() for p in (layer.weight, layer.bias)]
    grads = torch.autograd.grad(loss, params + list(problem.parameters.values()), allow_unused=True)
    for i, V in enumerate(vs):
        assert torch.allclose(2 * V[:, :-1], grads[2 * i], atol=1e-12)
        assert torch.allclose(2 * V[:, -1], grads[2 * i + 1], atol=1e-12)
    assert torch.allclose(2 * vp, torch.stack([g.reshape(()) for g in grads[len(params):]]), atol=1e-12)


@pytest.mark.parametrize("damping", [0.0, 1e-3])
def test_sample_space_solve_matches_parameter_space(damping):
    torch.manual_seed(0)
    J, r = torch.randn(20, 50, dtype=torch.float64), torch.randn(20, dtype=torch.float64)
    wide = engd_solve(J, r, damping)  # 20 < 50: Woodbury
    reference = torch.linalg.pinv(J.T @ J + damping * torch.eye(50, dtype=torch.float64)) @ (J.T @ r)
    assert torch.allclose(wide, reference, atol=1e-8)
    tall = engd_solve(J.T.contiguous(), torch.randn(50, dtype=torch.float64), damping)
    assert tall.shape == (20,)


def test_singular_gramian_without_damping_is_solved_with_jitter():
    """Two equal columns make JᵀJ singular; with λ = 0 the Cholesky retries with a tiny
    jitter and still returns a least-squares solution (normal equations hold)."""
    torch.manual_seed(1)
    J = torch.randn(40, 6, dtype=torch.float64)
    J[:, 5] = J[:, 4]
    r = torch.randn(40, dtype=torch.float64)
    x = engd_solve(J, r, 0.0)
    assert torch.isfinite(x).all()
    assert torch.allclose(J.T @ (J @ x), J.T @ r, atol=1e-6)
    assert torch.isnan(engd_solve(torch.full((3, 2), float("nan"), dtype=torch.float64), r[:3], 1e-8)).all()


def test_large_networks_are_refused():
    problem, *_, training = tiny_problem(SPECS / "poisson2d.yaml", ["model.hidden=[128, 128]"])
    with pytest.raises(ValueError, match="not supported. Use `kfac`"):
        ENGD(problem, training)


def test_adaptive_damping_follows_the_line_search():
    """Full steps lower λ by 3 down to the spec's floor; steps cut below 1/4 raise it by 10
    up to MAX_DAMPING; steps in between keep it."""
    assert adapt_damping(3e-6, 1.0, 1e-8) == pytest.approx(1e-6)
    assert adapt_damping(2e-8, 1.0, 1e-8) == 1e-8
    assert adapt_damping(1e-8, 0.5, 1e-8) == 1e-8
    assert adapt_damping(1e-8, 0.25, 1e-8) == 1e-8
    assert adapt_damping(1e-8, 0.125, 1e-8) == pytest.approx(1e-7)
    assert adapt_damping(MAX_DAMPING, 2.0**-30, 1e-8) == MAX_DAMPING


def test_underdetermined_engd_recovers_by_damping():
    """With fewer residuals than parameters the minimum-norm Gauss–Newton step is long and
    the line search cuts it; adaptive damping shortens it until full steps are taken again,
    and the damping is part of the state a resume restores."""
    problem, fn, weights, settings = tiny_problem(SPECS / "poisson1d.yaml", ["model.hidden=[16, 16]"])
    opt = ENGD(problem, settings)
    dampings = []
    first, _ = opt.step(fn, weights)
    for _ in range(15):
        total, _ = opt.step(fn, weights)
        dampings.append(opt.damping)
    assert float(total) < 0.1 * float(first)
    assert max(dampings) > opt.settings.damping  # the starting λ, ENGD's default where the spec sets none
    state = opt.state_dict()
    assert state["damping"] == opt.damping
    other = ENGD(problem, settings)
    other.load_state_dict(state)
    assert other.damping == opt.damping
