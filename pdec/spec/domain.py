"""The `domain` section: boxes, cubes, balls, polygons, halfspaces and their CSG combinations.

Every shape form is read by one method; a composite (`union`, `intersection`,
`difference`) reads its operands recursively and puts their coordinates in the
order of its first operand's variables, so later stages index one order.
"""

from __future__ import annotations

import numpy as np

from ..errors import Loc, SpecError
from ..geometry import signed_area
from .schema import Ball, Box, Composite, Domain, Halfspace, Polygon
from .values import ValueReader
from .yamlnodes import YMap, YNode

MAX_DIM = 10_000
MAX_VERTICES = 1000
SHAPES = ("box", "ball", "cube", "polygon", "union", "intersection", "difference")
OPERAND_SHAPES = (*SHAPES, "halfspace")
COMPOSITES = ("union", "intersection", "difference")

_LONG_FORM_KEYS = {"variables": "box", "bounds": "box", "center": "ball", "radius": "ball", "dim": "cube", "variable": "cube", "range": "cube", "vertices": "polygon", "of": "union", "normal": "halfspace", "offset": "halfspace"}  # fmt: skip
"""Keys of the `domain` forms with a `shape:`, each with the shape it belongs to."""


class DomainReader(ValueReader):
    """Reads the `domain` section."""

    def domain(self, node: YNode, what: str = "domain", depth: int = 0) -> Domain:
        if isinstance(node, YMap) and "shape" in node.entries:
            options = OPERAND_SHAPES if depth else SHAPES
            if depth == 0 and getattr(node.entries["shape"], "text", None) == "halfspace":
                raise SpecError(
                    "a halfspace alone is unbounded: use it as an operand of `intersection` or `difference`",
                    node.entries["shape"].loc,
                )
            shape = self.choice(node.entries["shape"], f"{what}.shape", options)
            if shape in COMPOSITES:
                return self.composite(node, shape, what, depth)
            read = {"ball": self.ball, "cube": self.cube, "polygon": self.polygon, "halfspace": self.halfspace}.get(shape)
            if read is not None:
                return read(node, what)
            if "variables" in node.entries or "bounds" in node.entries:
                return self.long_box(node, what)
        if not isinstance(node, YMap) or not node.entries:
            raise SpecError(f"`{what}` must map each spatial variable to an interval, e.g. `x: [0, 1]`", node.loc)
        names, bounds = [], []
        for key, value in node.entries.items():
            if key == "shape":
                continue
            if key in _LONG_FORM_KEYS:  # without `shape:` each key is a variable: `radius` would become one
                raise SpecError(
                    f"`{key}` belongs to `shape: {_LONG_FORM_KEYS[key]}`; without `shape:` every key of `{what}` is a "
                    "variable with its interval (`x: [0, 1]`)",
                    node.key_locs[key],
                )
            self.check_name(key, "variable", node.key_locs[key])
            names.append(key)
            bounds.append(self.interval(value, f"{what}.{key}"))
        if not names:
            raise SpecError(f"`{what}` needs one interval per variable, e.g. `x: [0, 1]`", node.loc)
        return Box(tuple(names), tuple(bounds), loc=node.loc)

    def long_box(self, node: YMap, what: str) -> Box:
        node = self.mapping(node, what, ("shape", "variables", "bounds"), required=("variables", "bounds"))
        names = self._variables(node.entries["variables"], what)
        bounds = self.sequence(node.entries["bounds"], f"{what}.bounds")
        if len(bounds) != len(names):
            raise SpecError(f"`{what}.bounds` needs one interval per variable ({len(names)})", node.entries["bounds"].loc)
        return Box(tuple(names), tuple(self.interval(b, f"{what}.bounds") for b in bounds), loc=node.loc)

    def ball(self, node: YMap, what: str) -> Ball:
        node = self.mapping(node, what, ("shape", "variables", "center", "radius"), required=("variables",))
        e = node.entries
        names = self._variables(e["variables"], what)
        center = self._vector(e["center"], f"{what}.center", len(names)) if "center" in e else (0.0,) * len(names)
        radius = self.number(e["radius"], f"{what}.radius") if "radius" in e else 1.0
        if radius <= 0:
            raise SpecError(f"`{what}.radius` must be positive, got {radius:g}", e["radius"].loc)
        return Ball(tuple(names), center, radius, loc=node.loc)

    def cube(self, node: YMap, what: str) -> Box:
        node = self.mapping(node, what, ("shape", "dim", "variable", "range"), required=("dim",))
        e = node.entries
        dim = self.integer(e["dim"], f"{what}.dim", 1, MAX_DIM)
        base = self.name(e["variable"], "variable") if "variable" in e else "x"
        lo, hi = self.interval(e["range"], f"{what}.range") if "range" in e else (0.0, 1.0)
        names = tuple(f"{base}{i}" for i in range(1, dim + 1))
        return Box(names, ((lo, hi),) * dim, indexed=base, loc=node.loc)

    def polygon(self, node: YMap, what: str) -> Polygon:
        node = self.mapping(node, what, ("shape", "variables", "vertices"), required=("variables", "vertices"))
        e = node.entries
        names = self._variables(e["variables"], what)
        if len(names) != 2:
            raise SpecError(f"a polygon lies in a plane: `{what}.variables` needs two names", e["variables"].loc)
        items = self.sequence(e["vertices"], f"{what}.vertices")
        if not 3 <= len(items) <= MAX_VERTICES:
            raise SpecError(f"a polygon needs 3 to {MAX_VERTICES} vertices, got {len(items)}", e["vertices"].loc)
        vertices = tuple(self._vector(v, f"{what}.vertices", 2) for v in items)
        problem = polygon_problem(vertices)
        if problem is not None:
            raise SpecError(f"the polygon is not simple: {problem}", e["vertices"].loc)
        return Polygon(tuple(names), vertices, loc=node.loc)

    def halfspace(self, node: YMap, what: str) -> Halfspace:
        node = self.mapping(node, what, ("shape", "variables", "normal", "offset"), required=("variables", "normal"))
        e = node.entries
        names = self._variables(e["variables"], what)
        normal = self._vector(e["normal"], f"{what}.normal", len(names))
        if not any(normal):
            raise SpecError(f"`{what}.normal` is zero", e["normal"].loc)
        offset = self.number(e["offset"], f"{what}.offset") if "offset" in e else 0.0
        return Halfspace(tuple(names), normal, offset, loc=node.loc)

    def composite(self, node: YMap, shape: str, what: str, depth: int) -> Composite:
        node = self.mapping(node, what, ("shape", "of"), required=("of",))
        items = self.sequence(node.entries["of"], f"{what}.of")
        if len(items) < 2:
            raise SpecError(f"`{shape}` needs at least two operands in `of`", node.entries["of"].loc)
        operands = [self.domain(item, f"{what}.of[{i}]", depth + 1) for i, item in enumerate(items)]
        order = operands[0].variables
        for item, operand in zip(items, operands):
            if sorted(operand.variables) != sorted(order):
                raise SpecError(
                    f"every operand of `{shape}` has the variables ({', '.join(order)}); "
                    f"this one has ({', '.join(operand.variables)})",
                    item.loc,
                )
        unbounded = [item for item, o in zip(items, operands) if isinstance(o, Halfspace)]
        if shape == "union" and unbounded:
            raise SpecError("a union with a halfspace is unbounded: intersect the halfspace with a bounded shape first", unbounded[0].loc)
        if shape == "difference" and unbounded[:1] == [items[0]]:
            raise SpecError("a difference starting from a halfspace is unbounded: start from a bounded shape", items[0].loc)
        if len(unbounded) == len(items):
            raise SpecError(f"`{shape}` of halfspaces only has no bounding box to sample in: add a bounded shape", node.loc)
        return Composite(shape, tuple(reorder(o, order) for o in operands), loc=node.loc)

    def _variables(self, node: YNode, what: str) -> list[str]:
        names = [self.name(v, "variable") for v in self.sequence(node, f"{what}.variables")]
        if not names:
            raise SpecError(f"`{what}.variables` is empty", node.loc)
        self._unique(names, "variable", node.loc)
        return names

    def _vector(self, node: YNode, what: str, n: int) -> tuple[float, ...]:
        items = self.sequence(node, what)
        if len(items) != n:
            raise SpecError(f"`{what}` needs {n} coordinates, got {len(items)}", node.loc)
        return tuple(self.number(c, what) for c in items)

    @staticmethod
    def _unique(names: list[str], kind: str, loc: Loc) -> None:
        for n in (n for i, n in enumerate(names) if n in names[:i]):
            raise SpecError(f"{kind} `{n}` is given twice", loc)


