"""The recorder: recorded input streams and output-stream gradients against an
independent computation, Σ_s g_sᵀ a_s against the weight gradient, one record
per pass, clearing gradients between backward passes, the KFAC factors."""

from __future__ import annotations

import pytest
import torch

from pdec.taylor import Laplacian, Partial, TaylorMLP, plan_streams, record_passes
from taylor_cases import rel_err

TOL = 1e-12
RUNTIMES = [pytest.param(True, id="fused"), pytest.param(False, id="generic")]


def _loss(value, lap):
    return (lap - value.sin()).square().mean() + value.square().sum()


@pytest.mark.parametrize("fused", RUNTIMES)
def test_one_hidden_layer_against_hand_written_streams(fused):
    torch.manual_seed(0)
    net = TaylorMLP(2, [5], 2, "tanh")
    X = torch.rand(7, 2, dtype=torch.float64)
    value, lap = Partial(()), Laplacian((0, 1))
    plan = plan_streams([value, lap], 2)
    assert plan.describe(["x", "y"]) == ["value", "d/dx", "d/dy", "laplacian over x,y (collapsed)"]

    with record_passes(net) as passes:
        out = net.taylor(X, plan, fused=fused)
        _loss(out[value], out[lap]).backward()

    # The same pass written out by hand (Taylor mode with the forward
    # Laplacian, Li et al. 2023), from detached weights.
    l1, l2 = (layer for layer in net.linear_layers())
    W1, b1, W2, b2 = (t.detach() for t in (l1.weight, l1.bias, l2.weight, l2.bias))
    N = X.shape[0]
    a1 = torch.stack([X, torch.tensor([1.0, 0.0]).expand(N, 2), torch.tensor([0.0, 1.0]).expand(N, 2), torch.zeros(N, 2)])
    a1 = a1.to(X.dtype)
    H = (a1 @ W1.T).clone()
    H[0] += b1
    H.requires_grad_(True)
    s = torch.tanh(H[0])
    d = 1 - s * s
    A = torch.stack([s, d * H[1], d * H[2], d * H[3] - 2 * s * d * (H[1] ** 2 + H[2] ** 2)])
    Z = A @ W2.T
    Z = torch.cat([Z[:1] + b2, Z[1:]])
    gH, gZ = torch.autograd.grad(_loss(Z[0], Z[3]), [H, Z])

    assert len(passes) == 1 and len(passes[0]) == 2
    first, second = passes[0]
    assert first.n_streams == second.n_streams == 4
    assert rel_err(first.a, a1) < TOL and rel_err(second.a, A.detach()) < TOL
    assert rel_err(first.g, gH) < TOL and rel_err(second.g, gZ) < TOL


PASSES = [
    dict(id="fused-laplacian", ops=[Partial(()), Laplacian((0, 1, 2))], fused=True),
    dict(id="generic-laplacian", ops=[Partial(()), Laplacian((0, 1, 2))], fused=False),
    dict(id="fused-mixed", ops=[Partial((0, 2)), Partial((1,))], fused=True),
    dict(id="generic-fourth-order", ops=[Partial((0, 0, 1, 1)), Laplacian((0, 1), power=2)], fused=False),
    dict(id="plain-forward", ops=None, fused=None),
]


@pytest.mark.parametrize("case", PASSES, ids=[c["id"] for c in PASSES])
def test_recorded_products_are_the_weight_gradients(case):
    torch.manual_seed(1)
    net = TaylorMLP(3, [6, 5, 4], 2, "sin")
    X = torch.rand(9, 3, dtype=torch.float64)
    with record_passes(net) as passes:
        if case["ops"] is None:
            loss = net(X).cos().sum()
        else:
            out = net.taylor(X, plan_streams(case["ops"], 3), fused=case["fused"])
            loss = sum((v * (k + 1)).tanh().sum() for k, v in enumerate(out.values()))
    loss.backward()  # after the block: passes started inside are still recorded
    assert len(passes) == 1 and passes.with_grads() == [0]
    for layer, r in zip(net.linear_layers(), passes[0]):
        grad = torch.einsum("sno,sni->oi", r.g, r.a_with_bias())
        assert rel_err(grad[:, :-1], layer.weight.grad) < TOL
        assert rel_err(grad[:, -1], layer.bias.grad) < TOL if layer.bias.grad.any() else not grad[:, -1].any()


def test_two_terms_in_two_blocks_add_up_to_the_gradient():
    torch.manual_seed(2)
    net = TaylorMLP(2, [6, 6], 1)
    Xi, Xb = torch.rand(8, 2, dtype=torch.float64), torch.rand(4, 2, dtype=torch.float64)
    lap = Laplacian((0, 1))
    with record_passes(net) as interior:
        r_in = net.taylor(Xi, plan_streams([lap], 2))[lap]
    with record_passes(net) as boundary:
        r_bd = net(Xb)
    (r_in.square().mean() + r_bd.square().mean()).backward()
    assert interior[0][0].n_streams == 4 and boundary[0][0].n_streams == 1
    for layer, ri, rb in zip(net.linear_layers(), interior[0], boundary[0]):
        total = torch.einsum("sno,sni->oi", ri.g, ri.a) + torch.einsum("sno,sni->oi", rb.g, rb.a)
        assert rel_err(total, layer.weight.grad) < TOL


