"""The `domain:` section's shapes and composites, from YAML to the contract's domain, and its errors.

Every spec here is `spec(body)`: the lines of ``body`` (indented by two spaces) follow
``domain:``, so the domain's first line is line 3, and a steady Poisson problem follows it:

     1  name: plate
     2  domain:
     3    shape: difference          ← body, line 3 on
     …
        unknowns: [u]
        equations:
          - laplacian(u) = 1
        conditions:
          - on: boundary
            impose: u = 0

Parsed specs are checked against the contract domain written out by hand
(`compile_spec(...).problem.domain`), broken ones against their exact message at their exact
line and column (STYLE #10), and `pdec check` against its exit status and error format.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from pdec.api import compile_spec
from pdec.cli import main
from pdec.contract import (
    BallDomain,
    BoxDomain,
    CSGDomain,
    HalfspaceDomain,
    PolygonDomain,
)
from pdec.errors import SpecError
from pdec.spec.load import load_spec_text

ROOT = Path(__file__).resolve().parents[2]
FILE = "spec.yaml"
POISSON = """\
unknowns: [u]
equations:
  - laplacian(u) = 1
conditions:
  - on: boundary
    impose: u = 0
"""


def spec(body: str, rest: str = POISSON) -> str:
    return "name: plate\ndomain:\n" + body + rest


def compiled(text: str):
    return compile_spec(load_spec_text(text, FILE))


def box(lo, hi) -> BoxDomain:
    return BoxDomain(tuple(float(v) for v in lo), tuple(float(v) for v in hi))


def ball(center, radius=1.0) -> BallDomain:
    return BallDomain(tuple(float(v) for v in center), float(radius))


def half(normal, offset=0.0) -> HalfspaceDomain:
    return HalfspaceDomain(tuple(float(v) for v in normal), float(offset))


def polygon(*vertices) -> PolygonDomain:
    return PolygonDomain(tuple((float(x), float(y)) for x, y in vertices))


def csg(op: str, *operands) -> CSGDomain:
    return CSGDomain(op, tuple(operands))


# ---------------------------------------------------------------------------
# shapes that parse, each with its contract domain by hand


@dataclass(frozen=True)
class Parsed:
    id: str
    body: str
    domain: object
    variables: tuple[str, ...] = ("x", "y")


PARSED = [
    Parsed(
        "difference of short boxes (L-shape)",
        """\
  shape: difference
  of:
    - {shape: box, x: [-1, 1], y: [-1, 1]}
    - {shape: box, x: [0, 1], y: [0, 1]}
""",
        csg("difference", box((-1, -1), (1, 1)), box((0, 0), (1, 1))),
    ),
    Parsed(
        "union of a long-form box and a ball",
        """\
  shape: union
  of:
    - shape: box
      variables: [x, y]
      bounds: [[0, 2], [0, 1]]
    - {shape: ball, variables: [x, y], center: [2, 0.5], radius: 0.5}
""",
        csg("union", box((0, 0), (2, 1)), ball((2, 0.5), 0.5)),
    ),
    Parsed(
        "intersection of a default ball and halfspaces",
        """\
  shape: intersection
  of:
    - {shape: ball, variables: [x, y]}
    - {shape: halfspace, variables: [x, y], normal: [1, 1]}
    - {shape: halfspace, variables: [x, y], normal: [0, -2], offset: 0.5}
""",
        csg("intersection", ball((0, 0), 1), half((1, 1), 0), half((0, -2), 0.5)),
    ),
    Parsed(
        "polygon alone",
        """\
  shape: polygon
  variables: [x, y]
  vertices: [[0, 0], [2, 0], [2.5, 1.5], [1, 2.5], [-0.5, 1.5]]
""",
        polygon((0, 0), (2, 0), (2.5, 1.5), (1, 2.5), (-0.5, 1.5)),
    ),
    Parsed(
        "polygon hole, clockwise, kept as written",
        """\
  shape: difference
  of:
    - {shape: box, x: [-1, 3], y: [-1, 3]}
    - shape: polygon
      variables: [x, y]
      vertices: [[0, 0], [0, 1], [1, 1], [1, 0]]