def reorder(domain: Domain, order: tuple[str, ...]) -> Domain:
    """``domain`` with its coordinates in the variable order ``order`` (the same set)."""
    if tuple(domain.variables) == tuple(order):
        return domain
    index = [domain.variables.index(v) for v in order]
    if isinstance(domain, Box):
        return Box(tuple(order), tuple(domain.bounds[i] for i in index), domain.indexed, domain.loc)
    if isinstance(domain, Ball):
        return Ball(tuple(order), tuple(domain.center[i] for i in index), domain.radius, domain.loc)
    if isinstance(domain, Polygon):
        return Polygon(tuple(order), tuple(tuple(v[i] for i in index) for v in domain.vertices), domain.loc)
    if isinstance(domain, Halfspace):
        return Halfspace(tuple(order), tuple(domain.normal[i] for i in index), domain.offset, domain.loc)
    return Composite(domain.shape, tuple(reorder(o, order) for o in domain.operands), domain.loc)


def polygon_problem(vertices) -> str | None:
    """Why a polygon is not simple (a repeated vertex, no area, two edges that cross or touch, an
    edge that runs back along the previous one), or None. Vectorized over all pairs of edges."""
    v = np.asarray(vertices, dtype=float)
    m = len(v)
    scale = max(float(np.abs(v).max()), 1.0)
    tol = 1e-12 * scale
    i, j = np.triu_indices(m, 1)
    same = np.abs(v[i] - v[j]).max(axis=1) <= tol
    if same.any():
        k = int(np.argmax(same))
        return f"vertices {i[k] + 1} and {j[k] + 1} coincide"
    nxt = np.roll(v, -1, axis=0)
    back = _cross(v - nxt, np.roll(nxt, -1, axis=0) - nxt)  # edge k and edge k+1 seen from their shared vertex
    folds = (np.abs(back) <= tol * scale) & (((v - nxt) * (np.roll(nxt, -1, axis=0) - nxt)).sum(axis=1) > 0)
    if folds.any():
        k = int(np.argmax(folds))
        return f"edges {k + 1} and {(k + 1) % m + 1} fold back on each other"
    apart = ~((j == i + 1) | ((i == 0) & (j == m - 1)))
    i, j = i[apart], j[apart]
    meet = _segments_meet(v[i], nxt[i], v[j], nxt[j], tol)
    if meet.any():
        k = int(np.argmax(meet))
        return f"edges {i[k] + 1} and {j[k] + 1} cross or touch"
    if abs(2 * signed_area(v)) <= tol * scale:
        return "it has no area"
    return None


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _segments_meet(p, q, r, s, tol: float) -> np.ndarray:
    """Per row, whether segments pq and rs share a point (touching counts)."""
    d1, d2 = _cross(q - p, r - p), _cross(q - p, s - p)
    d3, d4 = _cross(s - r, p - r), _cross(s - r, q - r)
    proper = (((d1 > tol) & (d2 < -tol)) | ((d1 < -tol) & (d2 > tol))) & (((d3 > tol) & (d4 < -tol)) | ((d3 < -tol) & (d4 > tol)))

    def on(a, b, c, d):  # c on segment ab, given the cross product d of (b - a, c - a)
        within = np.all((np.minimum(a, b) - tol <= c) & (c <= np.maximum(a, b) + tol), axis=1)
        return (np.abs(d) <= tol * np.maximum(np.linalg.norm(b - a, axis=1), 1.0)) & within

    return proper | on(p, q, r, d1) | on(p, q, s, d2) | on(r, s, p, d3) | on(r, s, q, d4)
