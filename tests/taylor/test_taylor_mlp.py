"""Every stream kind against nested autograd and torch.func, float64, rel. error < 1e-10."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pdec.taylor import Laplacian, Partial, TaylorMLP, plan_streams
from taylor_cases import NETWORKS, OPERATORS, AutogradReference, by_id, make_net, make_points, rel_err

TOL = 1e-10

# torch.func's forward mode loads decompositions through torch.jit.script,
# which torch 2.13 flags as deprecated; that is torch's own business.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


def everything(D: int) -> list:
    """One plan with every stream kind at once: shared streams must not interfere."""
    ops = {op for case in OPERATORS for op in case["ops"](D)}
    return sorted(ops, key=repr)


@pytest.mark.parametrize("case", **by_id(NETWORKS))
def test_all_operator_kinds_in_one_pass(case):
    net, X = make_net(case), make_points(case)
    ops = everything(case["n_in"])
    out = net.taylor(X, plan_streams(ops, case["n_in"]))
    ref = AutogradReference(net, X)
    for op in ops:
        assert out[op].shape == (X.shape[0], case["n_out"])
        assert rel_err(out[op], ref.of(op)) < TOL, op


# Each operator kind planned alone, on networks with different activations.
@pytest.mark.parametrize("kind", **by_id(OPERATORS))
@pytest.mark.parametrize("case", **by_id([NETWORKS[1], NETWORKS[8], NETWORKS[13]]))
def test_operator_kind_alone(case, kind):
    net, X = make_net(case), make_points(case)
    ops = kind["ops"](case["n_in"])
    out = net.taylor(X, plan_streams(ops, case["n_in"]), fused=False)
    ref = AutogradReference(net, X)
    for op in ops:
        assert rel_err(out[op], ref.of(op)) < TOL, op


@pytest.mark.parametrize("case", **by_id(NETWORKS[::3]))
def test_hessian_against_torch_func(case):
    net, X = make_net(case), make_points(case)
    D = case["n_in"]
    pairs = [(i, j) for i in range(D) for j in range(i, D)]
    plan = plan_streams([Partial(p) for p in pairs] + [Laplacian(tuple(range(D)))], D)
    out = net.taylor(X, plan)
    hess = torch.func.vmap(torch.func.hessian(lambda x: net(x[None])[0]))(X)  # [N, out, D, D]
    for i, j in pairs:
        assert rel_err(out[Partial((i, j))], hess[:, :, i, j]) < TOL
    assert rel_err(out[Laplacian(tuple(range(D)))], hess.diagonal(dim1=2, dim2=3).sum(-1)) < TOL


def _directional(net, X, v, order):
    """d^order/dt^order net(X + t v) at t = 0 by nested torch.func.jvp."""
    f = net
    for _ in range(order):
        f = (lambda g: lambda x: torch.func.jvp(g, (x,), (v.expand_as(x),))[1])(f)
    return f(X)


@pytest.mark.parametrize("case", **by_id([c for c in NETWORKS if c["n_in"] >= 2][:4]))
def test_bilaplacian_identity_on_a_network(case):
    """Δ²u = (1-(D-1)/3) Σ_i ∂⁴_{e_i}u + 1/6 Σ_{i<j}[∂⁴_{e_i+e_j}u + ∂⁴_{e_i-e_j}u]
    (polarisation, cf. Griewank, Utke & Walther 2000), with the directional
    derivatives from nested jvp."""
    net, X = make_net(case), make_points(case)
    D = case["n_in"]
    e = torch.eye(D, dtype=X.dtype)
    rhs = (1 - (D - 1) / 3) * sum(_directional(net, X, e[i], 4) for i in range(D))
    for i, j in itertools.combinations(range(D), 2):
        rhs = rhs + (_directional(net, X, e[i] + e[j], 4) + _directional(net, X, e[i] - e[j], 4)) / 6
    op = Laplacian(tuple(range(D)), power=2)
    assert rel_err(net.taylor(X, plan_streams([op], D))[op], rhs) < TOL


def test_custom_activation_callable():
    """A callable with the registry's protocol, here σ(z) = exp(-z²)."""

    def gauss(h, order):
        g = torch.exp(-h * h)
        polys = [1, -2 * h, 4 * h**2 - 2, -8 * h**3 + 12 * h, 16 * h**4 - 48 * h**2 + 12]
        return [p * g for p in polys[: order + 1]]

    torch.manual_seed(3)
    net = TaylorMLP(2, [6, 5], 2, gauss)
    X = torch.rand(4, 2, dtype=torch.float64)
    ops = [Laplacian((0, 1)), Partial((0, 1)), Partial((0, 0, 1, 1)), Laplacian((0, 1), power=2)]
    ref = AutogradReference(net, X)
    for fused in (None, False):
        out = net.taylor(X, plan_streams(ops, 2), fused=fused)
        for op in ops:
            assert rel_err(out[op], ref.of(op)) < TOL
    assert net.activation_name == "gauss"


