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


def test_solution_plot_leaves_out_what_is_outside_the_domain(tmp_path):
    """On an L-shape the Delaunay triangles across the removed quadrant are masked (from the
    outline the run saved), and the outline is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np

    from pdec.contract import BoxDomain, CSGDomain
    from pdec.geometry import contains, geometry_of
    from pdec.report.plots import _triangulation

    g = geometry_of(CSGDomain("difference", (BoxDomain((-1, -1), (1, 1)), BoxDomain((0, 0), (1, 1)))))
    axis = np.linspace(-1, 1, 41)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    X = grid[contains(g, grid)]
    gx = np.linspace(-1, 1, 301)
    signed = g.signed(np.stack(np.meshgrid(gx, gx, indexing="ij"), -1).reshape(-1, 2)).reshape(301, 301)
    data = {"outline_x": gx, "outline_y": gx, "outline_signed": signed}
    mesh = _triangulation(X[:, 0], X[:, 1], data)
    centres = np.stack([X[mesh.triangles, 0].mean(1), X[mesh.triangles, 1].mean(1)], 1)
    kept = ~mesh.mask
    assert not np.any((centres[kept, 0] > 0) & (centres[kept, 1] > 0))  # nothing drawn in the hole
    assert np.all(g.signed(centres[~kept]) > 0)  # and only what lies outside was masked
    u = np.exp(-(X**2).sum(1))
    np.savez(tmp_path / "solution.npz", X=X, prediction=u[:, None], variables=np.array(["x", "y"]), unknowns=np.array(["u"]), **data)
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "time_s": 0.1, "loss": 1.0, "losses": {"pde": 1.0}}) + "\n")
    assert "solution_u.png" in {p.name for p in plot_run(tmp_path)}
