"""NTK rows from one backward pass against the full Jacobian from `torch.func.jacrev`."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, jacrev

import pdec
from pdec.runtime.losses import term_residuals
from pdec.runtime.ntk import _entries_per_point, ntk_jacobians, ntk_spectra, ntk_traces, select_entries
from pdec.runtime.sampling import Sampler
from pdec.spec.load import load_spec

CASES = [
    {"id": "poisson1d", "spec": "specs/poisson1d.yaml", "hidden": "[6]"},
    {"id": "wave1d", "spec": "specs/wave1d.yaml", "hidden": "[5, 4]"},
    {"id": "poisson2d-multiscale", "spec": "benchmarks/specs/poisson_multiscale_weighted.yaml", "hidden": "[4, 3]"},
]


def tiny(case):
    problem = pdec.compile(load_spec(case["spec"], [f"model.hidden={case['hidden']}"]))
    training = problem.definition.training
    batches = Sampler(problem.definition, training, dtype=torch.float64, device="cpu", seed=0, points=9).draw()
    return problem, batches


def jacobian_rows(problem, batches, name, idx):
    """The dense reference: ∂r/∂θ of the selected entries, by `jacrev` through the real residual path."""
    names = [n for n, _ in problem.model.named_parameters()]
    params = {n: p.detach() for n, p in problem.model.named_parameters()}

    def residual(p):
        original = problem.model
        problem.model = _Bound(original, p)
        try:
            return term_residuals(problem, batches)[name][idx]
        finally:
            problem.model = original

    jac = jacrev(residual)(params)
    return torch.cat([jac[n].reshape(len(idx), -1) for n in names], dim=1)


class _Bound:
    """The model with its parameters replaced (for `torch.func`): only ``taylor`` is called."""

    def __init__(self, model, params):
        self.model, self.params = model, params

    def taylor(self, *args, **kwargs):
        return functional_call(_Taylor(self.model), self.params, args, kwargs)

    def linear_layers(self):
        return self.model.linear_layers()


class _Taylor(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.layers = model.layers
        self.__dict__["_model"] = model  # not a submodule: `functional_call` must see each weight once

    def forward(self, *args, **kwargs):
        return self._model.taylor(*args, **kwargs)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_ntk_rows_match_jacrev(case):
    problem, batches = tiny(case)
    J = ntk_jacobians(problem, lambda: term_residuals(problem, batches), 5)
    assert set(J) == set([t.name for t in problem.definition.terms])
    for name, rows in J.items():
        r = term_residuals(problem, batches)[name]
        idx = select_entries(r.numel(), _entries_per_point(problem, name), 5)
        reference = jacobian_rows(problem, batches, name, idx)
        assert reference.abs().max() > 0
        torch.testing.assert_close(rows, reference, rtol=1e-10, atol=1e-12)
        trace, count = ntk_traces(problem, lambda: term_residuals(problem, batches), 5)[name]
        assert count == len(idx)
        assert trace == pytest.approx(float(torch.trace(reference @ reference.T)), rel=1e-10)


def test_spectrum_is_the_kernel_eigenvalues():
    problem, batches = tiny(CASES[0])
    spectra = ntk_spectra(problem, lambda: term_residuals(problem, batches), 5)
    J = ntk_jacobians(problem, lambda: term_residuals(problem, batches), 5)
    for name, eig in spectra.items():
        assert torch.all(eig[:-1] >= eig[1:])
        assert float(eig.sum()) == pytest.approx(float(J[name].square().sum()), rel=1e-10)