""",
        csg("difference", box((-1, -1), (3, 3)), polygon((0, 0), (0, 1), (1, 1), (1, 0))),
    ),
    Parsed(
        "nested three deep",
        """\
  shape: difference
  of:
    - shape: union
      of:
        - {shape: box, x: [0, 2], y: [0, 1]}
        - {shape: ball, variables: [x, y], center: [2, 0.5], radius: 0.5}
    - shape: intersection
      of:
        - {shape: ball, variables: [x, y], center: [0.5, 0.5], radius: 0.25}
        - {shape: halfspace, variables: [x, y], normal: [-1, 0], offset: -0.5}
    - {shape: box, x: [1.5, 1.6], y: [0.2, 0.8]}
""",
        csg(
            "difference",
            csg("union", box((0, 0), (2, 1)), ball((2, 0.5), 0.5)),
            csg("intersection", ball((0.5, 0.5), 0.25), half((-1, 0), -0.5)),
            box((1.5, 0.2), (1.6, 0.8)),
        ),
    ),
    Parsed(
        "cube with a ball hole",
        """\
  shape: difference
  of:
    - {shape: cube, dim: 3, range: [0, 1]}
    - {shape: ball, variables: [x1, x2, x3], center: [0.5, 0.5, 0.5], radius: 0.25}
""",
        csg("difference", box((0, 0, 0), (1, 1, 1)), ball((0.5, 0.5, 0.5), 0.25)),
        ("x1", "x2", "x3"),
    ),
    # the variable order is the first operand's; the others are permuted into it
    Parsed(
        "ball in (y, x) permuted",
        """\
  shape: difference
  of:
    - {shape: box, x: [-1, 1], y: [-1, 1]}
    - {shape: ball, variables: [y, x], center: [0.5, 0.25], radius: 0.1}
""",
        csg("difference", box((-1, -1), (1, 1)), ball((0.25, 0.5), 0.1)),
    ),
    Parsed(
        "every shape in (y, x) permuted",
        """\
  shape: intersection
  of:
    - {shape: box, x: [0, 4], y: [0, 3]}
    - {shape: box, variables: [y, x], bounds: [[-1, 2], [-2, 3]]}
    - {shape: ball, variables: [y, x], center: [1, 2], radius: 3}
    - {shape: halfspace, variables: [y, x], normal: [1, 2], offset: 5}
    - {shape: polygon, variables: [y, x], vertices: [[0, 0], [0, 4], [3, 4], [3, 0]]}
    - shape: union
      of:
        - {shape: box, y: [-9, 9], x: [-8, 8]}
        - {shape: ball, variables: [y, x], center: [7, 6]}
""",
        csg(
            "intersection",
            box((0, 0), (4, 3)),
            box((-2, -1), (3, 2)),
            ball((2, 1), 3),
            half((2, 1), 5),
            polygon((0, 0), (4, 0), (4, 3), (0, 3)),
            csg("union", box((-8, -9), (8, 9)), ball((6, 7), 1)),
        ),
    ),
    Parsed(
        "first operand in (y, x): the composite is in (y, x)",
        """\
  shape: union
  of:
    - {shape: box, y: [0, 1], x: [0, 2]}
    - {shape: ball, variables: [x, y], center: [2, 0.5], radius: 0.5}
""",
        csg("union", box((0, 0), (1, 2)), ball((0.5, 2), 0.5)),
        ("y", "x"),
    ),
    Parsed(
        "three variables permuted",
        """\
  shape: difference
  of:
    - {shape: box, x: [0, 1], y: [0, 2], z: [0, 3]}
    - {shape: ball, variables: [z, x, y], center: [1.5, 0.5, 1], radius: 0.25}
    - {shape: halfspace, variables: [y, z, x], normal: [1, 2, 3], offset: 2}
""",
        csg("difference", box((0, 0, 0), (1, 2, 3)), ball((0.5, 1, 1.5), 0.25), half((3, 1, 2), 2)),
        ("x", "y", "z"),
    ),
    Parsed(
        "cube operands: a ball in (x2, x1) permuted",
        """\
  shape: difference
  of:
    - {shape: cube, dim: 2, range: [-1, 1]}
    - {shape: ball, variables: [x2, x1], center: [0.5, 0], radius: 0.25}
