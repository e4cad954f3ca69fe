"""Causal training: slab weights on a hand-computed case, the residual scaling, ε's schedule,
and a run that logs the weights and resumes them."""

from __future__ import annotations

import json
import math

import pytest
import torch

import pdec
from pdec.runtime.causal import SLABS, Causal, slab_index, slab_weights


def test_slab_weights_by_hand():
    """Four slabs on [0, 1]; points at t = 0.1, 0.2 (slab 0), 0.3 (slab 1), 0.9 (slab 3), slab 2
    empty. Squared residuals 1, 3, 4, 9: slab losses 2, 4, 0, 9; w = exp(−ε·(0, 2, 6, 6))."""
    t = torch.tensor([0.1, 0.2, 0.3, 0.9], dtype=torch.float64)
    r2 = torch.tensor([1.0, 3.0, 4.0, 9.0], dtype=torch.float64)
    w = slab_weights(slab_index(t, 0.0, 1.0, slabs=4), r2, 0.5, slabs=4)
    torch.testing.assert_close(w, torch.exp(-0.5 * torch.tensor([0.0, 2.0, 6.0, 6.0], dtype=torch.float64)))
    # t1 itself belongs to the last slab
    assert slab_index(torch.tensor([1.0]), 0.0, 1.0, slabs=4).tolist() == [3]
    assert slab_weights(torch.tensor([3]), torch.tensor([5.0]), 1.0, slabs=4).tolist() == [1.0, 1.0, 1.0, 1.0]


def test_weigh_scales_by_the_root_of_its_slab_weight_without_gradient():
    causal = Causal(2.0, (0.0, 2.0), time_column=1)
    X = torch.tensor([[0.0, 0.01], [0.0, 1.99]], dtype=torch.float64)
    r = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    out = causal.weigh(X, r)
    # the first point is alone in slab 0 (loss 1); the second's slab comes after it
    torch.testing.assert_close(out.detach(), torch.tensor([1.0, math.exp(-2.0 * 1.0 / 2)], dtype=torch.float64))
    (g,) = torch.autograd.grad(out.sum(), r)
    torch.testing.assert_close(g, out.detach())  # the weights are constants
    assert causal.min_weight == pytest.approx(math.exp(-2.0))  # slabs past the first residual's


def test_epsilon_grows_when_every_slab_is_fitted():
    causal = Causal(0.01, (0.0, 1.0), time_column=0)
    t = torch.linspace(0, 1, 4 * SLABS, dtype=torch.float64)[:, None]
    causal.weigh(t, torch.full((4 * SLABS,), 1e-4, dtype=torch.float64))
    causal.update()
    assert causal.epsilon == pytest.approx(0.1)
    causal.weigh(t, torch.full((4 * SLABS,), 10.0, dtype=torch.float64))
    causal.update()
    assert causal.epsilon == pytest.approx(0.1)  # far from fitted: ε stays
    causal.epsilon = 50.0
    causal.min_weight = 1.0
    causal.update()
    assert causal.epsilon == 100.0  # capped


def test_a_run_logs_and_resumes_epsilon(heat_path, tmp_path, small):
    settings = [*small, "training.causal=1", "training.optimizer=adam", "output.plots=false"]
    out = tmp_path / "run"
    pdec.solve(heat_path, steps=6, out=out, settings=settings)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all("causal" in r for r in records)
    assert records[-1]["causal"]["epsilon"] >= 1.0 and 0 < records[-1]["causal"]["min_weight"] <= 1
    resumed = pdec.solve(heat_path, steps=10, out=out, resume=True, settings=settings).summary
    straight = pdec.solve(heat_path, steps=10, out=tmp_path / "straight", settings=settings).summary
    assert resumed["final_loss"] == straight["final_loss"]


def test_causal_needs_time(tmp_path):
    from pdec.errors import SpecError

    spec = tmp_path / "p.yaml"
    spec.write_text(
        "name: p\ndomain: {x: [0, 1]}\nunknowns: [u]\nequations:\n  - u_xx = 1\n"
        "conditions:\n  - {on: boundary, impose: u = 0}\ntraining:\n  causal: 1\n",
        encoding="utf-8",
    )
    with pytest.raises(SpecError, match="no `time`"):
        pdec.compile(spec)
