"""Stream planning: minimal counts for the textbook cases, sharing, readable
descriptions, the polarisation identity behind the bilaplacian, errors."""

from __future__ import annotations

import dataclasses
import itertools
from fractions import Fraction

import pytest

from pdec.taylor import Laplacian, Partial, plan_streams
from pdec.taylor.rules import _poly_mul

X, Y, T = 0, 1, 2

COUNTS = [
    dict(id="poisson-1d", ops=[Laplacian((0,))], n=1, streams=3),
    *[dict(id=f"laplacian-{d}d", ops=[Laplacian(tuple(range(d)))], n=d, streams=d + 2) for d in (2, 3, 5, 10, 50)],
    dict(id="poisson-with-value", ops=[Partial(()), Laplacian((0, 1))], n=2, streams=4),
    dict(id="heat-u_t-u_xx", ops=[Partial((1,)), Partial((0, 0))], n=2, streams=4),
    dict(id="burgers", ops=[Partial(()), Partial((1,)), Partial((0,)), Partial((0, 0))], n=2, streams=4),
    dict(id="heat-4+1d", ops=[Partial((4,)), Laplacian((0, 1, 2, 3))], n=5, streams=7),
    dict(id="wave-u_tt-u_xx", ops=[Partial((1, 1)), Partial((0, 0))], n=2, streams=5),
    dict(id="u_xy", ops=[Partial((0, 1))], n=2, streams=4),
    dict(id="shared-laplacian-parts", ops=[Laplacian((0, 1)), Partial((0, 0)), Partial((1, 1))], n=2, streams=5),
    dict(id="u_xxxx", ops=[Partial((0, 0, 0, 0))], n=1, streams=5),
    dict(id="u_xxy", ops=[Partial((0, 0, 1))], n=2, streams=6),
    dict(id="u_xxyy", ops=[Partial((0, 0, 1, 1))], n=2, streams=9),
    *[
        dict(id=f"bilaplacian-{d}d", ops=[Laplacian(tuple(range(d)), power=2)], n=d, streams=2 + 2 * d + d * (d + 1) // 2)
        for d in (1, 2, 3, 4)
    ],
    dict(id="hutchinson-16", ops=[Laplacian(tuple(range(100)), samples=16)], n=100, streams=18),
]


@pytest.mark.parametrize("case", COUNTS, ids=[c["id"] for c in COUNTS])
def test_stream_counts(case):
    plan = plan_streams(case["ops"], case["n"])
    assert plan.n_streams == case["streams"], plan.describe()


def test_forward_laplacian_beats_one_jet_per_direction():
    # D + 2 collapsed against 2D + 1 for standard Taylor mode.
    for d in range(2, 12):
        assert plan_streams([Laplacian(tuple(range(d)))], d).n_streams == d + 2 < 2 * d + 1


def test_descriptions_of_textbook_plans():
    heat = plan_streams([Partial((T,)), Partial((X, X))], 3)
    assert heat.describe(["x", "y", "t"]) == ["value", "d/dx", "d/dt", "d^2/dx^2"]
    lap = plan_streams([Laplacian((X, Y))], 2)
    assert lap.describe(["x", "y"]) == ["value", "d/dx", "d/dy", "laplacian over x,y (collapsed)"]
    bi = plan_streams([Laplacian((X, Y), power=2)], 2)
    assert bi.describe(["x", "y"]) == [
        "value", "d/dx", "d/dy", "d^2/dx^2", "d^2/dxdy", "d^2/dy^2",
        "d/dx laplacian over x,y (collapsed)", "d/dy laplacian over x,y (collapsed)",
        "bilaplacian over x,y (collapsed)",
    ]
    rnd = plan_streams([Laplacian(tuple(range(10)), samples=2)], 10).describe([f"x{i}" for i in range(1, 11)])
    assert rnd[1] == "d/dv1, random Rademacher direction 1 of 2 over x1,…,x10"
    assert rnd[-1] == "randomized laplacian over x1,…,x10, 2 Rademacher samples (collapsed)"


def test_repr_lists_the_streams():
    plan = plan_streams([Laplacian((0, 1))], 2)
    assert repr(plan) == (
        "StreamPlan(4 streams for 1 operators over 2 inputs: "
        "value, d/dx0, d/dx1, laplacian over x0,x1 (collapsed))"
    )


def test_plan_is_immutable_hashable_and_deterministic():
    ops = [Partial((0, 1)), Laplacian((0, 1, 2), power=2), Partial(())]
    a, b = plan_streams(ops, 3), plan_streams(ops, 3)
    assert a == b and hash(a) == hash(b)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.n_inputs = 4  # type: ignore[misc]


def test_duplicates_are_planned_once():
    once = plan_streams([Laplacian((0, 1))], 2)
    twice = plan_streams([Laplacian((0, 1)), Laplacian((0, 1))], 2)
    assert twice == once


def test_operators_read_off_shared_streams():
    plan = plan_streams([Laplacian((0, 1)), Partial((0, 0)), Partial((1, 1))], 2)
    combos = {op: dict(c) for op, c in plan.outputs}
    # Two of the three share the span of d²/dx², d²/dy²: one is a combination.
    assert sum(len(c) for c in combos.values()) == 4


def test_rules_refer_only_to_earlier_streams():
    plan = plan_streams([Laplacian((0, 1, 2), power=2), Partial((0, 1, 2)), Partial((1, 1, 1, 1))], 3)
    for sid, s in enumerate(plan.streams):
        assert all(f < sid for t in s.rule for f in t.factors)
        assert all(2 <= t.m <= s.order for t in s.rule)
    assert [s.order for s in plan.streams] == sorted(s.order for s in plan.streams)


@pytest.mark.parametrize("d", [1, 2, 3, 4, 5, 6])
def test_biharmonic_polarisation_identity(d):
    """Δ² = (1-(D-1)/3) Σ ∂⁴_{e_i} + 1/6 Σ_{i<j} [∂⁴_{e_i+e_j} + ∂⁴_{e_i-e_j}] (polarisation,
    cf. the interpolation of Griewank, Utke & Walther 2000),
    as an identity of the polynomials p(∂) (exact rationals); the same identity
    on a network is checked in test_taylor_mlp.py."""
    one = Fraction(1)
    lap = {(i, i): one for i in range(d)}
    lhs = _poly_mul(lap, lap)

    def power4(v: dict[int, Fraction]) -> dict:
        lin = {(i,): c for i, c in v.items()}
        sq = _poly_mul(lin, lin)
        return _poly_mul(sq, sq)

    rhs: dict = {}

    def add(p, c):
        for m, v in p.items():
            rhs[m] = rhs.get(m, 0) + c * v

    for i in range(d):
        add(power4({i: one}), 1 - Fraction(d - 1, 3))
    for i, j in itertools.combinations(range(d), 2):
        add(power4({i: one, j: one}), Fraction(1, 6))
        add(power4({i: one, j: -one}), Fraction(1, 6))
    assert {m: c for m, c in rhs.items() if c} == lhs


@pytest.mark.parametrize(
    "ops, n, message",
    [
        ([Partial((0, 2))], 2, "refers to input column 2, but there are 2 inputs"),
        ([Partial((0, 0, 0, 0, 0))], 1, "supports order ≤ 4"),
        (["u_xx"], 1, "expected Partial or Laplacian"),
    ],
    ids=["column", "order", "type"],
)
def test_errors(ops, n, message):
    with pytest.raises((ValueError, TypeError), match=message):
        plan_streams(ops, n)


def test_describe_checks_the_variable_count():
    with pytest.raises(ValueError, match="expected 2 variable names, got 1"):
        plan_streams([Partial((0,))], 2).describe(["x"])
