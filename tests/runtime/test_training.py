"""Every Gauss–Newton optimizer decreases the loss on every example spec, and
`kfac` resumes bit-identically (like the first-order optimizers)."""

from __future__ import annotations

import dataclasses
import json
import pytest
import torch

import pdec
from resume_check import assert_resume_is_bit_identical
from pdec.contract import OPTIMIZER_NAMES
from pdec.runtime.optimizers import OPTIMIZERS

from optim_cases import ROOT, SPECS, tiny_problem

GAUSS_NEWTON = ["engd", "kfac", "kfac*", "kfac2l"]
STEPS = 3
SMALL = ["model.hidden=[8, 8]", "training.points={interior: 64, boundary: 16, initial: 16}", "training.log_every=5"]


def test_all_registered():
    assert set(GAUSS_NEWTON) <= set(OPTIMIZERS)


def test_registry_names_are_the_contract_names():
    assert tuple(OPTIMIZERS) == OPTIMIZER_NAMES
    assert all(cls.name == name for name, cls in OPTIMIZERS.items())


def test_adam_then_lbfgs_hands_over_half_way_and_recovers_with_adam():
    problem, residual_fn, weights, training = tiny_problem(SPECS / "poisson2d.yaml", ["model.hidden=[4]"])
    opt = OPTIMIZERS["adam+lbfgs"](problem, dataclasses.replace(training, steps=4))
    phases = []
    for _ in range(4):
        opt.step(residual_fn, weights)
        phases.append(opt.current)
    assert phases == ["adam", "adam", "lbfgs", "lbfgs"]
    assert opt.info == {}  # L-BFGS logs nothing
    opt.recover(1)  # the parameters of step 1 were restored: Adam again, at half the rate
    assert opt.current == "adam"
    opt.step(residual_fn, weights)
    assert opt.info["lr"] == training.lr / 2


def test_every_optimizer_decreases_the_loss(spec_path):
    for name in GAUSS_NEWTON:
        problem, residual_fn, weights, training = tiny_problem(spec_path, ["model.hidden=[6]"])
        training = dataclasses.replace(training, ema=0.5, damping=1e-6)
        with torch.no_grad():
            before = sum(weights[k] * r.square().mean() for k, r in residual_fn().items())
        opt = OPTIMIZERS[name](problem, training)
        for _ in range(STEPS):
            total, losses = opt.step(residual_fn, weights)
        assert set(losses) == set(weights)
        assert torch.isfinite(total) and total < before, (name, float(before), float(total))
        assert {"damping", "step_size"} <= set(opt.info)




@pytest.mark.parametrize("optimizer", ["kfac", "kfac*"])
def test_resume_is_bit_identical(tmp_path, optimizer):
    settings = SMALL + [f"training.optimizer={optimizer}", "output.plots=false", "training.update_every=2"]
    assert_resume_is_bit_identical(ROOT / "specs" / "heat.yaml", settings, tmp_path)


def test_adam_then_lbfgs_hands_over_at_half_the_time_budget(tmp_path, small):
    """With far more steps than the budget allows, `adam+lbfgs` still reaches L-BFGS:
    it hands over when half of `--max-time` is spent."""
    result = pdec.solve(
        ROOT / "specs" / "heat.yaml", steps=10**7, max_time=4.0, optimizer="adam+lbfgs", out=tmp_path,
        settings=small + ["output.plots=false", "training.log_every=50"],
    )  # fmt: skip
    assert result.summary["status"] == "time-limit"
    phases = [json.loads(line)["optimizer"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert phases[0] == "adam" and phases[-1] == "lbfgs", phases
