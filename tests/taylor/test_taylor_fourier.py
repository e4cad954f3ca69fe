"""Random Fourier features in front of the network: every stream kind through the embedding
against nested autograd of the plain forward pass (float64), the embedding's definition, and
the KFAC records of the trainable layers still giving the weight gradients."""

from __future__ import annotations

import math

import pytest
import torch

from pdec.taylor import TaylorMLP, plan_streams, record_passes
from taylor_cases import OPERATORS, AutogradReference, by_id, make_points, rel_err

TOL = 1e-10

CASES = [
    dict(id="fourier-d2-m8-h6x5-o1", seed=20, n_in=2, hidden=[6, 5], n_out=1, fourier=(8, 1.5), activation="tanh"),
    dict(id="fourier-d3-m5-h7-o2", seed=21, n_in=3, hidden=[7], n_out=2, fourier=(5, 0.7), activation="sin"),
    dict(id="fourier-d1-m16-h4x4x4-o1", seed=22, n_in=1, hidden=[4, 4, 4], n_out=1, fourier=(16, 3.0), activation="tanh"),
]


def make(case: dict) -> TaylorMLP:
    torch.manual_seed(case["seed"])
    net = TaylorMLP(case["n_in"], case["hidden"], case["n_out"], case["activation"], fourier=case["fourier"])
    with torch.no_grad():
        for layer in net.linear_layers():
            layer.bias.normal_(0, 0.5)
    return net


@pytest.mark.parametrize("kind", **by_id(OPERATORS))
@pytest.mark.parametrize("case", **by_id(CASES))
def test_every_stream_kind_through_the_embedding(case, kind):
    net, X = make(case), make_points(case)
    ops = kind["ops"](case["n_in"])
    out = net.taylor(X, plan_streams(ops, case["n_in"]))
    ref = AutogradReference(net, X)
    for op in ops:
        assert rel_err(out[op], ref.of(op)) < TOL, op


def test_the_embedding_is_cos_and_sin_of_2pi_B_x_and_is_not_trained():
    net = make(CASES[0])
    emb = net.embedding
    B = emb.weight[:8] / (2 * math.pi)
    assert torch.equal(emb.weight[:8], emb.weight[8:])
    X = make_points(CASES[0])
    expect = torch.cat([torch.cos(2 * math.pi * X @ B.T), torch.sin(2 * math.pi * X @ B.T)], 1)
    assert rel_err(emb(X), expect) < 1e-14
    assert net.layers[0].in_features == 16
    assert all(p is not emb.weight for p in net.parameters())
    assert "embedding.weight" in net.state_dict()  # saved with the checkpoint, restored on load


def test_the_scale_sets_the_frequencies():
    torch.manual_seed(0)
    small = TaylorMLP(2, [4], 1, fourier=(4000, 0.5)).embedding.weight
    torch.manual_seed(0)
    large = TaylorMLP(2, [4], 1, fourier=(4000, 4.0)).embedding.weight
    assert torch.allclose(large, small * 8)
    assert abs(float(small.std()) / (2 * math.pi) - 0.5) < 0.02


def test_the_fused_runtime_is_refused_and_the_default_runs_the_generic_one():
    net, X = make(CASES[0]), make_points(CASES[0])
    plan = plan_streams(OPERATORS[4]["ops"](2), 2)
    with pytest.raises(ValueError, match="Fourier"):
        net.taylor(X, plan, fused=True)
    assert torch.equal(next(iter(net.taylor(X, plan).values())), next(iter(net.taylor(X, plan, fused=False).values())))


@pytest.mark.parametrize("case", **by_id(CASES))
def test_records_of_the_trainable_layers_give_their_gradients(case):
    net, X = make(case), make_points(case, n=7)
    ops = [op for k in (0, 1, 4) for op in OPERATORS[k]["ops"](case["n_in"])]
    with record_passes(net) as passes:
        out = net.taylor(X, plan_streams(ops, case["n_in"]))
        loss = sum((v * (k + 1)).tanh().sum() for k, v in enumerate(out.values()))
    loss.backward()
    assert len(passes[0]) == len(net.linear_layers())
    for layer, r in zip(net.linear_layers(), passes[0]):
        grad = torch.einsum("sno,sni->oi", r.g, r.a_with_bias())
        assert rel_err(grad[:, :-1], layer.weight.grad) < TOL
        assert rel_err(grad[:, -1], layer.bias.grad) < TOL
