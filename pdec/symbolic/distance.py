"""Distance functions for exact conditions on composite domains (`hard: true`).

An exact condition writes the unknown as ``u = G + φ·N`` with ``φ`` zero on
the constrained part of the boundary and positive inside the domain. On a
box or a ball ``φ`` is a product of face distances (`pdec.symbolic.hard`); on
a composite (CSG) domain or a polygon it is built here from the surfaces the
constrained points lie on (Sukumar & Srivastava 2022, CMAME 389, "Exact
imposition of boundary conditions with distance functions in PINNs"):

- every operand contributes surfaces: a box its faces, a ball its sphere, a
  polygon its edges, a halfspace its plane, each with a first-order normalized
  function ``f`` (``|∇f| = 1`` on it): ``x − lo``, ``(R² − |x − c|²)/(2R)``,
  the signed distance to an edge's line;
- a surface whose (infinite) extension stays out of the domain's interior gives
  ``φ_s = ±f``, signed to be positive inside;
- a straight piece in the plane whose line cuts through the domain (the inner
  edges of an L) gives the trimmed distance of the segment,
  ``φ_s = √(f² + ((√(t² + f⁴) − t)/2)²)`` with ``t = ((L/2)² − |x − x_c|²)/L``
  (Sukumar & Srivastava eq. 23), zero on the segment only;
- ``φ = Π φ_s``: zero on every constrained surface, positive elsewhere inside.

Then the checks that make this safe: ``φ > 0`` at sampled interior points and
on the unconstrained boundary, no trimmed segment reaching into the interior.
Anything else (a curved or 3-d surface that would need trimming) is refused
with the reason. ``G`` with different data on different parts is the
transfinite interpolation ``G = Σ gᵢ Π_{j≠i} φⱼ / Σ_k Π_{j≠k} φⱼ`` (ibid. eq. 34),
which equals ``gᵢ`` on part ``i``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from ..contract import BallDomain, BoxDomain, CSGDomain, Domain, HalfspaceDomain, PolygonDomain
from ..geometry import geometry_of, plane_points, polygon_geometry
from ..lang.numeric import evaluate

TOLERANCE = 1e-9
"""On a surface: ``|f| ≤ TOLERANCE × diameter``."""
PROBE_POINTS = 4096


class DistanceError(ValueError):
    """Why no distance function vanishes exactly on the constrained part."""


@dataclass(frozen=True)
class Surface:
    """One operand's boundary piece: ``f`` (SymPy, zero on it), where it ends, and its segment
    (endpoints) when it is straight and bounded in the plane."""

    f: sympy.Expr
    on: object  # X -> mask: points of the piece itself (not its extension)
    extension: object  # (n, rng) -> points of the zero set of f in the bounding box
    segment: tuple[np.ndarray, np.ndarray] | None = None


def surfaces(domain: Domain, x: tuple[sympy.Symbol, ...], bounds) -> list[Surface]:
    """Every surface of every operand of ``domain``."""
    if isinstance(domain, CSGDomain):
        return [s for o in domain.operands for s in surfaces(o, x, bounds)]
    if isinstance(domain, BoxDomain):
        return [_box_face(domain, axis, side, x, bounds) for axis in range(len(x)) for side in (0, 1)]
    if isinstance(domain, BallDomain):
        c, R = np.asarray(domain.center, float), float(domain.radius)
        f = (_num(R) ** 2 - sum((xi - _num(ci)) ** 2 for xi, ci in zip(x, c))) / (2 * _num(R))

        def sphere(n, rng):
            v = rng.standard_normal((n, len(c)))
            return c + R * v / np.linalg.norm(v, axis=1, keepdims=True)

        return [Surface(f, lambda X: np.ones(len(X), bool), sphere)]
    if isinstance(domain, PolygonDomain):
        v = polygon_geometry(domain.vertices).vertices
        return [_segment(v[i], v[(i + 1) % len(v)], x, bounds) for i in range(len(v))]
    if isinstance(domain, HalfspaceDomain):
        normal = np.asarray(domain.normal, float)
        scale = float(np.linalg.norm(normal))
        normal, offset = normal / scale, float(domain.offset) / scale
        f = _num(offset) - sum(_num(ni) * xi for ni, xi in zip(normal, x))
        return [Surface(f, lambda X: np.ones(len(X), bool), lambda n, rng: plane_points(normal, offset, *bounds, n, rng))]
    raise TypeError(f"not a domain: {domain!r}")


def _box_face(box: BoxDomain, axis: int, side: int, x, bounds) -> Surface:
    lo, hi = np.asarray(box.lo, float), np.asarray(box.hi, float)
    end = (lo, hi)[side][axis]
    f = (x[axis] - _num(end)) if side == 0 else (_num(end) - x[axis])
    others = [i for i in range(len(lo)) if i != axis]
    slack = TOLERANCE * (1 + float(np.abs(hi - lo).max()))

    def on(X):
        return np.all((X[:, others] >= lo[others] - slack) & (X[:, others] <= hi[others] + slack), axis=1)

    def extension(n, rng):  # the face's plane, within the domain's bounding box
        P = bounds[0] + (bounds[1] - bounds[0]) * rng.random((n, len(lo)))
        P[:, axis] = end
        return P

    segment = None
    if len(lo) == 2:
        a, b = lo.copy(), hi.copy()
        a[axis] = b[axis] = end
        segment = (a, b)
    return Surface(f, on, extension, segment)


def _segment(a: np.ndarray, b: np.ndarray, x, bounds) -> Surface:
    e = b - a
    L = float(np.linalg.norm(e))
    f = (_num(e[0]) * (x[1] - _num(a[1])) - _num(e[1]) * (x[0] - _num(a[0]))) / _num(L)  # left of a→b: inside (CCW)

    def on(X):
        t = (X - a) @ e / (L * L)
        return (t >= -TOLERANCE) & (t <= 1 + TOLERANCE)

    def extension(n, rng):
        lo, hi = bounds
        span = float(np.linalg.norm(hi - lo))
        return a + (rng.random((n, 1)) * 2 - 0.5) * e * max(span / L, 1.0) * 2

    return Surface(f, on, extension, (a, b))


def _trimmed(segment, x) -> sympy.Expr:
    """Sukumar & Srivastava's trimmed distance to a segment: zero on it, positive elsewhere."""
    a, b = segment
    e, center = b - a, (a + b) / 2
    L = float(np.linalg.norm(e))
    f = (_num(e[0]) * (x[1] - _num(a[1])) - _num(e[1]) * (x[0] - _num(a[0]))) / _num(L)
    t = (_num((L / 2) ** 2) - (x[0] - _num(center[0])) ** 2 - (x[1] - _num(center[1])) ** 2) / _num(L)
    return sympy.sqrt(f**2 + ((sympy.sqrt(t**2 + f**4) - t) / 2) ** 2)


