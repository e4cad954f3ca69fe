"""The randomized (Hutchinson) Laplacian: unbiased, with the documented
variance 2 Σ_{i≠j} H_ij² / S for Rademacher directions, reproducible."""

from __future__ import annotations

import pytest
import torch

from pdec.taylor import Laplacian, Partial, TaylorMLP, plan_streams

D, OVER, SAMPLES, DRAWS = 5, (0, 1, 2, 4), 4, 2000


@pytest.fixture(scope="module")
def setting():
    torch.manual_seed(0)
    net = TaylorMLP(D, [8, 8], 2, "tanh")
    X = torch.rand(3, D, dtype=torch.float64) * 2 - 1
    hess = torch.func.vmap(torch.func.jacrev(torch.func.jacrev(lambda x: net(x[None])[0])))(X)  # [N, out, D, D]
    H = hess[:, :, OVER][:, :, :, OVER]
    exact = H.diagonal(dim1=2, dim2=3).sum(-1)
    off = H - torch.diag_embed(H.diagonal(dim1=2, dim2=3))
    variance = 2 * off.square().sum((2, 3)) / SAMPLES  # of one S-sample estimate
    op = Laplacian(OVER, samples=SAMPLES)
    plan = plan_streams([op], D)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        draws = torch.stack([net.taylor(X, plan, g)[op] for _ in range(DRAWS)])
    return dict(net=net, X=X, exact=exact, variance=variance, draws=draws, op=op, plan=plan)


def test_mean_over_draws_is_the_exact_laplacian(setting):
    # The mean of DRAWS independent estimates has standard error sqrt(variance / DRAWS);
    # five standard errors at every point and output.
    mean = setting["draws"].mean(0)
    stderr = (setting["variance"] / DRAWS).sqrt()
    assert (stderr > 0).all()
    assert ((mean - setting["exact"]).abs() < 5 * stderr).all()


def test_variance_matches_the_rademacher_formula(setting):
    # Sample variance against 2 Σ_{i≠j} H_ij² / S, within five standard errors of
    # the sample variance, sqrt((m4 - s⁴) / DRAWS), estimated from the draws.
    centred = setting["draws"] - setting["exact"]
    s2 = centred.square().mean(0)
    m4 = centred.pow(4).mean(0)
    stderr = ((m4 - s2.square()) / DRAWS).sqrt()
    assert ((s2 - setting["variance"]).abs() < 5 * stderr).all()


def test_same_generator_seed_same_directions(setting):
    net, X, op, plan = setting["net"], setting["X"], setting["op"], setting["plan"]
    a = net.taylor(X, plan, torch.Generator().manual_seed(7))[op]
    b = net.taylor(X, plan, torch.Generator().manual_seed(7))[op]
    g = torch.Generator().manual_seed(7)
    c, d = net.taylor(X, plan, g)[op], net.taylor(X, plan, g)[op]
    assert torch.equal(a, b) and torch.equal(a, c)
    assert not torch.equal(c, d)  # fresh directions on every call


def test_generic_and_fused_draw_the_same_directions(setting):
    net, X, op, plan = setting["net"], setting["X"], setting["op"], setting["plan"]
    a = net.taylor(X, plan, torch.Generator().manual_seed(3), fused=True)[op]
    b = net.taylor(X, plan, torch.Generator().manual_seed(3), fused=False)[op]
    assert torch.allclose(a, b, rtol=1e-12, atol=0)


def test_default_generator_is_torch_global_rng(setting):
    net, X, op, plan = setting["net"], setting["X"], setting["op"], setting["plan"]
    torch.manual_seed(11)
    a = net.taylor(X, plan)[op]
    torch.manual_seed(11)
    assert torch.equal(a, net.taylor(X, plan)[op])


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "generic"])
def test_random_directions_land_on_their_own_columns(fused):
    """Over a single column a Rademacher estimate is exact (v² = 1): with two
    random groups in one plan, each must see only its own columns."""
    torch.manual_seed(5)
    net = TaylorMLP(3, [7, 6], 2, "softplus")
    X = torch.rand(4, 3, dtype=torch.float64)
    one, other = Laplacian((2,), samples=3), Laplacian((0, 1), samples=2)
    plan = plan_streams([one, other, Partial(())], 3)
    assert plan.n_streams == 1 + 3 + 2 + 2
    out = net.taylor(X, plan, torch.Generator().manual_seed(0), fused=fused)
    exact = net.taylor(X, plan_streams([Partial((2, 2))], 3))[Partial((2, 2))]
    assert torch.allclose(out[one], exact, rtol=1e-12, atol=1e-14)
