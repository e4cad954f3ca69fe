"""Points on composite domains at run time: the evaluation grid and reference points masked to the
domain, its outline for plots, and a condition's points split between its clauses by measure."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

import pdec
from pdec.geometry import contains, geometry_of
from pdec.runtime.evaluate import Evaluator
from pdec.runtime.sampling import Sampler

from domain_cases import L_SHAPE

BOUNDARY = "  - {on: boundary, impose: u = 0}\n"


def _definition(tmp_path, extra: str = ""):
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(L_SHAPE) + (extra if extra.startswith("  - ") else BOUNDARY + extra), encoding="utf-8")
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
    # the domain's 3 of the padded box's (2 × 1.04)²
    assert (outline["outline_signed"] <= 0).mean() == pytest.approx(3 / 2.08**2, abs=0.01)


def test_outline_of_the_lshape_has_its_outer_edges_and_reentrant_corner(tmp_path):
    """The zero level as matplotlib draws it (contourpy, behind `contour`) runs along every edge:
    the four on the bounding box too (the grid used to end there, where the signed function is 0,
    and the plot showed the square [0, 1]²), and through the re-entrant corner."""
    import contourpy

    definition = _definition(tmp_path)
    outline = Evaluator(definition, definition.output, dtype=torch.float64, device="cpu").outline()
    x, y, signed = outline["outline_x"], outline["outline_y"], outline["outline_signed"]
    lines = contourpy.contour_generator(x, y, signed.T).lines(0)
    V = np.vstack(lines)
    cell = float(x[1] - x[0])
    on_edges = [(-1, 0.5), (-1, -0.5), (-0.5, -1), (0.5, -1), (1, -0.5), (-0.5, 1), (0, 0.5), (0.5, 0), (0, 0), (-1, -1), (1, 0), (-1, 1)]
    for p in on_edges:
        assert np.linalg.norm(V - p, axis=1).min() < 1.5 * cell, p  # marching squares cuts corners by a cell
    assert np.abs(V).max() <= 1 + cell  # nothing drawn beyond the domain
    inside = (V[:, 0] > cell) & (V[:, 1] > cell) & (V[:, 0] < 1 - cell) & (V[:, 1] < 1 - cell)
    assert not inside.any()  # nor across the removed quadrant


def test_reference_points_outside_the_domain_are_dropped(tmp_path):
    axis = np.linspace(-1, 1, 21)
    X, Y = np.meshgrid(axis, axis, indexing="ij")
    u = np.where((X > 0) & (Y > 0), np.nan, X * Y)
    np.savez(tmp_path / "ref.npz", x=axis, y=axis, u=u)
    definition = _definition(tmp_path, "reference: ref.npz\n")
    evaluator = Evaluator(definition, definition.output, dtype=torch.float64, device="cpu")
    assert np.isfinite(evaluator.truth["u"]).all()
    assert len(evaluator.X_np) == 21 * 21 - 10 * 10


CLAUSES = [
    ("x = -1 or x = 0", lambda X: np.abs(X[:, 0] + 1) < 1e-12, 2000),
    ("x = 0 or y = -1", lambda X: np.abs(X[:, 0]) < 1e-12, 1000),
    ("y = 0 and x > 0.5 or y = 1", lambda X: np.abs(X[:, 1]) < 1e-12, 1000),
]


@pytest.mark.parametrize("sides, first, expected", CLAUSES, ids=[c[0] for c in CLAUSES])
def test_clauses_share_points_by_the_measure_they_select(tmp_path, sides, first, expected):
    """Every clause on a composite's boundary is a filtered `boundary`: each was weighted by the
    whole boundary's measure (8), so `x = -1 or x = 0` split 50/50; by what they keep it is 2 : 1."""
    definition = _definition(tmp_path, f"  - {{on: {sides}, impose: u = 0}}\n")
    (term,) = [t for t in definition.terms if t.kind == "boundary"]
    sampler = Sampler(definition, definition.training, dtype=torch.float64, device="cpu", seed=0)
    X = sampler.condition(term, 3000).X.numpy()
    assert len(X) == 3000
    assert abs(int(first(X).sum()) - expected) <= 30  # the kept share is estimated from 10⁵ points


def test_sobol_interior_points_of_a_composite(tmp_path):
    """`sampler: sobol` on the L-shape: the scrambled sequence thinned to the domain, exactly the
    number asked, every point inside, and each of the three squares within 1% of its third."""
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(L_SHAPE) + BOUNDARY, encoding="utf-8")
    definition = pdec.compile(path, overrides=["model.hidden=[4]", "training.sampler=sobol"]).definition
    sampler = Sampler(definition, definition.training, dtype=torch.float64, device="cpu", seed=0)
    X = sampler.interior(3000).X.numpy()
    assert X.shape == (3000, 2) and contains(geometry_of(definition.domain), X).all()
    for square in ((X[:, 0] < 0) & (X[:, 1] < 0), (X[:, 0] < 0) & (X[:, 1] > 0), (X[:, 0] > 0) & (X[:, 1] < 0)):
        assert abs(square.mean() - 1 / 3) < 0.01