def _num(value: float) -> sympy.Expr:
    """A short decimal as the rational it spells (0.2 → 1/5, as the user wrote it), else a float."""
    value = float(value)
    text = repr(value)
    return sympy.Rational(text) if len(text) <= 8 else sympy.Float(value, 17)


def constrained_distance(domain: Domain, x: tuple[sympy.Symbol, ...], parts: list[tuple[np.ndarray, np.ndarray]]) -> list[dict[sympy.Expr, np.ndarray]]:
    """The surfaces of each constrained part: their distance functions ``φ_s`` (their product is
    the part's ``φ``), each with a point of the part on it. ``parts`` holds each part's sampled points and outward normals,
    drawn piece by piece (`pdec.boundary_parts`) so that a small piece has its points. A surface
    counts with at least two points on it (one is a corner another surface crosses); a point on no
    counted surface raises `DistanceError` with the reason, never a silently dropped condition."""
    geometry = geometry_of(domain)
    lo, hi = geometry.bounds
    scale = float(np.linalg.norm(hi - lo))
    tol = TOLERANCE * scale
    every = surfaces(domain, x, (lo, hi))
    rng = np.random.default_rng(0)
    result, made = [], {}
    for points, normals in parts:
        if len(points) < 2:
            raise DistanceError(
                f"only {len(points)} point{'s' * (len(points) != 1)} of the constrained part could be drawn: "
                "it is too small (of measure zero in practice)"
            )
        factors: dict[sympy.Expr, np.ndarray] = {}
        lying, touched = np.zeros(len(points), bool), np.zeros(len(points), bool)
        for k, s in enumerate(every):
            values = evaluate(s.f, {xi: points[:, i] for i, xi in enumerate(x)}, len(points))
            hit = (np.abs(values) <= tol) & s.on(points)
            touched |= hit
            if hit.sum() < 2:  # not this surface (or where a part crosses it)
                continue
            lying |= hit
            if k not in made:
                made[k] = _oriented(s, points[hit], normals[hit], geometry, x, tol, rng)
            factors.setdefault(made[k], points[hit][0])  # two operands may share a surface
        if not lying.all():
            i = int(np.argmin(lying))
            at = ", ".join(f"{v:.3g}" for v in points[i])
            raise DistanceError(
                f"the constrained points near ({at}) lie on no operand's surface"
                if not touched[i]
                else f"the constrained part near ({at}) has too few points on its surface to be found (of measure zero in practice)"
            )
        result.append(factors)
    return result