@pytest.mark.parametrize("fused", [None, False])
def test_every_pass_gets_its_own_record_and_clear_grads_tells_which_a_backward_reached(fused):
    torch.manual_seed(6)
    net = TaylorMLP(2, [5, 4], 1)
    X1, X2 = torch.rand(6, 2, dtype=torch.float64), torch.rand(3, 2, dtype=torch.float64)
    lap = Laplacian((0, 1))
    plan = plan_streams([lap], 2)
    with record_passes(net) as passes:
        r1 = net.taylor(X1, plan, fused=fused)[lap]
        r2 = net.taylor(X2, plan, fused=fused)[lap]
        r3 = net(X2)
    assert len(passes) == 3 and [p[0].a.shape[:2] for p in passes] == [(4, 6), (4, 3), (1, 3)]
    assert passes.with_grads() == []
    params = [p for layer in net.linear_layers() for p in (layer.weight, layer.bias)]
    for k, r in ((1, r2), (0, r1), (2, r3)):
        passes.clear_grads()
        grads = torch.autograd.grad(r.sum(), params, retain_graph=True)
        assert passes.with_grads() == [k]
        for i, record in enumerate(passes[k]):
            assert rel_err(torch.einsum("sno,sni->oi", record.g, record.a), grads[2 * i]) < TOL


def test_generic_recording_allows_a_second_backward():
    torch.manual_seed(7)
    net = TaylorMLP(2, [5], 1)
    X = torch.rand(4, 2, dtype=torch.float64)
    lap = Laplacian((0, 1))
    plan = plan_streams([lap], 2)
    with record_passes(net, generic=True) as passes:
        r = net.taylor(X, plan)[lap]
        with pytest.raises(ValueError, match="generic=True"):
            net.taylor(X, plan, fused=True)
    weight = net.linear_layers()[0].weight
    (first,) = torch.autograd.grad(r[:2].sum(), [weight], retain_graph=True)
    g_first = passes[0][0].g
    passes.clear_grads()
    (second,) = torch.autograd.grad(r[2:].sum(), [weight])
    assert passes.with_grads() == [0] and not torch.equal(g_first, passes[0][0].g)
    assert rel_err(torch.einsum("sno,sni->oi", passes[0][0].g, passes[0][0].a), second) < TOL


def test_nothing_is_captured_outside_a_block_and_blocks_nest():
    torch.manual_seed(3)
    net = TaylorMLP(2, [4], 1)
    X = torch.rand(5, 2, dtype=torch.float64)
    lap = Laplacian((0, 1))
    with record_passes(net) as outer:
        with record_passes(net) as inner:
            net(X).sum().backward()
        assert net.recorder is outer
        net(X)
    assert net.recorder is None and len(outer) == len(inner) == 1
    kept = [(r.a, r.g) for r in inner[0]]
    for fused in (True, False):
        net.taylor(X, plan_streams([lap], 2), fused=fused)[lap].sum().backward()
    net(X).sum().backward()
    assert len(outer) == len(inner) == 1
    assert all(r.a is a and r.g is g for r, (a, g) in zip(inner[0], kept))
    for layer in net.linear_layers():
        assert not layer._forward_hooks and not layer._backward_hooks and not layer._forward_pre_hooks


def test_factors_follow_their_definitions():
    torch.manual_seed(4)
    net = TaylorMLP(3, [5], 1)
    X = torch.rand(6, 3, dtype=torch.float64)
    lap = Laplacian((0, 1, 2))
    with record_passes(net) as passes:
        net.taylor(X, plan_streams([lap], 3))[lap].sum().backward()
    r = passes[0][1]
    a, g = r.a_with_bias(), r.g
    S, N = a.shape[:2]
    A, B = r.factors("expand")
    assert rel_err(A, torch.einsum("sni,snj->ij", a, a) / (N * S)) < TOL
    assert rel_err(B, torch.einsum("sni,snj->ij", g, g) / N) < TOL
    A, B = r.factors("reduce")
    assert rel_err(A, torch.einsum("ni,nj->ij", a.mean(0), a.mean(0)) / N) < TOL
    assert rel_err(B, torch.einsum("ni,nj->ij", g.sum(0), g.sum(0)) / N) < TOL
    assert (a[0, :, -1] == 1).all() and not a[1:, :, -1].any()
    with pytest.raises(ValueError, match="Invalid KFAC mode `mean`. Supported: expand, reduce."):
        r.factors("mean")


def test_boundary_factors_are_ordinary_kfac():
    torch.manual_seed(5)
    net = TaylorMLP(2, [4], 1)
    with record_passes(net) as passes:
        net(torch.rand(5, 2, dtype=torch.float64)).sum().backward()
    for r in passes[0]:
        expand, reduce = r.factors("expand"), r.factors("reduce")
        assert all(torch.allclose(x, y, rtol=1e-14, atol=0) for x, y in zip(expand, reduce))


def test_a_record_without_a_backward_says_so():
    net = TaylorMLP(1, [3], 1)
    with record_passes(net) as passes:
        net(torch.rand(2, 1, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="no backward reached it"):
        passes[0][0].factors()
