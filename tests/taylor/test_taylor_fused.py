"""The fused second-order runtime against the generic one: values, parameter
and input gradients, buffer reuse, and the cases it refuses."""

from __future__ import annotations

import pytest
import torch

from pdec.taylor import Laplacian, Partial, TaylorMLP, plan_streams
from taylor_cases import NETWORKS, AutogradReference, by_id, make_net, make_points, rel_err

TOL = 1e-10

PLANS = [
    dict(id="laplacian", ops=lambda D: [Laplacian(tuple(range(D)))]),
    dict(id="value+first+laplacian", ops=lambda D: [Partial(()), Partial((0,)), Laplacian(tuple(range(D)))]),
    dict(id="mixed", ops=lambda D: [Partial((0, D - 1)), Partial((0, 0))]),
    dict(id="shared", ops=lambda D: [Laplacian(tuple(range(D))), Partial((0, 0)), Partial((D - 1, D - 1))]),
    dict(id="first-only", ops=lambda D: [Partial((D - 1,))]),
    dict(id="every-stream-read", ops=lambda D: [Partial(())] + [Partial((i,)) for i in range(D)] + [Partial((0, 0))]),
    dict(id="off-diagonal-only", ops=lambda D: [Partial((0, D - 1))]),
    dict(id="hutchinson", ops=lambda D: [Partial(()), Laplacian(tuple(range(D)), samples=3)]),
]


def _loss_and_grads(net, X, plan, fused, seed=0):
    X = X.clone().requires_grad_(True)
    out = net.taylor(X, plan, torch.Generator().manual_seed(seed), fused=fused)
    loss = sum(((k + 1) * v.sin()).sum() for k, v in enumerate(out.values()))
    params = list(net.parameters())
    grads = torch.autograd.grad(loss, [X, *params], allow_unused=True)
    return out, [torch.zeros_like(p) if g is None else g for g, p in zip(grads, [X, *params])]


@pytest.mark.parametrize("kind", **by_id(PLANS))
@pytest.mark.parametrize("case", **by_id(NETWORKS[::2]))
def test_fused_equals_generic(case, kind):
    net, X = make_net(case), make_points(case, 6)
    plan = plan_streams(kind["ops"](case["n_in"]), case["n_in"])
    out_f, grads_f = _loss_and_grads(net, X, plan, fused=True)
    out_g, grads_g = _loss_and_grads(net, X, plan, fused=False)
    for op in out_g:
        assert rel_err(out_f[op], out_g[op]) < TOL, op
    for gf, gg in zip(grads_f, grads_g):
        if gg.abs().max() > 0:
            assert rel_err(gf, gg) < TOL
        else:
            assert not gf.any()


def test_fused_gradient_of_laplacian_loss_matches_nested_autograd():
    case = NETWORKS[1]
    net, X = make_net(case), make_points(case)
    op = Laplacian(tuple(range(case["n_in"])))
    loss = net.taylor(X, plan_streams([op], case["n_in"]), fused=True)[op][:, 0].square().mean()
    got = torch.autograd.grad(loss, list(net.parameters()))
    ref_loss = AutogradReference(net, X)
    lap = sum(
        torch.autograd.grad(ref_loss._d((i,), 0).sum(), ref_loss.x, create_graph=True)[0][:, i]
        for i in range(case["n_in"])
    )
    want = torch.autograd.grad(lap.square().mean(), list(net.parameters()), allow_unused=True)
    assert want[-1] is None and not got[-1].any()  # the output bias drops out of a Laplacian
    for g, w in zip(got[:-1], want[:-1]):
        assert rel_err(g, w) < TOL


