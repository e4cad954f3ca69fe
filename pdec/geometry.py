"""Domains and where to draw points from them (NumPy only).

One implementation serves the front end's checks and the solver's samplers.
Every shape answers the same questions: its bounding box, a signed function
(negative inside, zero on the boundary, positive outside), its measure and its
boundary's, and uniform points inside and on the boundary, the latter with
outward unit normals. Boxes, balls and polygons do this exactly; composite
(CSG) domains by rejection against their operands (`CSGGeometry`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from pdec.contract import BallDomain, BoxDomain, CSGDomain, Domain, HalfspaceDomain, PolygonDomain
from pdec.errors import PdecError

ESTIMATE_SAMPLES = 200_000
"""Monte Carlo samples behind a composite domain's measures (fixed seed: the same every run)."""
ESTIMATE_SEED = 20240229
OFFSET = 1e-8
"""A boundary candidate is tested at ``p ± OFFSET·diameter·n``."""
ON_SURFACE = 1e-10
"""Relative distance within which a point lies on a surface."""
MAX_ROUNDS = 1000
CHUNK = 4_000_000
"""Point–edge pairs a polygon's signed distance handles at once (memory)."""


class GeometryError(PdecError, ValueError):
    """A domain with no interior, boundary or bounds: the user's, so a `PdecError` (exit 2, no traceback)."""


