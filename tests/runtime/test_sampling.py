"""Samplers put points on the right sets, with outward normals, in proportion to measure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pdec
from pdec.runtime.sampling import Sampler, _split

BOX = """
domain: {x: [0, 2], y: [0, 1]}
time: {t: [0, 1]}
unknowns: [u]
equations: [u_t = laplacian(u)]
conditions:
  - {name: sides, on: x = 0 or x = 2, impose: dn(u) = 0}
  - {name: bottom_right, on: y = 0 and x > 1.5, impose: u = 0}
  - {name: start, on: t = 0, impose: u = x*y}
"""


def _sampler(tmp_path, text):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    definition = pdec.compile(path).definition
    return definition, Sampler(definition, definition.training, dtype=torch.float64, device="cpu", seed=3)


def test_faces_normals_and_filters(tmp_path):
    definition, sampler = _sampler(tmp_path, BOX)
    sides = sampler.condition(definition.term("sides"), 400)
    X, n = sides.X.numpy(), sides.normals.numpy()
    assert X.shape == (400, 3)
    on_left, on_right = X[:, 0] == 0, X[:, 0] == 2
    assert np.all(on_left | on_right)
    assert np.all(n[on_left] == [-1, 0]) and np.all(n[on_right] == [1, 0])
    assert on_left.sum() == on_right.sum() == 200  # equal measure, equal share
    corner = sampler.condition(definition.term("bottom_right"), 100).X.numpy()
    assert np.all(corner[:, 1] == 0) and np.all(corner[:, 0] > 1.5)
    start = sampler.condition(definition.term("start"), 50).X.numpy()
    assert np.all(start[:, 2] == 0) and np.all((start[:, 0] >= 0) & (start[:, 0] <= 2))


def test_boundary_share_follows_measure(tmp_path):
    text = BOX.replace("on: x = 0 or x = 2, impose: dn(u) = 0", "on: boundary, impose: u = 0")
    definition, sampler = _sampler(tmp_path, text)
    X = sampler.condition(definition.term("sides"), 6000).X.numpy()
    vertical = np.isin(X[:, 0], [0, 2]).mean()  # faces x=0,2 have length 1 each; y=0,1 have length 2 each
    assert vertical == pytest.approx(2 / 6, abs=0.03)


def test_ball_boundary_normals_are_radial(tmp_path):
    text = """
