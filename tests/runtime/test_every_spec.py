"""`pdec solve` on every example spec leaves a complete run directory."""

from __future__ import annotations

import json
import math

import pdec

FILES = ("summary.json", "metrics.jsonl", "solution.npz", "resolved.json", "spec.yaml", "loss.png")


def test_every_spec_trains_and_writes_its_run_directory(spec_path, tmp_path, small):
    settings = small + ["training.optimizer=adam", "training.log_every=2", "output.grid=21", "output.eval_points=500"]
    result = pdec.solve(spec_path, steps=2, out=tmp_path, settings=settings)
    summary = result.summary
    assert summary["status"] == "completed" and summary["steps"] == 2
    assert math.isfinite(summary["final_loss"])
    for name in FILES:
        assert (tmp_path / name).exists(), name
    assert set(summary["losses"]) == {t.name for t in result.problem.compiled.problem.terms}
    if result.problem.compiled.spec.exact or result.problem.compiled.spec.reference:
        assert set(summary["rel_l2"]) <= set(result.problem.unknowns) and summary["rel_l2"]
        assert all(math.isfinite(e) for e in summary["rel_l2"].values())
    if result.problem.compiled.spec.parameters:
        assert set(summary["parameters"]) == {p.name for p in result.problem.compiled.spec.parameters}
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