def _oriented(s: Surface, points, normals, geometry, x, tol: float, rng) -> sympy.Expr:
    """``±f`` (positive inside), or the trimmed segment distance when ``f``'s zero set cuts into
    the domain; `DistanceError` when neither serves."""
    lo, hi = geometry.bounds
    scale = float(np.linalg.norm(hi - lo))
    inward = points - 1e-6 * scale * normals
    sign = np.sign(evaluate(s.f, {xi: inward[:, i] for i, xi in enumerate(x)}, len(inward)).mean())
    probe = s.extension(PROBE_POINTS, rng)
    probe = probe[np.all((probe >= lo) & (probe <= hi), axis=1)]
    cuts = probe[_interior(geometry, probe, 1e3 * tol)]
    if len(cuts) == 0:
        return s.f if sign > 0 else -s.f
    if s.segment is None:
        at = ", ".join(f"{v:.3g}" for v in cuts[0])
        raise DistanceError(
            f"the surface through ({', '.join(f'{v:.3g}' for v in points[0])}) continues through the domain's "
            f"interior (at ({at})); exact conditions need straight edges in the plane there (the distance to a "
            "curved or 3-d piece cannot be trimmed)"
        )
    a, b = s.segment
    along = a + np.linspace(0, 1, 257)[:, None] * (b - a)
    if _interior(geometry, along, 1e3 * tol).any():
        raise DistanceError(
            f"the edge from ({a[0]:.3g}, {a[1]:.3g}) to ({b[0]:.3g}, {b[1]:.3g}) runs through the domain's interior"
        )
    return _trimmed(s.segment, x)


def _interior(geometry, X: np.ndarray, step: float) -> np.ndarray:
    """Points with every diagonal neighbour ``X ± step`` (all sign patterns) strictly inside: interior
    points, also where two operands' faces meet inside the domain (the signed function is zero there)."""
    d = X.shape[1]
    signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * d, indexing="ij")).reshape(d, -1).T
    near = (X[:, None, :] + step * signs[None]).reshape(-1, d)
    return (geometry.signed(near) < 0).reshape(len(X), -1).all(axis=1)


def check_positive(phi: sympy.Expr, domain: Domain, x, free: np.ndarray) -> None:
    """``φ > 0`` inside (at sampled points) and at the points ``free`` of the unconstrained boundary;
    `DistanceError` naming a point where it vanishes."""
    geometry = geometry_of(domain)
    rng = np.random.default_rng(1)
    inside = geometry.sample_interior(PROBE_POINTS, rng)
    lo, hi = geometry.bounds
    scale = float(np.linalg.norm(hi - lo))
    inside = inside[geometry.signed(inside) < -1e-3 * scale]  # off the boundary
    typical = None
    for where, X in [("inside the domain", inside), ("on the boundary where no exact condition holds", free)]:
        if len(X) == 0:
            continue
        values = evaluate(phi, {xi: X[:, i] for i, xi in enumerate(x)}, len(X))
        typical = typical or float(np.median(np.abs(values)))
        bad = ~(values > 1e-9 * typical)  # on a constrained surface it is zero to rounding
        if bad.any():
            at = ", ".join(f"{v:.3g}" for v in X[int(np.argmax(bad))])
            raise DistanceError(f"the distance function is not positive at ({at}), {where}")
