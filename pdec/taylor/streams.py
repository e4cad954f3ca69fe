"""Which Taylor coefficient streams a set of differential operators needs.

Every operator the runtime evaluates is a constant-coefficient differential
operator ``p(∂)`` for a homogeneous polynomial ``p`` of degree ``k ≤ 4``:
``Partial((0, 0, 1))`` is ``x0²x1``, the Laplacian over ``x, y`` is
``x² + y²``, the bilaplacian is ``(x² + y²)²``. A *stream* carries ``q(∂)z``
for one such polynomial ``q`` through the network, for every hidden unit
``z``; it is linear in ``q``, so streams of equal degree can be recombined.

Propagating ``p(∂)`` through an activation (multivariate Faà di Bruno,
``rules.py``) needs, besides ``p(∂)h`` itself, contractions of the
symmetric tensor of ``p`` whose every slot lies in the space of partial
derivatives of ``p`` of lower degree (polarisation, Griewank, Utke & Walther
2000). So the streams needed are: the value, first-order streams along unit
directions, and for every degree ``b ≥ 2`` a basis of the span of the
targets of that degree and of all derivatives of higher targets down to
degree ``b``.

The top-order coefficient of each operator is one stream, however many
monomials ``p`` has (collapsed Taylor mode, Dangel, Siebert, Zeinhofer &
Walther 2025): the Laplacian in D dimensions takes D + 2 streams (forward
Laplacian, Li et al. 2023) instead of the 2D + 1 of one jet per direction.
Pure directional jets along ``v`` are the special case ``p = (v·x)^k``; a
polarisation identity (the interpolation of Griewank, Utke & Walther 2000)
writes the bilaplacian's polynomial as a combination of such powers (tested
in ``tests/taylor``), but the derivative space of ``(Σ x_i²)²`` is smaller
than that of the directional jets, so the plan carries
``D + D(D+1)/2 + D + 2`` streams rather than ``D² + D(D+1)/2 + D + 2``.

The randomized (Hutchinson) Laplacian gets ``samples`` pseudo-coordinates
``y_s = v_s·x`` whose first-order streams are seeded with Rademacher
directions drawn at evaluation time, and one collapsed stream
``(1/S) Σ_s y_s²``, an unbiased estimate of the trace (Hutchinson 1990;
for PINNs Hu et al. 2024; Shi et al. 2024).

Everything here is plain Python with exact rational arithmetic: a plan is
built once per spec, compared, printed by ``pdec show``, and needs no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Sequence

from .operators import Laplacian, Operator, Partial
from .rules import Monomial, Poly, RuleTerm, _activation_rule, _poly_derivatives, _poly_mul, _PolyBasis

MAX_PLAN_ORDER = 4


@dataclass(frozen=True)
class RandomGroup:
    """The Rademacher directions of one randomized Laplacian, redrawn every call."""

    over: tuple[int, ...]
    samples: int


@dataclass(frozen=True)
class StreamSpec:
    """One Taylor coefficient stream: ``poly(∂)`` of every hidden unit.

    ``poly`` uses coordinates ``0 … n_inputs-1`` for the input columns and
    ``n_inputs + j`` for the j-th random pseudo-coordinate. First-order
    streams are seeded at the input with ``e_column`` or with a random
    direction ``random = (group, sample)``; streams of order ≥ 2 start at zero
    and follow ``σ'·h + Σ rule``.
    """

    order: int
    poly: tuple[tuple[Monomial, Fraction], ...]
    column: int | None = None
    random: tuple[int, int] | None = None
    rule: tuple[RuleTerm, ...] = ()


@dataclass(frozen=True)
class StreamPlan:
    """The streams a set of operators needs, and how to read each operator off them.

    Stream 0 is the value, streams ``1 … n_first`` are first order, the rest
    are collapsed streams of order 2…4 in increasing order, so every rule
    refers only to earlier streams. ``outputs`` maps each operator to a linear
    combination ``((stream, coef), …)`` of the output-layer streams.
    """

    n_inputs: int
    operators: tuple[Operator, ...]
    streams: tuple[StreamSpec, ...]
    random_groups: tuple[RandomGroup, ...]
    outputs: tuple[tuple[Operator, tuple[tuple[int, Fraction], ...]], ...]

    @property
    def n_streams(self) -> int:
        return len(self.streams)

    @property
    def n_first(self) -> int:
        return sum(1 for s in self.streams if s.order == 1)

    @property
    def max_order(self) -> int:
        return max(s.order for s in self.streams)

    def describe(self, variables: Sequence[str] | None = None) -> list[str]:
        """One human-readable line per stream, e.g. ``laplacian over x,y (collapsed)``."""
        names = list(variables) if variables is not None else [f"x{i}" for i in range(self.n_inputs)]
        if len(names) != self.n_inputs:
            raise ValueError(f"expected {self.n_inputs} variable names, got {len(names)}")
        return [_describe_stream(s, names, self) for s in self.streams]

    def __repr__(self) -> str:
        lines = ", ".join(self.describe())
        return (
            f"StreamPlan({self.n_streams} streams for {len(self.operators)} operators "
            f"over {self.n_inputs} inputs: {lines})"
        )


# --------------------------------------------------------------------------
# the polynomial of an operator


def _operator_poly(op: Operator, pseudo: list[int]) -> Poly:
    """The polynomial ``p`` with ``op = p(∂)``; ``pseudo`` are the random coordinates."""
    if isinstance(op, Partial):
        return {op.index: Fraction(1)}
    if op.samples:
        return {(c, c): Fraction(1, op.samples) for c in pseudo}
    square = {(i, i): Fraction(1) for i in op.over}
    return square if op.power == 1 else _poly_mul(square, square)


# --------------------------------------------------------------------------
# planning


def plan_streams(operators: Iterable[Operator], n_inputs: int) -> StreamPlan:
    """The minimal streams (value, unit first-order directions, collapsed higher
    orders) from which every operator in ``operators`` is read off.

    Shared streams are planned once: ``{u_t, u_xx}`` takes 4 streams (value,
    d/dt, d/dx, d²/dx²), the Laplacian in D dimensions D + 2.
    """
    ops: list[Operator] = []
    for op in operators:
        if not isinstance(op, (Partial, Laplacian)):
            raise TypeError(f"expected Partial or Laplacian, got {op!r}")
        columns = op.index if isinstance(op, Partial) else op.over
        bad = [c for c in columns if c >= n_inputs]
        if bad:
            raise ValueError(f"{op} refers to input column {bad[0]}, but there are {n_inputs} inputs")
        if op.order > MAX_PLAN_ORDER:
            raise ValueError(f"{op} has order {op.order}; the Taylor runtime supports order ≤ {MAX_PLAN_ORDER}")
        if op not in ops:
            ops.append(op)

    groups: list[RandomGroup] = []
    polys: list[Poly] = []
    next_pseudo = n_inputs
    for op in ops:
        pseudo: list[int] = []
        if isinstance(op, Laplacian) and op.samples:
            groups.append(RandomGroup(op.over, op.samples))
            pseudo = list(range(next_pseudo, next_pseudo + op.samples))
            next_pseudo += op.samples
        polys.append(_operator_poly(op, pseudo))
    degree = [len(next(iter(p))) for p in polys]
    top = max(degree, default=0)

    streams: list[StreamSpec] = [StreamSpec(order=0, poly=(((), Fraction(1)),))]
    coords = sorted({i for p in polys for m in p for i in m})
    first_id = {c: 1 + k for k, c in enumerate(coords)}
    for c in coords:
        seed = {"column": c} if c < n_inputs else {"random": _random_seed(c - n_inputs, groups)}
        streams.append(StreamSpec(order=1, poly=(((c,), Fraction(1)),), **seed))

    bases: dict[int, _PolyBasis] = {}
    for b in range(2, top + 1):
        targets = [p for p, d in zip(polys, degree) if d == b]
        derived = [q for p, d in zip(polys, degree) if d > b for q in _poly_derivatives(p, d - b)]
        basis = bases[b] = _PolyBasis()
        for q in _preferred_basis(targets, derived):
            if basis.add_if_new(q, len(streams)):
                streams.append(StreamSpec(order=b, poly=tuple(sorted(q.items()))))

    def express(q: Poly) -> dict[int, Fraction]:
        d = len(next(iter(q)))
        if d == 0:
            return {0: q[()]}
        if d == 1:
            return {first_id[m[0]]: c for m, c in q.items()}
        return bases[d].express(q)

    for sid, s in enumerate(streams):
        if s.order >= 2:
            rule = _activation_rule(dict(s.poly), express, first_id)
            streams[sid] = StreamSpec(order=s.order, poly=s.poly, rule=rule)

    outputs = tuple((op, tuple(sorted(express(p).items()))) for op, p in zip(ops, polys))
    return StreamPlan(
        n_inputs=n_inputs,
        operators=tuple(ops),
        streams=tuple(streams),
        random_groups=tuple(groups),
        outputs=outputs,
    )


def _random_seed(j: int, groups: list[RandomGroup]) -> tuple[int, int]:
    for g, group in enumerate(groups):
        if j < group.samples:
            return (g, j)
        j -= group.samples
    raise AssertionError("pseudo-coordinate out of range")


def _preferred_basis(targets: list[Poly], derived: list[Poly]) -> list[Poly]:
    """Candidates in the order they should become streams: the operators
    themselves, then single monomials inside the span (readable, sparse
    rules), then the remaining derivative polynomials."""
    span = _PolyBasis()
    for k, q in enumerate(targets + derived):
        span.add_if_new(q, k)
    monomials = sorted({m for q in targets + derived for m in q})
    in_span = [{m: Fraction(1)} for m in monomials if not span.reduce({m: Fraction(1)})[0]]
    return targets + in_span + derived


# --------------------------------------------------------------------------
# describing streams for `pdec show`

_ORDINALS = {2: "2nd", 3: "3rd", 4: "4th"}


def _describe_stream(s: StreamSpec, names: list[str], plan: StreamPlan) -> str:
    if s.order == 0:
        return "value"
    if s.order == 1 and s.random is not None:
        g, j = s.random
        group = plan.random_groups[g]
        return (
            f"d/dv{j + 1}, random Rademacher direction {j + 1} of {group.samples} "
            f"over {_list_names(group.over, names)}"
        )
    poly = dict(s.poly)
    pseudo = [i for m in poly for i in m if i >= plan.n_inputs]
    if pseudo:
        g, _ = _random_seed(pseudo[0] - plan.n_inputs, list(plan.random_groups))
        group = plan.random_groups[g]
        return (
            f"randomized laplacian over {_list_names(group.over, names)}, "
            f"{group.samples} Rademacher samples (collapsed)"
        )
    return _describe_poly(poly, names)


def _describe_poly(poly: Poly, names: list[str]) -> str:
    variables = sorted({i for m in poly for i in m})
    over = _list_names(variables, names)
    one = Fraction(1)
    if len(poly) == 1 and one in poly.values():
        return _partial_name(next(iter(poly)), names)
    lap = {(i, i): one for i in variables}
    if len(variables) >= 2:
        if poly == lap:
            return f"laplacian over {over} (collapsed)"
        if poly == _poly_mul(lap, lap):
            return f"bilaplacian over {over} (collapsed)"
        for i in variables:
            if _poly_mul({(i,): one}, lap) == poly:
                return f"d/d{names[i]} laplacian over {over} (collapsed)"
    k = len(next(iter(poly)))
    terms = []
    for m, c in sorted(poly.items(), key=lambda mc: mc[0]):
        coef = "" if c == 1 else f"{c} "
        terms.append(coef + _partial_name(m, names))
    return f"collapsed {_ORDINALS.get(k, str(k))} order: " + " + ".join(terms).replace("+ -", "- ")


def _partial_name(m: Monomial, names: list[str]) -> str:
    parts = []
    for i in sorted(set(m)):
        e = m.count(i)
        parts.append(f"d{names[i]}" + (f"^{e}" if e > 1 else ""))
    head = "d" if len(m) == 1 else f"d^{len(m)}"
    return f"{head}/{''.join(parts)}"


def _list_names(columns: Sequence[int], names: list[str]) -> str:
    cols = list(columns)
    if len(cols) > 6 and cols == list(range(cols[0], cols[-1] + 1)):
        return f"{names[cols[0]]},…,{names[cols[-1]]}"
    return ",".join(names[i] for i in cols)