""",
        csg("difference", box((-1, -1), (1, 1)), ball((0, 0.5), 0.25)),
        ("x1", "x2"),
    ),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in PARSED])
def test_domain_parses_to_its_contract_domain(case: Parsed) -> None:
    problem = compiled(spec(case.body)).problem
    assert problem.domain == case.domain
    assert tuple(problem.variables) == case.variables


def test_compile_spec_reads_a_composite_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "lshape.yaml"
    path.write_text(spec(PARSED[0].body), encoding="utf-8")
    assert compile_spec(path).problem.domain == PARSED[0].domain


def _nested_unions(depth: int) -> tuple[str, object]:
    """``depth`` unions, each of a unit box and the next union (the last: a box): body and domain."""
    body, prefix, indent = "", "  ", "  "
    for level in range(depth):
        body += f"{prefix}shape: union\n{indent}of:\n{indent}  - {{shape: box, x: [{level}, {level + 1}], y: [0, 1]}}\n"
        prefix, indent = f"{indent}  - ", indent + "    "
    body += f"{prefix}{{shape: box, x: [{depth}, {depth + 1}], y: [0, 1]}}\n"
    expected = box((depth, 0), (depth + 1, 1))
    for level in range(depth - 1, -1, -1):
        expected = csg("union", box((level, 0), (level + 1, 1)), expected)
    return body, expected


def test_nesting_ten_deep() -> None:
    body, expected = _nested_unions(10)
    assert body.splitlines()[3:5] == ["    - shape: union", "      of:"]
    assert compiled(spec(body)).problem.domain == expected


def test_point_conditions_use_the_closed_composite() -> None:
    """A condition at a point: on the L-shape's reentrant corner or its edge y = 1 left of x = 0 it
    is accepted; on the edge y = 1 beside the removed quadrant, or inside that quadrant, refused."""
    lshape = PARSED[0].body
    for point, inside in (("x = 0 and y = 0", True), ("x = -0.5 and y = 1", True), ("x = 0.5 and y = 1", False), ("x = 0.5 and y = 0.5", False)):
        text = spec(lshape, POISSON + f"  - on: {point}\n    impose: u = 1\n")
        if inside:
            compiled(text)
            continue
        with pytest.raises(SpecError) as caught:
            compiled(text)
        values = re.findall(r"= (\S+)", point)
        assert caught.value.message == f"the point ({values[0]}, {values[1]}) lies outside the domain"
        assert (caught.value.loc.line, caught.value.loc.col) == (13, 11)  # line 13: `  - on: x = …`, at its `=`


# ---------------------------------------------------------------------------
# errors, each with its message and location


@dataclass(frozen=True)
class Broken:
    id: str
    text: str
    message: str
    line: int
    col: int
    regex: bool = False


BROKEN = [
    Broken(
        "polygon-not-simple",
        spec("""\
  shape: difference
  of:
    - {shape: box, x: [-2, 2], y: [-2, 2]}
    - shape: polygon
      variables: [x, y]
      vertices: [[0, 0], [2, 2], [2, 0], [0, 1]]
