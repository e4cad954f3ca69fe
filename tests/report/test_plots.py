"""Plots are drawn where people would look: weights only when they changed."""

from __future__ import annotations

import json

import pytest

from pdec.report.plots import plot_run


def _metrics(run_dir, weights_per_step):
    lines = [
        {"step": s, "time_s": 0.1 * s, "loss": 1.0 / s, "losses": {"pde": 0.5 / s, "bc": 0.5 / s}, "weights": w}
        for s, w in enumerate(weights_per_step, start=1)
    ]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


@pytest.mark.parametrize("changing", [False, True], ids=["fixed", "adaptive"])
def test_weights_plot_only_when_the_weights_change(tmp_path, changing):
    weights = [{"pde": 1.0, "bc": (1.0 + s if changing else 1.0)} for s in range(5)]
    _metrics(tmp_path, weights)
    written = {p.name for p in plot_run(tmp_path)}
    assert "loss.png" in written
    assert ("weights.png" in written) is changing