domain: {shape: ball, variables: [x, y], center: [1, 0], radius: 2}
unknowns: [u]
equations: [laplacian(u) = 1]
conditions: [{on: boundary, impose: dn(u) + u = 0}]
"""
    definition, sampler = _sampler(tmp_path, text)
    batch = sampler.condition(definition.term("bc1"), 200)
    X, n = batch.X.numpy(), batch.normals.numpy()
    assert np.allclose(np.linalg.norm(X - [1, 0], axis=1), 2)
    assert np.allclose(n, (X - [1, 0]) / 2)
    inside = sampler.interior(500).X.numpy()
    assert np.all(np.linalg.norm(inside - [1, 0], axis=1) <= 2)


def test_split_is_proportional():
    assert _split(10, [1, 1]) == [5, 5]
    assert _split(10, [1, 2, 2]) == [2, 4, 4]
    assert sum(_split(7, [0.3, 0.3, 0.4])) == 7


def test_sampler_state_replays(tmp_path):
    _, a = _sampler(tmp_path, BOX)
    a.draw()
    state = a.state_dict()
    first = a.draw()
    a.load_state_dict(state)
    again = a.draw()
    assert all(torch.equal(first[k].X, again[k].X) for k in first)


def test_residual_density_by_hand():
    """p ∝ ε/mean(ε) + 1: ε = (0, 1, 3) has mean 4/3, so p ∝ (1, 1.75, 3.25) / 6."""
    from pdec.runtime.sampling import residual_density

    np.testing.assert_allclose(residual_density(np.array([0.0, 1.0, 3.0])), np.array([1.0, 1.75, 3.25]) / 6, rtol=1e-15)
    np.testing.assert_allclose(residual_density(np.zeros(4)), np.full(4, 0.25))
    # a non-finite residual counts as the largest finite one
    np.testing.assert_allclose(residual_density(np.array([np.nan, 1.0, 3.0])), residual_density(np.array([3.0, 1.0, 3.0])))


def test_rar_d_draws_where_the_residual_is(heat_path):
    """With ε = 1000 on x < 0.1 (a tenth of the candidates) and 0 elsewhere, mean(ε) = 100, so
    p ∝ 11 there and 1 elsewhere: 1.1/2.0 = 55% of the points with replacement, somewhat fewer
    without (the candidates there run out); uniform draws put 10% there. The same seed draws
    the same points."""
    import pdec
    from pdec.runtime.sampling import Sampler

    problem = pdec.compile(heat_path, overrides=["training.sampler=rar-d"])
    training = problem.definition.training
    residual = lambda X: torch.where(X[:, 0] < 0.1, 1000.0, 0.0).to(X)  # noqa: E731
    draws = [Sampler(problem.definition, training, dtype=torch.float64, device="cpu", seed=1).draw(residual) for _ in range(2)]
    X = draws[0]["interior"].X
    share = float((X[:, 0] < 0.1).double().mean())
    assert 0.4 < share < 0.56, share
    torch.testing.assert_close(X, draws[1]["interior"].X, rtol=0, atol=0)
    uniform = Sampler(problem.definition, training, dtype=torch.float64, device="cpu", seed=1).draw()
    assert float((uniform["interior"].X[:, 0] < 0.1).double().mean()) < 0.2


POINT = """
name: pin
domain: {x: [0, 1], y: [0, 1]}
unknowns: [u]
equations:
  - laplacian(u) = 0
conditions:
  - {name: pin, on: x = 0.5 and y = 0.25 or x = 1 and y = 1, impose: u = 2}
  - {on: boundary, impose: dn(u) = 0}
"""


def test_a_condition_at_points(tmp_path):
    """`x = 0.5 and y = 0.25` is a point (inside or on the boundary); a steady condition gets one
    row per point; the pin's residual is u - 2 there."""
    from pdec.runtime.sampling import Sampler

    spec = tmp_path / "pin.yaml"
    spec.write_text(POINT, encoding="utf-8")
    problem = pdec.compile(spec)
    (term,) = problem.definition.terms_of("boundary")[:1]
    assert [s.point for s in term.supports] == [(0.5, 0.25), (1.0, 1.0)]
    batches = Sampler(problem.definition, problem.definition.training, dtype=torch.float64, device="cpu", seed=0).draw()
    torch.testing.assert_close(batches["pin"].X, torch.tensor([[0.5, 0.25], [1.0, 1.0]], dtype=torch.float64))
    values = problem.values(batches["pin"].X)["u"]
    torch.testing.assert_close(problem.residual("pin", batches["pin"].X), values - 2)


@pytest.mark.parametrize(
    "on, impose, message",
    [
        ("x = 2 and y = 0", "u = 0", r"the point \(2, 0\) lies outside the domain"),
        ("x = 0.5 and y = 0.5", "dn(u) = 0", "a condition at a point has none"),
        ("x = 0.5 and y = 0.5 or x = 0", "u = 0", "cannot mix points with faces"),
    ],
)
def test_point_conditions_that_are_refused(tmp_path, on, impose, message):
    from pdec.errors import SpecError

    spec = tmp_path / "pin.yaml"
    spec.write_text(POINT.replace("x = 0.5 and y = 0.25 or x = 1 and y = 1", on).replace("impose: u = 2", f"impose: {impose}"), encoding="utf-8")
    with pytest.raises(SpecError, match=message):
        pdec.compile(spec)
