"""Parts of a domain's boundary drawn piece by piece, for the front end's checks and exact conditions.

A selector such as ``x = 0 and y > 0.99`` or a tiny hole picks a part that is a small share of
the whole boundary: a uniform draw over all of it gives that part few points or none, and a
check there (or an exact condition's distance function) silently missed it. Here every smooth
piece of the boundary (a box face, a polygon edge, a sphere, a plane) is drawn on its own, so
a part gets its share of its own surface. The runtime samples uniformly (`pdec.geometry`).
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from .geometry import BoxGeometry, CSGGeometry, Geometry, PolygonGeometry, draw_until

PART_BUDGET = 200_000
"""Candidates `sample_parts` draws at most over all pieces (at least 20 per point asked of each)."""


def _pieces(shape) -> list[tuple[float, object]]:
    """The smooth pieces of a primitive's boundary, each ``(measure, draw)`` with ``draw(n, rng)``
    uniform points of it and their outward normals: a box's faces, a polygon's edges, a sphere,
    a plane within the composite's box."""
    if isinstance(shape, BoxGeometry):
        m = shape.face_measures()
        return [(float(m[a]), partial(shape.sample_face, a, s)) for a in range(shape.dim) for s in (0, 1)]
    if isinstance(shape, PolygonGeometry):
        return [(float(np.linalg.norm(e)), partial(_edge, a, e)) for a, e in zip(*shape.edges)]
    return [(shape.boundary_measure(), shape.sample_boundary)]


def _edge(start: np.ndarray, e: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points of a counter-clockwise polygon edge and its outward normal (to the right)."""
    return start + rng.random((n, 1)) * e, np.tile([e[1] / np.linalg.norm(e), -e[0] / np.linalg.norm(e)], (n, 1))


def sample_parts(geometry: Geometry, n: int, rng: np.random.Generator, accept=None, face: tuple[int, int] | None = None, budget: int = PART_BUDGET) -> list[tuple]:
    """Points of a part of the boundary, drawn piece by piece: for each smooth piece (`_pieces`
    of every primitive, or of a composite's leaves with its `_keep`; only the box face ``face`` =
    ``(axis, side)`` when given) about ``n / pieces`` (at least 4) of its points on the boundary
    that ``accept`` keeps, ``(X, normals, measure, error)``: the points (as ``accept`` extended
    them), the part's measure on the piece (the piece's times the share kept) and its standard error.

    Why piece by piece: a part that is a small share of the whole boundary (a tiny hole, the top
    1% of an inner edge) gets few or no points of a draw over all of it, and a condition there
    was dropped unseen; drawn on its own surface it gets its share of that surface. A piece gives
    up after ``max(budget / pieces, 20 × its points)`` candidates: a part smaller than about one
    of them is of measure zero in practice. ``accept(points) -> (X, mask)``: the candidates with
    any columns added (a time) and which of them belong to the part (None: all)."""
    composite = isinstance(geometry, CSGGeometry)
    leaves = geometry.leaves if composite else (geometry,)
    pieces = [(i, m, draw) for i, leaf in enumerate(leaves) for m, draw in _pieces(leaf) if m > 0]
    if face is not None:
        pieces = [(0, float(geometry.face_measures()[face[0]]), partial(geometry.sample_face, *face))]
    k = max(-(-n // max(len(pieces), 1)), 4)
    out = []
    for i, measure, draw in pieces:

        def candidates(batch: int, i=i, draw=draw) -> tuple[np.ndarray, np.ndarray]:
            P, N = draw(batch, rng)
            P, N = geometry._keep(i, P, N) if composite else (P, N)
            X, mask = accept(P) if accept is not None else (P, np.ones(len(P), bool))
            return X[mask], N[mask]

        counts = [0, 0]
        X, N = draw_until(k, candidates, limit=max(budget // len(pieces), 20 * k), counts=counts)
        f = counts[0] / counts[1]
        out.append((X, N, measure * f, measure * math.sqrt(f * (1 - f) / counts[1])))
    return out