def test_workspace_reuse_keeps_overlapping_graphs_apart():
    """Two passes alive at once (two loss terms) must not share buffers, and a
    step that reuses the buffers of the previous one gives the same numbers."""
    case = NETWORKS[3]
    net, X = make_net(case), make_points(case, 8)
    D = case["n_in"]
    plan_a = plan_streams([Laplacian(tuple(range(D)))], D)
    plan_b = plan_streams([Partial((0, 0)), Partial((1,))], D)

    def step(fused):
        a = net.taylor(X, plan_a, fused=fused)[Laplacian(tuple(range(D)))]
        b = net.taylor(X, plan_b, fused=fused)[Partial((0, 0))]
        c = net.taylor(X[:5], plan_a, fused=fused)[Laplacian(tuple(range(D)))]
        loss = a.square().mean() + (b * a).mean() + c.sum()
        params = list(net.parameters())
        grads = torch.autograd.grad(loss, params, allow_unused=True)  # the output bias drops out
        return [torch.zeros_like(p) if g is None else g.clone() for g, p in zip(grads, params)]

    reference = step(fused=False)
    first, second = step(fused=None), step(fused=None)
    assert net._workspace.free, "buffers should be kept for the next call"
    for g1, g2, r in zip(first, second, reference):
        assert torch.equal(g1, g2)
        assert rel_err(g1, r) < TOL if r.any() else not g1.any()


def test_no_grad_evaluation_returns_buffers():
    case = NETWORKS[0]
    net, X = make_net(case), make_points(case)
    plan = plan_streams([Laplacian((0,))], 1)
    with torch.no_grad():
        a = net.taylor(X, plan)[Laplacian((0,))]
    assert net._workspace.free
    b = net.taylor(X, plan, fused=False)[Laplacian((0,))]
    assert rel_err(a, b) < TOL
    net.release_workspace()
    assert not net._workspace.free


def test_second_backward_is_refused_with_advice():
    case = NETWORKS[0]
    net, X = make_net(case), make_points(case)
    op = Laplacian((0,))
    loss = net.taylor(X, plan_streams([op], 1))[op].sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="fused=False"):
        loss.backward()


def test_double_backward_through_the_generic_runtime():
    """Hessian-vector products w.r.t. the weights need fused=False."""
    case = NETWORKS[2]
    net, X = make_net(case), make_points(case)
    D = case["n_in"]
    op = Laplacian(tuple(range(D)))
    params = list(net.parameters())[:-1]  # a Laplacian does not depend on the output bias
    loss = net.taylor(X, plan_streams([op], D), fused=False)[op].square().sum()
    grads = torch.autograd.grad(loss, params, create_graph=True)
    v = [torch.randn_like(p) for p in params]
    hvp = torch.autograd.grad(sum((g * u).sum() for g, u in zip(grads, v)), params)
    eps = 1e-6
    with torch.no_grad():
        for p, u in zip(params, v):
            p.add_(eps * u)
    loss2 = net.taylor(X, plan_streams([op], D), fused=False)[op].square().sum()
    grads2 = torch.autograd.grad(loss2, params)
    for h, g1, g2 in zip(hvp, grads, grads2):
        finite_difference = (g2 - g1.detach()) / eps
        if h.any():  # O(eps) truncation error of the forward difference
            assert rel_err(finite_difference, h) < 1e-4
        else:
            assert finite_difference.abs().max() < 1e-8


def test_torch_func_transforms_use_the_generic_runtime():
    case = NETWORKS[4]
    net, X = make_net(case), make_points(case)
    D = case["n_in"]
    op = Laplacian(tuple(range(D)))
    plan = plan_streams([op], D)
    grad_func = torch.func.grad(lambda x: net.taylor(x, plan)[op].sum())(X)
    x = X.clone().requires_grad_(True)
    (grad_fused,) = torch.autograd.grad(net.taylor(x, plan, fused=True)[op].sum(), x)
    assert rel_err(grad_fused, grad_func) < TOL
    with pytest.raises(RuntimeError):  # fused=True insists, and torch refuses it under a transform
        torch.func.grad(lambda x: net.taylor(x, plan, fused=True)[op].sum())(X)
    (after,) = torch.autograd.grad(net.taylor(x, plan)[op].sum(), x)  # the refusal left nothing behind
    assert torch.equal(after, grad_fused)


def test_fused_refuses_higher_order_plans():
    net = TaylorMLP(1, [4], 1)
    with pytest.raises(ValueError, match="order ≤ 2"):
        net.taylor(torch.zeros(2, 1, dtype=torch.float64), plan_streams([Partial((0, 0, 0))], 1), fused=True)