partials = st.integers(1, 4).flatmap(
    lambda D: st.tuples(
        st.just(D),
        st.lists(st.lists(st.integers(0, D - 1), min_size=0, max_size=4), min_size=1, max_size=3),
    )
)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    spec=partials,
    hidden=st.lists(st.integers(2, 6), min_size=1, max_size=3),
    n_out=st.integers(1, 3),
    activation=st.sampled_from(["tanh", "sin", "softplus", "gelu", "swish"]),
    seed=st.integers(0, 2**16),
)
def test_random_partials_against_autograd(spec, hidden, n_out, activation, seed):
    D, indices = spec
    torch.manual_seed(seed)
    net = TaylorMLP(D, hidden, n_out, activation)
    X = torch.rand(3, D, dtype=torch.float64)
    ops = [Partial(tuple(sorted(i))) for i in indices]
    out = net.taylor(X, plan_streams(ops, D))
    ref = AutogradReference(net, X)
    for op in ops:
        r = ref.of(op)
        if r.abs().max() > 1e-8:  # tiny nets can have an almost-zero derivative
            assert rel_err(out[op], r) < TOL, op
        else:
            assert (out[op] - r).abs().max() < 1e-14


def test_value_only_plan_is_the_plain_forward():
    torch.manual_seed(0)
    net = TaylorMLP(3, [5], 2)
    X = torch.rand(4, 3, dtype=torch.float64)
    plan = plan_streams([Partial(())], 3)
    assert plan.n_streams == 1
    assert torch.equal(net.taylor(X, plan)[Partial(())], net(X))


def test_initialisation_is_glorot_normal_and_seeded():
    torch.manual_seed(0)
    a = TaylorMLP(50, [256, 256], 1, dtype=torch.float32)
    torch.manual_seed(0)
    b = TaylorMLP(50, [256, 256], 1, dtype=torch.float32)
    for la, lb in zip(a.linear_layers(), b.linear_layers()):
        assert torch.equal(la.weight, lb.weight) and not la.bias.any()
    w = a.linear_layers()[1].weight
    expected = (2 / (256 + 256)) ** 0.5
    assert abs(w.std().item() / expected - 1) < 0.02  # 65536 samples: std error ≈ 0.3 %
    assert w.dtype == torch.float32


def test_input_validation():
    net = TaylorMLP(2, [4], 1)
    with pytest.raises(ValueError, match=r"expected X of shape \[N, 2\]"):
        net.taylor(torch.zeros(3, 3, dtype=torch.float64), plan_streams([Partial(())], 2))
    with pytest.raises(ValueError, match="plan is for 3 inputs, network has 2"):
        net.taylor(torch.zeros(3, 2, dtype=torch.float64), plan_streams([Partial(())], 3))
    with pytest.raises(ValueError, match="at least one hidden layer"):
        TaylorMLP(2, [], 1)
