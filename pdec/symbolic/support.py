"""Where a condition holds (`Support`), and points drawn there for the front end's checks.

NumPy only; the runtime's sampler (`pdec.runtime.sampling`) draws the training
points from the emitted `pdec.contract.Support` instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boundary_parts import sample_parts
from ..geometry import BallGeometry, BoxGeometry, Geometry
from ..lang.numeric import evaluate
from ..lang.scope import symbol
from ..lang.selector import Relation


@dataclass(frozen=True)
class Support:
    """Where one ``and`` clause of a selector lives, and what filters it.

    ``region`` is ``"initial"`` (the slice t = t0), ``"face"`` (the box face
    ``axis`` at ``side`` 0 = low, 1 = high) or ``"boundary"`` (the whole
    spatial boundary); ``relations`` are the remaining conditions a point
    must satisfy (rejection sampling).
    """

    region: str
    axis: int | None = None
    side: int | None = None
    relations: tuple[Relation, ...] = ()
    point: tuple[float, ...] | None = None
    """``"point"`` regions: the spatial coordinates (a pressure pin, a probe)."""


def holds(relation: Relation, env, n: int, constants) -> np.ndarray:
    subs = {symbol(k): v for k, v in constants.items()}
    lhs = evaluate(relation.lhs.xreplace(subs), env, n)
    rhs = evaluate(relation.rhs.xreplace(subs), env, n)
    tol = 1e-9 * (1 + np.abs(rhs))
    return {
        "=": np.abs(lhs - rhs) <= tol,
        "<": lhs < rhs - tol,
        "<=": lhs <= rhs + tol,
        ">": lhs > rhs + tol,
        ">=": lhs >= rhs - tol,
    }[relation.op]


def sample_support(support: Support, variables, time_interval, geometry: Geometry, n: int, rng, constants):
    """Points (with outward normals) of one clause, for checks: ``(X, normals)``.

    Columns follow ``variables`` (time last, over ``time_interval``);
    rejected points are dropped, so fewer than ``n`` may come back. A part of a boundary with
    several pieces (a composite's or a polygon's, or one a filter cuts) is drawn piece by piece
    (`pdec.boundary_parts`): a small part still gets points, so a check there sees it.
    """
    if support.region == "boundary" and (support.relations or not isinstance(geometry, (BoxGeometry, BallGeometry))):
        return _by_piece(support, variables, time_interval, geometry, n, rng, constants)
    if support.region == "face" and support.relations:  # a small part of a face (`x = 0 and y > 0.999`) too
        return _by_piece(support, variables, time_interval, geometry, n, rng, constants, (support.axis, support.side))
    if support.region == "initial":
        space, normals = geometry.sample_interior(n, rng), np.zeros((n, geometry.dim))
        times = np.full((n, 1), time_interval[0])
    elif support.region == "point":
        space, normals = np.tile(np.asarray(support.point), (n, 1)), np.zeros((n, geometry.dim))
        t0, t1 = time_interval or (0.0, 0.0)
        times = t0 + (t1 - t0) * rng.random((n, 1)) if time_interval else None
    else:
        if support.region == "face":
            space, normals = geometry.sample_face(support.axis, support.side, n, rng)
        else:
            space, normals = geometry.sample_boundary(n, rng)
        t0, t1 = time_interval or (0.0, 0.0)
        times = t0 + (t1 - t0) * rng.random((n, 1)) if time_interval else None
    X = np.hstack([space, times]) if times is not None else space
    env = {symbol(v): X[:, i] for i, v in enumerate(variables)}
    keep = np.ones(n, dtype=bool)
    for relation in support.relations:
        keep &= holds(relation, env, n, constants)
    return X[keep], normals[keep]


def _by_piece(support: Support, variables, time_interval, geometry: Geometry, n: int, rng, constants, face=None):
    def accept(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t0, t1 = time_interval or (0.0, 0.0)
        X = np.hstack([points, t0 + (t1 - t0) * rng.random((len(points), 1))]) if time_interval else points
        env = {symbol(v): X[:, i] for i, v in enumerate(variables)}
        keep = np.ones(len(X), dtype=bool)
        for relation in support.relations:
            keep &= holds(relation, env, len(X), constants)
        return X, keep

    parts = sample_parts(geometry, n, rng, accept, face)
    if not parts:
        return np.empty((0, len(variables))), np.empty((0, geometry.dim))
    return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])
