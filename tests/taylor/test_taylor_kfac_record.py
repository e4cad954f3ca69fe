"""The KFAC view of a pass: recorded input streams and output-stream gradients
against an independent computation, and Σ_s g_sᵀ a_s against the weight gradient."""

from __future__ import annotations

import pytest
import torch

from pdec.taylor import Laplacian, Partial, TaylorMLP, plan_streams, record
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

    with record(net, term="interior") as rec:
        out = net.taylor(X, plan, fused=fused)
        _loss(out[value], out[lap]).backward()

    # The same pass written out by hand (REFERENCES §1), from detached weights.
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

    assert rec.term == "interior" and len(rec) == 2
    assert rec[0].n_streams == rec[1].n_streams == 4
    assert rel_err(rec[0].a, a1) < TOL and rel_err(rec[1].a, A.detach()) < TOL
    assert rel_err(rec[0].g, gH) < TOL and rel_err(rec[1].g, gZ) < TOL


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
    with record(net) as rec:
        if case["ops"] is None:
            loss = net(X).cos().sum()
        else:
            out = net.taylor(X, plan_streams(case["ops"], 3), fused=case["fused"])
            loss = sum((v * (k + 1)).tanh().sum() for k, v in enumerate(out.values()))
    loss.backward()  # after the block: passes started inside are still recorded
    for layer, r in zip(net.linear_layers(), rec):
        grad = torch.einsum("sno,sni->oi", r.g, r.a_with_bias())
        assert rel_err(grad[:, :-1], layer.weight.grad) < TOL
        assert rel_err(grad[:, -1], layer.bias.grad) < TOL if layer.bias.grad.any() else not grad[:, -1].any()


def test_two_terms_in_two_blocks_add_up_to_the_gradient():
    torch.manual_seed(2)
    net = TaylorMLP(2, [6, 6], 1)
    Xi, Xb = torch.rand(8, 2, dtype=torch.float64), torch.rand(4, 2, dtype=torch.float64)
    lap = Laplacian((0, 1))
    with record(net, "interior") as interior:
        r_in = net.taylor(Xi, plan_streams([lap], 2))[lap]
    with record(net, "boundary") as boundary:
        r_bd = net(Xb)
    (r_in.square().mean() + r_bd.square().mean()).backward()
    assert interior[0].n_streams == 4 and boundary[0].n_streams == 1
    assert boundary.term == "boundary"
    for layer, ri, rb in zip(net.linear_layers(), interior, boundary):
        total = torch.einsum("sno,sni->oi", ri.g, ri.a) + torch.einsum("sno,sni->oi", rb.g, rb.a)
        assert rel_err(total, layer.weight.grad) < TOL


def test_nothing_is_captured_outside_a_block():
    torch.manual_seed(3)
    net = TaylorMLP(2, [4], 1)
    X = torch.rand(5, 2, dtype=torch.float64)
    lap = Laplacian((0, 1))
    with record(net) as rec:
        net(X).sum().backward()
    kept = [(r.a, r.g) for r in rec]
    assert all(layer.kfac_slot is None for layer in net.linear_layers())
    for fused in (True, False):
        net.taylor(X, plan_streams([lap], 2), fused=fused)[lap].sum().backward()
    net(X).sum().backward()
    assert all(r.a is a and r.g is g for r, (a, g) in zip(rec, kept))
    for layer in net.linear_layers():
        assert not layer._forward_hooks and not layer._backward_hooks and not layer._forward_pre_hooks


def test_a_layer_recorded_twice_in_one_block_is_an_error():
    net = TaylorMLP(1, [3], 1)
    X = torch.rand(2, 1, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="ran twice inside one `record` block"):
        with record(net, "interior"):
            net(X)
            net(X)


def test_factors_follow_their_definitions():
    torch.manual_seed(4)
    net = TaylorMLP(3, [5], 1)
    X = torch.rand(6, 3, dtype=torch.float64)
    lap = Laplacian((0, 1, 2))
    with record(net) as rec:
        net.taylor(X, plan_streams([lap], 3))[lap].sum().backward()
    r = rec[1]
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
    with record(net, "boundary") as rec:
        net(torch.rand(5, 2, dtype=torch.float64)).sum().backward()
    for r in rec:
        expand, reduce = r.factors("expand"), r.factors("reduce")
        assert all(torch.allclose(x, y, rtol=1e-14, atol=0) for x, y in zip(expand, reduce))