@dataclass(frozen=True)
class BoxGeometry:
    lo: np.ndarray
    hi: np.ndarray

    @property
    def dim(self) -> int:
        return len(self.lo)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.lo, self.hi

    def signed(self, X: np.ndarray) -> np.ndarray:
        """The exact signed distance."""
        q = np.abs(X - (self.lo + self.hi) / 2) - (self.hi - self.lo) / 2
        return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)

    def volume(self) -> float:
        return float(np.prod(self.hi - self.lo))

    def boundary_measure(self) -> float:
        return float(2 * self.face_measures().sum())

    def sample_interior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.lo + (self.hi - self.lo) * rng.random((n, self.dim))

    def face_measures(self) -> np.ndarray:
        """Measure of the face x_i = lo_i (and of x_i = hi_i), per axis."""
        widths = self.hi - self.lo
        if self.dim == 1:
            return np.ones(1)
        return np.array([np.prod(np.delete(widths, i)) for i in range(self.dim)])

    def sample_face(self, axis: int, side: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        points = self.sample_interior(n, rng)
        points[:, axis] = self.hi[axis] if side else self.lo[axis]
        normals = np.zeros_like(points)
        normals[:, axis] = 1.0 if side else -1.0
        return points, normals

    def sample_boundary(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        measures = np.repeat(self.face_measures(), 2)  # (axis 0 lo, axis 0 hi, axis 1 lo, ...)
        faces = rng.choice(len(measures), size=n, p=measures / measures.sum())
        points = self.sample_interior(n, rng)
        normals = np.zeros_like(points)
        axis, side = faces // 2, faces % 2
        rows = np.arange(n)
        points[rows, axis] = np.where(side == 1, self.hi[axis], self.lo[axis])
        normals[rows, axis] = np.where(side == 1, 1.0, -1.0)
        return points, normals


@dataclass(frozen=True)
class BallGeometry:
    center: np.ndarray
    radius: float

    @property
    def dim(self) -> int:
        return len(self.center)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.center - self.radius, self.center + self.radius

    def signed(self, X: np.ndarray) -> np.ndarray:
        return np.linalg.norm(X - self.center, axis=1) - self.radius

    def volume(self) -> float:
        return float(np.pi ** (self.dim / 2) / math.gamma(self.dim / 2 + 1) * self.radius**self.dim)

    def boundary_measure(self) -> float:
        return float(2 * np.pi ** (self.dim / 2) / math.gamma(self.dim / 2) * self.radius ** (self.dim - 1))

    def sample_interior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        directions = _unit(rng.standard_normal((n, self.dim)))
        radii = self.radius * rng.random(n) ** (1.0 / self.dim)
        return self.center + directions * radii[:, None]

    def sample_boundary(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        normals = _unit(rng.standard_normal((n, self.dim)))
        return self.center + self.radius * normals, normals


@dataclass(frozen=True)
class PolygonGeometry:
    """A simple polygon; ``vertices`` counter-clockwise (`polygon_geometry` orders them)."""

    vertices: np.ndarray

    dim = 2

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.vertices.min(axis=0), self.vertices.max(axis=0)

    @property
    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Each edge's start and its vector."""
        return self.vertices, np.roll(self.vertices, -1, axis=0) - self.vertices

    def signed(self, X: np.ndarray) -> np.ndarray:
        """The exact signed distance: to the nearest edge, negative where the crossing number is odd."""
        step = max(CHUNK // len(self.vertices), 1)
        if len(X) > step:
            return np.concatenate([self.signed(X[i : i + step]) for i in range(0, len(X), step)])
        start, e = self.edges
        w = X[:, None, :] - start[None]  # [N, m, 2]
        t = np.clip((w * e).sum(-1) / (e * e).sum(-1), 0.0, 1.0)
        distance = np.linalg.norm(w - t[..., None] * e, axis=-1).min(axis=1)
        y0, y1 = start[:, 1], start[:, 1] + e[:, 1]
        straddles = (y0[None] > X[:, 1:2]) != (y1[None] > X[:, 1:2])
        with np.errstate(divide="ignore", invalid="ignore"):
            cross_x = start[:, 0][None] + e[:, 0][None] * (X[:, 1:2] - y0[None]) / e[:, 1][None]
        inside = (straddles & (X[:, 0:1] < cross_x)).sum(axis=1) % 2 == 1
        return np.where(inside, -distance, distance)

    def volume(self) -> float:
        return abs(signed_area(self.vertices))

    def boundary_measure(self) -> float:
        return float(np.linalg.norm(self.edges[1], axis=1).sum())

    def sample_interior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return _reject(self, n, rng)

    def sample_boundary(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        start, e = self.edges
        lengths = np.linalg.norm(e, axis=1)
        which = rng.choice(len(e), size=n, p=lengths / lengths.sum())
        points = start[which] + rng.random((n, 1)) * e[which]
        normals = np.stack([e[which, 1], -e[which, 0]], axis=1) / lengths[which, None]  # right of a CCW edge
        return points, normals


@dataclass(frozen=True)
class HalfspaceGeometry:
    """``{x : normal·x ≤ offset}`` with a unit ``normal``: only an operand of a bounded composite."""

    normal: np.ndarray
    offset: float

    @property
    def dim(self) -> int:
        return len(self.normal)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.full(self.dim, -np.inf), np.full(self.dim, np.inf)

    def signed(self, X: np.ndarray) -> np.ndarray:
        return X @ self.normal - self.offset


@dataclass(frozen=True)
class _PlaneInBox:
    """A halfspace's boundary plane inside a box: what of it a bounded composite can use.

    Uniform on the plane by sampling the coordinates other than the normal's
    largest one uniformly in the box and solving for that one (a linear map
    with a constant Jacobian), keeping the points inside the box."""

    plane: HalfspaceGeometry
    lo: np.ndarray
    hi: np.ndarray

    def signed(self, X: np.ndarray) -> np.ndarray:
        return self.plane.signed(X)

    def _candidates(self, n: int, rng: np.random.Generator) -> np.ndarray:
        X = plane_points(self.plane.normal, self.plane.offset, self.lo, self.hi, n, rng)
        return X[np.all((X >= self.lo - 1e-12) & (X <= self.hi + 1e-12), axis=1)]

    @cached_property
    def _measure(self) -> float:
        k = int(np.argmax(np.abs(self.plane.normal)))
        widths = np.delete(self.hi - self.lo, k)
        kept = len(self._candidates(ESTIMATE_SAMPLES, np.random.default_rng(ESTIMATE_SEED))) / ESTIMATE_SAMPLES
        return float(np.prod(widths) * kept / abs(self.plane.normal[k]))

    def boundary_measure(self) -> float:
        return self._measure

    def sample_boundary(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        points = draw_until(n, lambda batch: (self._candidates(batch, rng),), MAX_ROUNDS if self._measure > 0 else 0)[0]
        if len(points) < n:  # the plane misses the box: it has no boundary to give
            return np.empty((0, len(self.lo))), np.empty((0, len(self.lo)))
        return points, np.tile(self.plane.normal, (n, 1))


def plane_points(normal: np.ndarray, offset: float, lo: np.ndarray, hi: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform points of the plane ``normal·x = offset``, the other coordinates in the box (some leave it)."""
    k = int(np.argmax(np.abs(normal)))
    X = lo + (hi - lo) * rng.random((n, len(lo)))
    rest = np.delete(np.arange(len(lo)), k)
    X[:, k] = (offset - X[:, rest] @ normal[rest]) / normal[k]
    return X


@dataclass(frozen=True, eq=False)
class CSGGeometry:
    """``union``, ``intersection`` or ``difference`` (the first minus the rest) of operands.

    Signed function: min / max / max(s₀, −s₁, …) of the operands' (its sign is exact, its
    magnitude a distance only approximately). Interior points: rejection from the bounding box.
    Boundary points: each leaf (primitive) surface sampled in proportion to its measure, and a
    point ``p`` with the leaf's normal ``n`` kept when stepping ``±δn`` (δ = 1e-8 × diameter)
    crosses the composite's boundary, with the normal flipped where the leaf's outside is the
    composite's inside (a hole's surface points into the hole); where two leaves share a surface
    the earlier leaf's point is kept. So the distribution is uniform on the composite boundary, and
    each point's normal is the normal of the one surface it was drawn from, also within δ of a
    corner (a set of measure zero where the sign test may drop the point)."""

    op: str
    operands: tuple
    leaves: tuple = field(init=False)
    bounds: tuple = field(init=False)

    def __post_init__(self) -> None:
        lows, highs = zip(*(o.bounds for o in self.operands))
        if self.op == "union":
            lo, hi = np.min(lows, axis=0), np.max(highs, axis=0)
        elif self.op == "intersection":
            lo, hi = np.max(lows, axis=0), np.min(highs, axis=0)
        else:
            lo, hi = lows[0], highs[0]
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise GeometryError("the domain is unbounded: intersect a halfspace with a bounded shape")
        if np.any(hi <= lo):
            raise GeometryError("the domain is empty: its operands do not overlap")
        object.__setattr__(self, "bounds", (lo, hi))
        object.__setattr__(self, "leaves", tuple(_PlaneInBox(o, lo, hi) if isinstance(o, HalfspaceGeometry) else o for o in _leaves(self)))

    @property
    def dim(self) -> int:
        return self.operands[0].dim

    @property
    def diameter(self) -> float:
        return float(np.linalg.norm(self.bounds[1] - self.bounds[0]))

    def signed(self, X: np.ndarray) -> np.ndarray:
        values = [o.signed(X) for o in self.operands]
        if self.op == "union":
            return np.min(values, axis=0)
        if self.op == "intersection":
            return np.max(values, axis=0)
        return np.max([values[0]] + [-v for v in values[1:]], axis=0)

    def volume(self) -> float:
        return self.volume_estimate[0]

    @cached_property
    def volume_estimate(self) -> tuple[float, float]:
        """The measure and its standard error (Monte Carlo in the bounding box)."""
        lo, hi = self.bounds
        X = lo + (hi - lo) * np.random.default_rng(ESTIMATE_SEED).random((ESTIMATE_SAMPLES, self.dim))
        f = float(np.mean(self.signed(X) < 0))
        box = float(np.prod(hi - lo))
        return box * f, box * math.sqrt(f * (1 - f) / ESTIMATE_SAMPLES)

    def boundary_measure(self) -> float:
        return self.boundary_estimate[0]

    @cached_property
    def boundary_estimate(self) -> tuple[float, float]:
        """The boundary's measure and its standard error: Σ leaf measure × fraction kept."""
        rng = np.random.default_rng(ESTIMATE_SEED)
        total = variance = 0.0
        n = ESTIMATE_SAMPLES // max(len(self.leaves), 1)
        for i, leaf in enumerate(self.leaves):
            m = leaf.boundary_measure()
            if m == 0:
                continue
            f = len(self._keep(i, *leaf.sample_boundary(n, rng))[0]) / n
            total += m * f
            variance += m * m * f * (1 - f) / n
        return total, math.sqrt(variance)

    def _keep(self, i: int, points: np.ndarray, normals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Of points on leaf ``i`` with its normals: those on the composite boundary, outward normals."""
        step = OFFSET * self.diameter * normals
        behind, ahead = self.signed(points - step) < 0, self.signed(points + step) < 0
        keep = (behind != ahead) & (np.abs(self.signed(points)) <= ON_SURFACE * self.diameter)  # not a hidden surface δ away
        for earlier in self.leaves[:i]:
            keep &= np.abs(earlier.signed(points)) > ON_SURFACE * self.diameter
        return points[keep], np.where(behind[keep, None], normals[keep], -normals[keep])

    def sample_interior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return _reject(self, n, rng)

    def sample_boundary(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        measures = np.array([leaf.boundary_measure() for leaf in self.leaves])

        def draw(batch: int) -> tuple[np.ndarray, np.ndarray]:
            which = rng.choice(len(self.leaves), size=batch, p=measures / measures.sum())
            kept = [self._keep(i, *leaf.sample_boundary(int(np.sum(which == i)), rng)) for i, leaf in enumerate(self.leaves) if np.any(which == i)]
            kept = kept or [(np.empty((0, self.dim)),) * 2]
            return np.vstack([p for p, _ in kept]), np.vstack([q for _, q in kept])

        points, normals = draw_until(n, draw, exact=False)
        if len(points) < n:
            raise GeometryError("the domain has (almost) no boundary")
        order = rng.permutation(len(points))[:n]  # leaves were drawn in turn: mix them
        return points[order], normals[order]


Geometry = BoxGeometry | BallGeometry | PolygonGeometry | HalfspaceGeometry | CSGGeometry


def contains(geometry: Geometry, X: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """Whether each point lies in the closed domain (within ``tol`` × its diameter).

    A composite's signed function is zero also where operands touch outside the domain (the
    edge two boxes share beside a removed quadrant); so a point on its zero set counts only when
    some point a step away (along an axis or a diagonal, up to 3 dimensions) is strictly inside:
    the closure of the interior."""
    lo, hi = geometry.bounds
    scale = max(float(np.linalg.norm(hi - lo)), 1.0)
    s = geometry.signed(X)
    inside = s <= tol * scale
    if not isinstance(geometry, CSGGeometry):
        return inside
    edge = np.flatnonzero(inside & (s > -tol * scale))
    if len(edge):
        d = X.shape[1]
        steps = np.array(np.meshgrid(*[[-1, 0, 1]] * d, indexing="ij")).reshape(d, -1).T if d <= 3 else np.vstack([np.eye(d), -np.eye(d)])
        steps = steps[np.any(steps != 0, axis=1)] * (1e3 * max(tol, 1e-12) * scale)
        near = X[edge][:, None, :] + steps[None]
        interior = geometry.signed(near.reshape(-1, d)).reshape(len(edge), -1) < 0
        inside[edge] = interior.any(axis=1)
    return inside


def _reject(geometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform points of the domain by rejection from its bounding box."""
    lo, hi = geometry.bounds

    def draw(batch: int) -> tuple[np.ndarray]:
        X = lo + (hi - lo) * rng.random((batch, len(lo)))
        return (X[geometry.signed(X) < 0],)

    (points,) = draw_until(n, draw)
    if len(points) < n:
        raise GeometryError("the domain has (almost) no interior")
    return points


def draw_until(n: int, draw, rounds: int = MAX_ROUNDS, limit: float = math.inf, exact: bool = True, counts: list | None = None):
    """Rejection sampling, the one loop: ``draw(batch)`` gives the accepted rows (a tuple of arrays) of
    ``batch`` candidates, in `next_batch` sizes until ``n`` rows, ``rounds`` rounds or ``limit``
    candidates; stacked (the first ``n`` rows when ``exact``). ``counts`` gets [accepted, drawn]."""
    parts, have, drawn = [], 0, 0
    for _ in range(rounds):
        if have >= n or drawn >= limit:
            break
        batch = int(min(next_batch(n - have, have, drawn), limit - drawn))
        parts.append(draw(batch))
        have, drawn = have + len(parts[-1][0]), drawn + batch
    if counts is not None:
        counts[:] = [have, drawn]
    parts = parts or [draw(0)]  # nothing drawn: empty arrays of the right shapes
    return tuple(np.vstack(arrays)[:n] if exact else np.vstack(arrays) for arrays in zip(*parts))


def next_batch(missing: int, have: int, drawn: int) -> int:
    """How many candidates to draw for ``missing`` more points by rejection: twice as many at
    first, then enough at the acceptance rate seen so far (at least 1e-6), at most 10⁶ at once."""
    if not drawn:
        return 2 * missing + 64
    rate = max(have / drawn, 1e-6)
    return int(min(1.2 * missing / rate + 64, 1_000_000))


def _leaves(g) -> list:
    return [leaf for o in g.operands for leaf in _leaves(o)] if isinstance(g, CSGGeometry) else [g]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def signed_area(vertices) -> float:
    """The shoelace formula: the polygon's area, positive when its vertices run counter-clockwise."""
    x, y = np.asarray(vertices, dtype=float).T
    return float(0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))


def polygon_geometry(vertices) -> PolygonGeometry:
    """The polygon with its vertices in counter-clockwise order."""
    v = np.asarray(vertices, dtype=float)
    return PolygonGeometry(v[::-1].copy() if signed_area(v) < 0 else v)


@lru_cache(maxsize=64)
def geometry_of(domain: Domain) -> Geometry:
    """The sampler of a contract domain; one per domain (a composite's Monte Carlo measures are
    estimated once), so never change the arrays of what it returns."""
    if isinstance(domain, BallDomain):
        return BallGeometry(np.asarray(domain.center, dtype=float), float(domain.radius))
    if isinstance(domain, BoxDomain):
        return BoxGeometry(np.asarray(domain.lo, dtype=float), np.asarray(domain.hi, dtype=float))
    if isinstance(domain, PolygonDomain):
        return polygon_geometry(domain.vertices)
    if isinstance(domain, HalfspaceDomain):
        normal = np.asarray(domain.normal, dtype=float)
        scale = float(np.linalg.norm(normal))
        return HalfspaceGeometry(normal / scale, float(domain.offset) / scale)
    if isinstance(domain, CSGDomain):
        return CSGGeometry(domain.op, tuple(geometry_of(o) for o in domain.operands))
    raise TypeError(f"not a domain: {domain!r}")
