"""The curvature operators: ``@`` and ``.inverse() @`` agree with ``.dense()``
and its inverse, per layer (one, two and more Kronecker terms) and for the
whole block-diagonal KFAC matrix of a small problem with a PDE parameter."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pdec.runtime.curvature import gn_linearize
from pdec.runtime.kfac import KFAC
from pdec.runtime.kronecker import KroneckerSum
from pdec.runtime.linesearch import gn_flatten

from optim_cases import SPECS, tiny_problem


def _spd(n, generator):
    X = torch.randn(n, n + 2, dtype=torch.float64, generator=generator)
    return X @ X.T / n + 1e-2 * torch.eye(n, dtype=torch.float64)


@pytest.mark.parametrize("terms", [1, 2, 3])
def test_kronecker_sum(terms):
    gen = torch.Generator().manual_seed(terms)
    K = KroneckerSum([(_spd(4, gen), _spd(3, gen)) for _ in range(terms)])
    V = torch.randn(3, 4, dtype=torch.float64, generator=gen)
    dense = K.dense()
    assert dense.shape == (12, 12)
    assert torch.allclose((K @ V).reshape(-1), dense @ V.reshape(-1), rtol=1e-12, atol=1e-13)
    inverse = K.inverse()
    assert torch.allclose((inverse @ V).reshape(-1), torch.linalg.solve(dense, V.reshape(-1)), rtol=1e-9, atol=1e-11)
    assert torch.allclose(inverse.dense(), torch.linalg.inv(dense), rtol=1e-9, atol=1e-10)
    assert torch.allclose((inverse @ V).reshape(-1), inverse.dense() @ V.reshape(-1), rtol=1e-10, atol=1e-12)
    assert inverse.inverse() is K


def test_block_diagonal_kfac_operator():
    problem, residual_fn, weights, training = tiny_problem(SPECS / "heat_inverse.yaml", ["model.hidden=[5, 4]"])
    opt = KFAC(problem, dataclasses.replace(training, ema=0.0, damping=1e-3))
    lin = gn_linearize(problem, residual_fn, weights)
    assert lin.n_pde > 0
    opt.update_factors(lin)
    op = opt.curvature(lin)
    dense = op.dense()
    assert dense.shape == (lin.n_params, lin.n_params)
    gen = torch.Generator().manual_seed(0)
    vs = [torch.randn(o, i, dtype=torch.float64, generator=gen) for o, i in lin.shapes]
    vp = torch.randn(lin.n_pde, dtype=torch.float64, generator=gen)
    v = gn_flatten(vs, vp)
    assert torch.allclose(gn_flatten(*(op @ (vs, vp))), dense @ v, rtol=1e-11, atol=1e-12)
    inverse = op.inverse()
    assert torch.allclose(gn_flatten(*(inverse @ (vs, vp))), torch.linalg.solve(dense, v), rtol=1e-8, atol=1e-10)
    assert torch.allclose(inverse.dense(), torch.linalg.inv(dense), rtol=1e-8, atol=1e-8)
    assert inverse.inverse() is op
