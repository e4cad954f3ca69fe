"""`auto`: the recipe chosen where a spec leaves training open, and the plateau stop it relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdec.api import compile_spec
from pdec.plan.auto import ENGD_MAX_PARAMETERS, LARGE, MEDIUM, NOISY_PATIENCE, QN_MAX_PARAMETERS, ROWS_PER_PARAMETER, SMALL, n_parameters
from pdec.runtime.plateau import Plateau

ROOT = Path(__file__).resolve().parents[2]


def test_every_spec_gets_a_concrete_deterministic_choice(spec_path):
    first = compile_spec(spec_path, ["training={}"]).problem
    again = compile_spec(spec_path, ["training={}"]).problem
    assert first.training == again.training and first.hidden == again.hidden and first.choice == again.choice
    t = first.training
    assert t.optimizer in (SMALL.optimizer, MEDIUM.optimizer, LARGE.optimizer) and t.steps and t.points and t.patience
    assert first.choice.startswith("auto (")


def test_rules_and_that_spec_keys_win(heat_path):
    small = compile_spec(heat_path, ["training={}", "model={}"]).problem
    assert (small.training.optimizer, small.hidden, small.training.patience) == ("engd", (32, 32), 30)
    big = compile_spec(heat_path, ["training={}", "model.hidden=[64, 64, 64]"]).problem
    assert n_parameters(2, (64, 64, 64), 1) > ENGD_MAX_PARAMETERS and big.training.optimizer == "lbfgs"
    kept = compile_spec(heat_path, ["training={steps: 7, patience: 0}", "model={}"]).problem
    assert kept.training.steps == 7 and kept.training.patience == 0 and kept.training.optimizer == "engd"
    named = compile_spec(heat_path, ["training={optimizer: adam}", "model={}"]).problem
    assert (named.training.steps, named.hidden, named.training.patience, named.choice) == (2000, (64, 64, 64), 0, "")
    # Fourier features count as the first layer's inputs: 2m of them
    featured = compile_spec(heat_path, ["training={}", "model={fourier: {features: 16}}"]).problem
    assert n_parameters(32, (32, 32), 1) <= ENGD_MAX_PARAMETERS and featured.training.optimizer == "engd"
    wide = compile_spec(heat_path, ["training={}", "model={fourier: {features: 64}}"]).problem
    assert n_parameters(128, (32, 32), 1) > ENGD_MAX_PARAMETERS and wide.training.optimizer == "lbfgs"
    assert "5217 parameters" in wide.choice


def test_more_inputs_get_ssbroyden_on_a_small_network_or_lbfgs_when_too_large():
    spec = ROOT / "specs" / "poisson10d.yaml"
    medium = compile_spec(spec, ["training={}", "model={}"]).problem
    assert (medium.training.optimizer, medium.hidden, medium.training.patience) == ("ssbroyden", (32, 32), 500)
    assert n_parameters(10, (32, 32), 1) <= QN_MAX_PARAMETERS < n_parameters(10, (64, 64), 1)
    given = compile_spec(spec, ["training={}", "model.hidden=[64, 64]"]).problem
    assert (given.training.optimizer, given.hidden) == ("lbfgs", (64, 64))
    wide = compile_spec(ROOT / "specs" / "poisson100d.yaml", ["training={}", "model={}"]).problem
    assert n_parameters(100, (32, 32), 1) > QN_MAX_PARAMETERS
    assert (wide.training.optimizer, wide.hidden) == ("lbfgs", (64, 64, 64))


def test_exact_conditions_get_more_points_drawn_afresh(tmp_path):
    """ENGD with exact conditions: 2.5 interior points per parameter (rounded up to 100), fresh
    points every step drawn by rar-d and the longer plateau window; each spec key still wins."""
    spec = ROOT / "specs" / "wave1d.yaml"
    assert "hard: true" in spec.read_text()
    chosen = compile_spec(spec, ["training={}", "model={}"]).problem
    D = n_parameters(2, (32, 32), 1)
    t = chosen.training
    assert t.points.interior == -(-int(ROWS_PER_PARAMETER * D) // 100) * 100 == 3000
    assert (t.resample, t.sampler, t.patience) == (1, "rar-d", NOISY_PATIENCE)
    assert "fresh points every step where the residual is large (rar-d)" in chosen.choice
    kept = compile_spec(spec, ["training={resample: 0, points: {interior: 500}}", "model={}"]).problem
    assert (kept.training.resample, kept.training.points.interior, kept.training.patience) == (0, 500, 30)
    assert kept.training.sampler == "uniform"
    uniform = compile_spec(spec, ["training={sampler: uniform}", "model={}"]).problem
    assert (uniform.training.resample, uniform.training.sampler) == (1, "uniform")
    soft = compile_spec(ROOT / "specs" / "heat.yaml", ["training={}", "model={}"]).problem
    assert (soft.training.resample, soft.training.sampler, soft.training.points.interior) == (0, "uniform", 1000)


@pytest.mark.parametrize(
    "losses, patience, stop_at",
    [
        ([1.0] * 10, 3, 4),  # no fall at all: stops `patience` steps after the first
        ([1.0, 0.5, 0.25, 0.2, 0.199, 0.198, 0.197], 2, 6),  # falls of < 1% from step 4 on
        ([1.0, 0.9, 0.8, 0.7, 0.6], 2, None),  # keeps falling
        ([1.0] * 10, 0, None),  # patience 0: never
    ],
)
def test_plateau(losses, patience, stop_at):
    rule = Plateau(patience)
    stopped = next((step for step, loss in enumerate(losses, start=1) if rule.update(step, loss)), None)
    assert stopped == stop_at


def test_rar_d_redraws_unless_told_not_to(heat_path):
    """`sampler: rar-d` acts at redraws: without a `resample`, every step; an explicit one is kept."""
    chosen = compile_spec(heat_path, ["training={optimizer: adam, sampler: rar-d}"]).problem.training
    assert (chosen.sampler, chosen.resample) == ("rar-d", 1)
    kept = compile_spec(heat_path, ["training={optimizer: adam, sampler: rar-d, resample: 10}"]).problem.training
    assert kept.resample == 10