"""),
        "the polygon is not simple: edges 1 and 3 cross or touch",
        8,
        17,
    ),
    Broken(
        "polygon-repeated-vertex",
        spec("""\
  shape: polygon
  variables: [x, y]
  vertices: [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
"""),
        "the polygon is not simple: vertices 1 and 5 coincide",
        5,
        13,
    ),
    Broken(
        "polygon-spike",
        spec("""\
  shape: polygon
  variables: [x, y]
  vertices: [[0, 0], [2, 0], [2, 2], [2, 1], [0, 2]]
"""),
        "the polygon is not simple: edges 2 and 3 fold back on each other",
        5,
        13,
    ),
    Broken(
        "polygon-collinear-vertices",
        spec("""\
  shape: polygon
  variables: [x, y]
  vertices: [[0, 0], [1, 1], [3, 3]]
"""),
        "the polygon is not simple: edges 2 and 3 fold back on each other",
        5,
        13,
    ),
    Broken(
        "polygon-three-variables",
        spec("""\
  shape: polygon
  variables: [x, y, z]
  vertices: [[0, 0], [1, 0], [0, 1]]
"""),
        "a polygon lies in a plane: `domain.variables` needs two names",
        4,
        14,
    ),
    Broken(
        "polygon-one-variable-as-operand",
        spec("""\
  shape: union
  of:
    - {shape: box, x: [0, 1]}
    - {shape: polygon, variables: [x], vertices: [[0], [1], [2]]}
"""),
        "a polygon lies in a plane: `domain.of[1].variables` needs two names",
        6,
        35,
    ),
    Broken(
        "polygon-two-vertices",
        spec("""\
  shape: polygon
  variables: [x, y]
  vertices: [[0, 0], [1, 0]]
"""),
        "a polygon needs 3 to 1000 vertices, got 2",
        5,
        13,
    ),
    Broken(
        "polygon-vertex-with-three-coordinates",
        spec("""\
  shape: polygon
  variables: [x, y]
  vertices: [[0, 0], [1, 0, 2], [0, 1]]
"""),
        "`domain.vertices` needs 2 coordinates, got 3",
        5,
        22,
    ),
    Broken(
        "operands-with-different-variables",
        spec("""\
  shape: union
  of:
    - {shape: box, x: [0, 1], y: [0, 1]}
    - {shape: ball, variables: [x, z], center: [0, 0], radius: 1}
"""),
        "every operand of `union` has the variables (x, y); this one has (x, z)",
        6,
        7,
    ),
    Broken(
        "operands-with-different-dimensions",
        spec("""\
  shape: intersection
  of:
    - {shape: box, x: [0, 1], y: [0, 1]}
    - shape: ball
      variables: [x, y, z]
"""),
        "every operand of `intersection` has the variables (x, y); this one has (x, y, z)",
        6,
        7,
    ),
    Broken(
        "cube-beside-x-y",
        spec("""\
  shape: difference
  of:
    - {shape: cube, dim: 2}
    - {shape: ball, variables: [x, y], radius: 0.5}
"""),
        "every operand of `difference` has the variables (x1, x2); this one has (x, y)",
        6,
        7,
    ),
    Broken(
        "of-one-operand",
        spec("""\
  shape: union
  of:
    - {shape: box, x: [0, 1], y: [0, 1]}
"""),
        "`union` needs at least two operands in `of`",
        5,
        5,
    ),
    Broken("of-empty", spec("  shape: difference\n  of: []\n"), "`difference` needs at least two operands in `of`", 4, 7),
    Broken("of-missing", spec("  shape: intersection\n"), "`domain` needs `of`", 3, 3),
    Broken(
        "of-not-shapes",
        spec("  shape: union\n  of: [1, 2]\n"),
        "`domain.of[0]` must map each spatial variable to an interval, e.g. `x: [0, 1]`",
        4,
        8,
    ),
    Broken(
        "halfspace-alone",
        spec("""\
  shape: halfspace
  variables: [x, y]
  normal: [1, 0]
"""),
        "a halfspace alone is unbounded: use it as an operand of `intersection` or `difference`",
        3,
        10,
    ),
    Broken(
        "union-of-halfspaces",
        spec("""\
  shape: union
  of:
    - {shape: halfspace, variables: [x, y], normal: [1, 0], offset: 1}
    - {shape: halfspace, variables: [x, y], normal: [-1, 0], offset: 1}
"""),
        "a union with a halfspace is unbounded: intersect the halfspace with a bounded shape first",
        5,
        7,
    ),
    Broken(
        "intersection-of-halfspaces",
        spec("""\
  shape: intersection
  of:
    - {shape: halfspace, variables: [x], normal: [1], offset: 1}
    - {shape: halfspace, variables: [x], normal: [-1], offset: 1}
"""),
        "`intersection` of halfspaces only has no bounding box to sample in: add a bounded shape",
        3,
        3,
    ),
    Broken(
        "halfspace-zero-normal",
        spec("""\
  shape: intersection
  of:
    - {shape: ball, variables: [x, y]}
    - {shape: halfspace, variables: [x, y], normal: [0, 0]}
"""),
        "`domain.of[1].normal` is zero",
        6,
        53,
    ),
    Broken(
        "union-with-a-halfspace-is-unbounded",
        spec("""\
  shape: union
  of:
    - {shape: ball, variables: [x, y]}
    - {shape: halfspace, variables: [x, y], normal: [1, 0]}
"""),
        "a union with a halfspace is unbounded: intersect the halfspace with a bounded shape first",
        6,
        7,
    ),
    Broken(
        "difference-from-a-halfspace-is-unbounded",
        spec("""\
  shape: difference
  of:
    - {shape: halfspace, variables: [x, y], normal: [1, 0]}
    - {shape: ball, variables: [x, y]}
"""),
        "a difference starting from a halfspace is unbounded: start from a bounded shape",
        5,
        7,
    ),
    Broken(
        "intersection-of-disjoint-boxes",
        spec("""\
  shape: intersection
  of:
    - {shape: box, x: [0, 1], y: [0, 1]}
    - {shape: box, x: [2, 3], y: [0, 1]}
"""),
        "the domain is empty: its operands do not overlap",
        3,
        3,
    ),
    Broken(
        "intersection-of-boxes-touching-along-an-edge",
        spec("""\
  shape: intersection
  of:
    - {shape: box, x: [0, 1], y: [0, 1]}
    - {shape: box, x: [1, 2], y: [0, 1]}
"""),
        "the domain is empty: its operands do not overlap",
        3,
        3,
    ),
    Broken(
        "intersection-of-disjoint-balls-in-overlapping-bounds",
        spec("""\
  shape: intersection
  of:
    - {shape: ball, variables: [x, y], center: [0, 0], radius: 1}
    - {shape: ball, variables: [x, y], center: [1.5, 1.5], radius: 1}
"""),
        "the domain is empty or degenerate: it has no interior",
        3,
        3,
    ),
    Broken(
        "difference-removes-everything",
        spec("""\
  shape: difference
  of:
    - {shape: box, x: [0, 1], y: [0, 1]}
    - {shape: ball, variables: [x, y], center: [0.5, 0.5], radius: 0.75}
"""),
        "the domain is empty or degenerate: it has no interior",
        3,
        3,
    ),
    Broken(
        "difference-leaves-a-sliver",
        spec("""\
  shape: difference
  of:
    - {shape: box, x: [0, 1], y: [0, 1]}
    - {shape: box, x: [-1, 0.99995], y: [-1, 2]}
"""),
        r"the domain is empty or degenerate: its measure is [0-9.e-]+, below 0\.0001 of its bounding box",
        3,
        3,
        regex=True,
    ),
    Broken(
        "polygon-too-thin",
        spec("""\
  shape: polygon
  variables: [x, y]
  vertices: [[0, 0], [1, 1], [1, 1.00001]]
"""),
        r"the polygon is too thin to sample: its measure is 5e-06, below 0\.0001 of its bounding box",
        3,
        3,
        regex=True,
    ),
    Broken(
        "stray-key-ofs",
        spec("""\
  shape: union
  ofs:
    - {shape: box, x: [0, 1], y: [0, 1]}
    - {shape: box, x: [1, 2], y: [0, 1]}
"""),
        "unknown key `ofs` in `domain`. Did you mean `of`? Valid keys: shape, of",
        4,
        3,
    ),
    Broken(
        "stray-key-in-a-nested-composite",
        spec("""\
  shape: union
  of:
    - {shape: box, x: [0, 1], y: [0, 1]}
    - shape: intersection
      off: []
"""),
        "unknown key `off` in `domain.of[1]`. Did you mean `of`? Valid keys: shape, of",
        7,
        7,
    ),
    Broken(
        "stray-key-in-a-ball-operand",
        spec("""\
  shape: union
  of:
    - {shape: box, x: [0, 1], y: [0, 1]}
    - {shape: ball, variables: [x, y], centre: [0, 0]}
"""),
        "unknown key `centre` in `domain.of[1]`. Did you mean `center`? Valid keys: shape, variables, center, radius",
        6,
        40,
    ),
    Broken(
        "unknown-shape",
        spec("""\
  shape: onion
  of:
    - {shape: box, x: [0, 1], y: [0, 1]}
    - {shape: box, x: [1, 2], y: [0, 1]}
"""),
        "invalid `domain.shape` `onion`. Supported: box, ball, cube, polygon, union, intersection, difference. Did you mean `union`?",
        3,
        10,
    ),
    Broken(
        "unknown-operand-shape",
        spec("""\
  shape: union
  of:
    - {shape: box, x: [0, 1], y: [0, 1]}
    - {shape: circle, variables: [x, y]}
"""),
        "invalid `domain.of[1].shape` `circle`. Supported: box, ball, cube, polygon, union, intersection, difference, halfspace",
        6,
        15,
    ),
    Broken(
        "operand-ball-radius-zero",
        spec("""\
  shape: union
  of:
    - {shape: box, x: [0, 1], y: [0, 1]}
    - {shape: ball, variables: [x, y], radius: 0}
"""),
        "`domain.of[1].radius` must be positive, got 0",
        6,
        48,
    ),
    Broken(
        "operand-variable-twice",
        spec("""\
  shape: union
  of:
    - {shape: box, x: [0, 1], y: [0, 1]}
    - {shape: ball, variables: [x, x]}
"""),
        "variable `x` is given twice",
        6,
        32,
    ),
    Broken(
        "operand-radius-without-shape",
        spec("""\
  shape: union
  of:
    - {x: [0, 1], radius: 1}
    - {shape: box, x: [0, 1]}
"""),
        "`radius` belongs to `shape: ball`; without `shape:` every key of `domain.of[0]` is a variable with its interval (`x: [0, 1]`)",
        5,
        19,
    ),
    Broken(
        "periodic-on-a-composite",
        spec(
            """\
  shape: difference
  of:
    - {shape: box, x: [-1, 1], y: [-1, 1]}
    - {shape: box, x: [0, 1], y: [0, 1]}
""",
            "unknowns: [u]\nequations:\n  - laplacian(u) = 1\nconditions:\n  - periodic: x\n",
        ),
        "`periodic: x` needs a spatial variable of a box domain",
        11,
        5,
    ),
    # bounded domains refused all the same: every composite, nested ones too, must have a bounding
    # box of its own (the messages say how to rewrite them)
    Broken(
        "nested-union-with-a-halfspace-inside-a-bounded-intersection",
        spec("""\
  shape: intersection
  of:
    - {shape: box, x: [-1, 1], y: [-1, 1]}
    - shape: union
      of:
        - {shape: ball, variables: [x, y], radius: 0.5}
        - {shape: halfspace, variables: [x, y], normal: [1, 0]}
"""),
        "a union with a halfspace is unbounded: intersect the halfspace with a bounded shape first",
        9,
        11,
    ),
    Broken(
        "box-minus-a-wedge-of-halfspaces",
        spec("""\
  shape: difference
  of:
    - {shape: box, x: [-1, 1], y: [-1, 1]}
    - shape: intersection
      of:
        - {shape: halfspace, variables: [x, y], normal: [-1, 0]}
        - {shape: halfspace, variables: [x, y], normal: [0, -1]}
"""),
        "`intersection` of halfspaces only has no bounding box to sample in: add a bounded shape",
        6,
        7,
    ),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in BROKEN])
def test_broken_domain(case: Broken) -> None:
    with pytest.raises(SpecError) as caught:
        compiled(case.text)
    error = caught.value
    if case.regex:
        assert re.fullmatch(case.message, error.message), error.message
    else:
        assert error.message == case.message
    assert error.loc is not None and error.loc.file == FILE
    assert (error.loc.line, error.loc.col) == (case.line, case.col), error.format()
    lines = error.format().split("\n")
    assert lines[0] == f"{FILE}:{case.line}:{case.col}: error: {error.message}"
    assert error.loc.source_line.rstrip("\n") == case.text.splitlines()[case.line - 1]
    assert lines[-1] == " " * (4 + case.col - 1) + "^"


def test_broken_case_ids_are_unique() -> None:
    assert len({c.id for c in BROKEN}) == len(BROKEN)


def test_empty_nested_operand_is_located_at_the_operand() -> None:
    text = spec("""\
  shape: union
  of:
    - {shape: box, x: [0, 1], y: [0, 1]}
    - shape: intersection
      of:
        - {shape: box, x: [0, 1], y: [0, 1]}
        - {shape: box, x: [2, 3], y: [0, 1]}
""")
    with pytest.raises(SpecError) as caught:
        compiled(text)
    assert (caught.value.loc.line, caught.value.loc.col) == (6, 7), caught.value.format()
    assert caught.value.message == "the domain is empty: its operands do not overlap"


def test_nesting_past_the_yaml_limit_is_a_spec_error() -> None:
    """Each composite level is two YAML levels (a mapping and its `of` list): past 25 composites the
    YAML reader's limit of 50 levels refuses the spec, with a located error (no recursion error)."""
    body, _ = _nested_unions(30)
    with pytest.raises(SpecError) as caught:
        compiled(spec(body))
    assert caught.value.message == "lists and mappings nested more than 50 levels deep"
    assert caught.value.loc is not None and caught.value.loc.file == FILE


# ---------------------------------------------------------------------------
# pdec check


BAD = BROKEN[0]
"""The bow-tie polygon hole: `bad.yaml:8:17: error: the polygon is not simple: …`."""
GOOD = spec(PARSED[5].body)


def test_check_composite_specs_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text(BAD.text, encoding="utf-8")
    Path("good.yaml").write_text(GOOD, encoding="utf-8")
    status = main(["check", "bad.yaml", "good.yaml"])
    out, err = capsys.readouterr()
    assert status == 2
    assert out == "good.yaml: ok (plate: 1 equation, 1 condition)\n"
    lines = err.splitlines()
    assert lines[0] == f"bad.yaml:{BAD.line}:{BAD.col}: error: {BAD.message}"
    assert lines[1] == "    " + BAD.text.splitlines()[BAD.line - 1]
    assert lines[2] == " " * (4 + BAD.col - 1) + "^"
    assert "Traceback" not in out + err


L_BODY = """\
  shape: difference
  of:
    - {shape: box, x: [-1, 1], y: [-1, 1]}
    - {shape: box, x: [0, 1], y: [0, 1]}
"""


@pytest.mark.parametrize(
    "body, selector, region",
    [(L_BODY, "x = 0 and y > 0.999", "boundary"), ("  x: [0, 1]\n  y: [0, 1]\n", "x = 0 and y > 0.9999", "face")],
    ids=["lshape-inner-edge", "box-face"],
)
def test_a_small_selected_part_is_found(body: str, selector: str, region: str) -> None:
    """The top 0.1% of the L's inner edge is 1/8000 of its boundary, the top 0.01% of a face
    1e-4 of it: 2048 uniform points missed them and `pdec check` said the selector picks nothing;
    drawn on their own edge they are found."""
    rest = POISSON.replace("  - on: boundary\n", f"  - on: {selector}\n")
    (term,) = [t for t in compiled(spec(body, rest)).problem.terms if t.kind == "boundary"]
    assert [s.region for s in term.supports] == [region]


def test_show_measures_each_part_on_its_own_surface(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`pdec show` measures a part as the sum over the boundary's pieces of each one's measure
    times the share it keeps: whole edges exactly, the top 1% of the inner edge (1/800 of the
    boundary, about 25 of 20,000 uniform points) within a few percent."""
    monkeypatch.chdir(tmp_path)
    rest = POISSON.replace("  - on: boundary\n", "  - on: x = -1 or x = 0\n") + "  - {on: x = 0 and y > 0.99, impose: u = 1}\n"
    Path("l.yaml").write_text(spec(L_BODY, rest), encoding="utf-8")
    assert main(["show", "l.yaml"]) == 0
    out = capsys.readouterr().out
    assert "on boundary where x = -1 (measure 2) or boundary where x = 0 (measure 1)" in out
    measure, error = map(float, re.search(r"where x = 0 and y > 99/100 \(measure ([0-9.e-]+) ± ([0-9.e-]+)\)", out).groups())
    assert abs(measure - 0.01) <= 4 * error and error < 0.001


def test_a_domain_error_at_run_time_is_a_user_error() -> None:
    """A `GeometryError` (a domain with no interior to sample, met by the runtime) is a `PdecError`:
    `pdec` prints it and exits with 2, no traceback."""
    from pdec.errors import PdecError
    from pdec.geometry import GeometryError

    assert issubclass(GeometryError, PdecError)


def test_check_bad_composite_through_the_command_line(tmp_path: Path) -> None:
    """`python -m pdec check` in a child: exit status 2, the located error, no traceback."""
    (tmp_path / "bad.yaml").write_text(BAD.text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(
        [sys.executable, "-m", "pdec", "check", "bad.yaml"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 2, run.stderr
    assert run.stdout == ""
    assert run.stderr.startswith(f"bad.yaml:{BAD.line}:{BAD.col}: error: the polygon is not simple: ")
    assert re.match(r"^[^\s:]+:\d+:\d+: error: .+$", run.stderr.splitlines()[0])
    assert "Traceback" not in run.stderr
