"""Evaluation points on composite domains: the grid and reference points masked to the domain."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

import pdec
from pdec.geometry import contains, geometry_of
from pdec.runtime.evaluate import Evaluator

L_SHAPE = """
domain:
  shape: difference
  of:
    - {shape: box, x: [-1, 1], y: [-1, 1]}
    - {shape: box, x: [0, 1], y: [0, 1]}
unknowns: [u]
equations:
  - -laplacian(u) = 1
conditions:
  - {on: boundary, impose: u = 0}
"""


def _definition(tmp_path, extra: str = ""):
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(L_SHAPE) + extra, encoding="utf-8")
    return pdec.compile(path, overrides=["model.hidden=[4]"]).definition


def test_grid_masked_to_the_domain_with_its_outline(tmp_path):
    definition = _definition(tmp_path, "exact:\n  u: x*y\n")
    evaluator = Evaluator(definition, definition.output, dtype=torch.float64, device="cpu")
    X = evaluator.X_np
    g = geometry_of(definition.domain)
    assert contains(g, X).all()
    # 3/4 of the 101 x 101 grid, plus the grid points on the removed square's inner edges
    assert len(X) == 101 * 101 - 50 * 50
    assert not np.any((X[:, 0] > 0) & (X[:, 1] > 0))
    outline = evaluator.outline()
    assert outline["outline_signed"].shape == (301, 301)
    assert (outline["outline_signed"] <= 0).mean() == pytest.approx(0.75, abs=0.01)


def test_reference_points_outside_the_domain_are_dropped(tmp_path):
    axis = np.linspace(-1, 1, 21)
    X, Y = np.meshgrid(axis, axis, indexing="ij")
    u = np.where((X > 0) & (Y > 0), np.nan, X * Y)
    np.savez(tmp_path / "ref.npz", x=axis, y=axis, u=u)
    definition = _definition(tmp_path, "reference: ref.npz\n")
    evaluator = Evaluator(definition, definition.output, dtype=torch.float64, device="cpu")
    assert np.isfinite(evaluator.truth["u"]).all()
    assert len(evaluator.X_np) == 21 * 21 - 10 * 10
