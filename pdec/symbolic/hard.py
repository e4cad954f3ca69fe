"""Exact conditions: the unknown written as ``u = G + φ·N`` (`hard: true`).

A Dirichlet value imposed in the loss is met only as well as the optimizer
balances it against the equation; imposed by construction it holds to
rounding and its loss term disappears (Lagaris, Likas & Fotiadis 1998;
Sukumar & Srivastava 2022). With ``N`` the network's output,

    u = G + φ·N,    φ = 0 on the constrained set,    G = data there,

so ``u`` equals the data whatever ``N`` is. ``G`` and ``φ`` are SymPy
expressions in the variables, and every residual is rewritten in ``N`` here,
once: SymPy differentiates ``G`` and ``φ`` (product rule), and the Taylor
runtime still differentiates only the network. A Laplacian keeps its
collapsed stream, ``Δu = ΔG + NΔφ + 2∇φ·∇N + φΔN``.

``G`` is the Boolean sum (transfinite interpolation, Gordon 1971) of one
projector per constrained direction: a box axis with data on one face or on
both (``P f = (1−s) f|lo + s f|hi``), the initial slice (``P f = f|t0``, or
the Hermite ``f|t0 + (t−t0)·∂t f|t0`` when ``∂u/∂t`` is imposed as well), or
the whole spatial boundary of a ball or a composite domain, which supplies
data but no restriction (a box's ``on: boundary`` is its faces):

    G = P₁ ⊕ P₂ ⊕ … = Σ_{S ≠ ∅} (−1)^{|S|+1} Π_{i∈S} P_i f.

Why the projectors read the data only where it holds (``f|lo``, ``f|t0``):
``G`` must depend on the boundary values alone, not on how the data's
expression continues inside. Extending ``u = f`` on a box's boundary by ``f``
itself would hand the network the solution whenever ``f`` is its closed form
(every manufactured test), and the training would only learn ``N = 0``. On a
ball's sphere and on the parts of a composite boundary no such projector is
built: there ``G`` is the data's expression (weighted between parts), and
accuracy measured with the exact solution as data says little.

``G`` equals every piece's data where data of different pieces agree where they
meet (corners, the initial boundary); `make_exact` checks that numerically
and refuses incompatible data. ``φ`` is the product of the pieces' distances,
each scaled to at most 1: ``s``, ``1−s``, ``4s(1−s)``, ``τ = (t−t0)/(t1−t0)``
(``τ²`` with an imposed rate), ``(R²−|x−c|²)/R²``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import sympy

from ..contract import BallDomain, BoxDomain
from ..errors import Loc, SpecError
from ..geometry import geometry_of
from ..lang.nodes import (
    Laplacian,
    NormalDerivative,
    expand_laplacians,
    is_unknown,
    laplacian_power,
    unknown_atoms,
    unknown_function,
)
from ..lang.numeric import evaluate
from ..lang.printer import to_text
from ..lang.scope import symbol
from ..boundary_parts import sample_parts
from .distance import DistanceError, check_positive, constrained_distance
from .problem import Support, SymbolicProblem, Term, sample_support
from .support import holds

CHECK_POINTS = 256
PART_POINTS = 1024
TOLERANCE = 1e-8


@dataclass(frozen=True)
class Piece:
    """One exactly imposed value: ``unknown`` (``order`` 0) or ``∂unknown/∂t`` (``order`` 1,
    initial slice only) equals ``data`` on ``where``: ``("face", axis, side)``,
    ``("boundary",)`` or ``("initial",)``."""

    term: str
    unknown: str
    order: int
    data: sympy.Expr
    where: tuple
    loc: Loc


@dataclass(frozen=True)
class _Projector:
    """One direction of the Boolean sum: its data, how it restricts an expression, its distance."""

    data: sympy.Expr
    restrict: object  # expr -> expr, or None when the piece is the whole boundary (data only)
    phi: sympy.Expr


def make_exact(problem: SymbolicProblem) -> SymbolicProblem:
    """``problem`` with its `hard` conditions built into the unknowns: ``constrained`` holds
    ``(G, φ)`` per unknown, the hard terms are gone and the others are written in ``N``."""
    hard = [t for t in problem.terms if t.hard and t.kind != "periodic"]
    if not hard:
        return problem
    pieces = [p for t in hard for p in pieces_of(t, problem)]
    forms = {u: _form([p for p in pieces if p.unknown == u], problem) for u in problem.unknowns if any(p.unknown == u for p in pieces)}
    _check(forms, pieces, problem)
    terms = tuple(
        t if t.residual is None else dataclasses.replace(t, residual=substitute(t.residual, forms, problem))
        for t in problem.terms
        if not (t.hard and t.kind != "periodic")
    )
    if not any(t.kind == "equation" for t in terms):
        raise SpecError("no equation is left to train", hard[0].loc)
    for t in terms:
        if t.residual is not None and t.residual.has(sympy.DiracDelta):
            culprit = next((h for h in hard if h.residual.has(sympy.Abs, sympy.sign, sympy.Heaviside, sympy.Min, sympy.Max, sympy.Piecewise)), hard[0])
            raise SpecError(
                f"`{t.name}` differentiates this exact data where it jumps or has a kink; exact data must be smooth "
                "(write it without abs, sign, heaviside, min, max or where, or drop `hard: true`)",
                culprit.loc,
            )
    return dataclasses.replace(problem, terms=terms, constrained=forms)


def pieces_of(term: Term, problem: SymbolicProblem) -> list[Piece]:
    """The exactly imposed values of one `hard` condition, or a `SpecError` saying why it cannot be exact."""
    residual = term.residual
    atoms = unknown_atoms(residual)
    time = symbol(problem.time) if problem.time else None
    why = "`hard: true` imposes a value exactly: write `u = …`" + (
        f" (or `d(u, {problem.time}) = …` at the initial time)" if time is not None else ""
    )
    if len(atoms) != 1:
        raise SpecError(f"{why}; this condition involves {', '.join(sorted(to_text(a) for a in atoms))}", term.loc)
    (atom,) = atoms
    if is_unknown(atom):
        order, unknown = 0, atom
    elif isinstance(atom, sympy.Derivative) and is_unknown(atom.expr) and atom.variable_count == ((time, 1),) and term.kind == "initial":
        order, unknown = 1, atom.expr
    else:
        raise SpecError(f"{why}; `{to_text(atom)}` cannot be imposed exactly", term.loc)
    slot = sympy.Dummy()
    linear = residual.xreplace({atom: slot})
    coefficient = sympy.diff(linear, slot).xreplace({symbol(k): v for k, v in problem.constants.items()})
    if not (coefficient.is_number and coefficient != 0) or sympy.diff(linear, slot, 2) != 0:
        raise SpecError(f"{why}: the condition must be `{to_text(atom)} = data`, linear with a constant coefficient", term.loc)
    rest = linear.xreplace({slot: sympy.Integer(0)})
    data = -rest if coefficient == 1 else sympy.expand(-rest / coefficient)
    if any(c.cond.free_symbols for w in data.atoms(sympy.Piecewise) for c in w.args):
        raise SpecError("exact data must be smooth: `where` jumps (drop `hard: true`, the condition stays in the loss)", term.loc)
    learnable = data.free_symbols & {symbol(p) for p in problem.parameters}
    if learnable:
        names = ", ".join(sorted(str(s) for s in learnable))
        raise SpecError(f"exact data cannot depend on the learnable parameter {names}", term.loc)
    pieces = []
    composite = not isinstance(problem.domain, (BoxDomain, BallDomain))
    for s in term.supports:
        if s.region == "point":
            raise SpecError("a condition at a point cannot be made exact: drop `hard: true` (it stays in the loss)", term.loc)
        if s.relations and not composite:
            raise SpecError(
                "`hard: true` needs a whole face, the whole boundary or the initial slice; `and` restricts it to a part",
                term.loc,
            )
        if composite and s.region == "boundary":
            if any(time in r.lhs.free_symbols | r.rhs.free_symbols for r in s.relations):
                raise SpecError("`hard: true` holds at all times; this selector restricts the time", term.loc)
            pieces.append(Piece(term.name, unknown.func.__name__, order, data, ("part", s), term.loc))
            continue
        if s.region == "boundary" and isinstance(problem.domain, BoxDomain):  # every face: G from face values only
            faces = [("face", axis, side) for axis in range(len(problem.spatial)) for side in (0, 1)]
            pieces += [Piece(term.name, unknown.func.__name__, order, data, where, term.loc) for where in faces]
            continue
        where = ("face", s.axis, s.side) if s.region == "face" else (s.region,)
        pieces.append(Piece(term.name, unknown.func.__name__, order, data, where, term.loc))
    return pieces


def _form(pieces: list[Piece], problem: SymbolicProblem) -> tuple[sympy.Expr, sympy.Expr]:
    """``(G, φ)`` for one unknown from its pieces."""
    seen: dict[tuple, Piece] = {}
    for p in pieces:
        key = (p.where, p.order)
        if key in seen:
            raise SpecError(f"`{p.unknown}` is imposed exactly twice here (also by `{seen[key].term}`)", p.loc)
        seen[key] = p
    whole = seen.get((("boundary",), 0))
    faces = {p.where[1:]: p for p in pieces if p.where[0] == "face"}
    if whole and faces:
        p = next(iter(faces.values()))
        raise SpecError(f"`{p.unknown}` is already exact on the whole boundary (`{whole.term}`)", p.loc)
    initial, rate = seen.get((("initial",), 0)), seen.get((("initial",), 1))
    if rate and not initial:
        raise SpecError(f"an exact `d({rate.unknown}, {problem.time})` needs the initial value exact as well", rate.loc)

    projectors = []
    if whole:
        projectors.append(_Projector(whole.data, None, _boundary_distance(problem)))
    for axis in sorted({a for a, _ in faces}):
        projectors.append(_face_projector(axis, {side: faces[(axis, side)] for a, side in faces if a == axis}, problem))
    parts = [p for p in pieces if p.where[0] == "part"]
    if parts:
        projectors.append(_part_projector(parts, problem))
    if initial:
        projectors.append(_time_projector(initial, rate, problem))
    phi = sympy.Mul(*(p.phi for p in projectors))
    G = sympy.Integer(0)
    for size in range(1, len(projectors) + 1):
        for subset in combinations(projectors, size):
            inner = next((p for p in subset if p.restrict is None), subset[-1])
            term = inner.data
            for p in subset:
                if p is not inner:
                    term = p.restrict(term)
            G += (-1) ** (size + 1) * term
    return G, phi


def _boundary_distance(problem: SymbolicProblem) -> sympy.Expr:
    x = [symbol(s) for s in problem.spatial]
    if isinstance(problem.domain, BallDomain):
        c, R = problem.domain.center, problem.domain.radius
        return (_number(R**2) - sum((xi - _number(ci)) ** 2 for xi, ci in zip(x, c))) / _number(R**2)
    return sympy.Mul(*(4 * s * (1 - s) for s in (_unit(problem, i) for i in range(len(x)))))


def _number(value: float) -> sympy.Expr:
    """An integer as an integer (``x - 0`` prints as ``x``), anything else as a float."""
    return sympy.Integer(int(value)) if float(value).is_integer() else sympy.Float(value)


def _unit(problem: SymbolicProblem, axis: int) -> sympy.Expr:
    """``s = (x − lo)/(hi − lo)``, 0 on the low face and 1 on the high one."""
    lo, hi = problem.domain.lo[axis], problem.domain.hi[axis]
    return (symbol(problem.spatial[axis]) - _number(lo)) / _number(hi - lo)


def _part_projector(parts: list[Piece], problem: SymbolicProblem) -> _Projector:
    """Parts of a composite domain's boundary (`pdec.symbolic.distance`): data only, like the
    whole boundary of a box; ``G`` interpolates different data of different parts.

    Every part's points are drawn piece by piece (`pdec.boundary_parts`: a tiny hole, the top of
    an inner edge), and its ``φ`` is checked to vanish on them: a part with too few points to be
    found is a located error, never a condition dropped unseen (``φ = Π ∅ = 1``)."""
    x = tuple(symbol(s) for s in problem.spatial)
    geometry = geometry_of(problem.domain)
    rng = np.random.default_rng(0)
    factors = []
    for p in parts:
        X, normals = sample_support(p.where[1], problem.variables, problem.time_interval, geometry, PART_POINTS, rng, problem.constants)
        try:
            (found,) = constrained_distance(problem.domain, x, [(X[:, : len(x)], normals)])
        except DistanceError as exc:
            raise SpecError(f"`{p.unknown}` cannot be exact here: {exc}; drop `hard: true`", p.loc) from None
        factors.append(found)
        values = evaluate(sympy.Mul(*found), {xi: X[:, i] for i, xi in enumerate(x)}, len(X))
        bad = ~(np.abs(values) <= TOLERANCE)  # the distance construction's own promise, checked
        if bad.any():
            k = int(np.argmax(bad))
            at = ", ".join(f"{v:.3g}" for v in X[k, : len(x)])
            raise SpecError(f"`{p.unknown}` cannot be exact here: the distance function is {values[k]:.3g}, not 0, at ({at}) where `{p.term}` holds; drop `hard: true`", p.loc)
    _refuse_shared_surfaces(parts, factors)
    B = np.vstack([part[0] for part in sample_parts(geometry, PART_POINTS, rng)])  # piece by piece: no piece left unprobed
    env = {xi: B[:, i] for i, xi in enumerate(x)}
    claimed = np.zeros(len(B), bool)
    for p in parts:
        mask = np.ones(len(B), bool)
        for r in p.where[1].relations:
            mask &= holds(r, env, len(B), problem.constants)
        claimed |= mask
    groups: dict[sympy.Expr, dict] = {}  # parts with the same data are one part (they may share a surface)
    for p, found in zip(parts, factors):
        groups.setdefault(p.data, {}).update(found)
    phis = [sympy.Mul(*found) for found in groups.values()]
    phi = sympy.Mul(*phis)
    try:
        check_positive(phi, problem.domain, x, B[~claimed])
    except DistanceError as exc:
        raise SpecError(f"`{parts[0].unknown}` cannot be exact here: {exc}; drop `hard: true`", parts[0].loc) from None
    if len(groups) == 1:
        return _Projector(parts[0].data, None, phi)
    others = [sympy.Mul(*(f for j, f in enumerate(phis) if j != i)) for i in range(len(phis))]
    G = sympy.Add(*(data * w for data, w in zip(groups, others))) / sympy.Add(*others)
    return _Projector(G, None, phi)


def _refuse_shared_surfaces(parts: list[Piece], factors: list[dict]) -> None:
    """Different data on two parts of one surface: its distance vanishes on both, so the
    interpolation's weights of both vanish there and ``G`` is 0/0 (Sukumar & Srivastava's
    eq. 34 needs each part on surfaces of its own)."""
    for i, j in combinations(range(len(parts)), 2):
        shared = [f for f in factors[i] if f in factors[j]]
        if shared and parts[i].data != parts[j].data:
            at = ", ".join(f"{v:.3g}" for v in factors[i][shared[0]])
            raise SpecError(
                f"`{parts[j].term}` and `{parts[i].term}` impose different values of `{parts[j].unknown}` exactly on "
                f"parts of one surface (through ({at})): its distance function vanishes on both, so neither value "
                "can be met; impose one expression on that surface, or drop `hard: true` from one of them",
                parts[j].loc,
            )


def _face_projector(axis: int, sides: dict[int, Piece], problem: SymbolicProblem) -> _Projector:
    x, s = symbol(problem.spatial[axis]), _unit(problem, axis)
    ends = (_number(problem.domain.lo[axis]), _number(problem.domain.hi[axis]))
    weights = {0: 1 - s, 1: s} if len(sides) == 2 else {side: sympy.Integer(1) for side in sides}

    def restrict(expr: sympy.Expr) -> sympy.Expr:
        return sympy.Add(*(w * expr.xreplace({x: ends[side]}) for side, w in weights.items()))

    data = sympy.Add(*(w * sides[side].data.xreplace({x: ends[side]}) for side, w in weights.items()))
    phi = 4 * s * (1 - s) if len(sides) == 2 else (s if 0 in sides else 1 - s)
    return _Projector(data, restrict, phi)


def _time_projector(initial: Piece, rate: Piece | None, problem: SymbolicProblem) -> _Projector:
    t = symbol(problem.time)
    t0, t1 = (_number(v) for v in problem.time_interval)
    tau = (t - t0) / (t1 - t0)

    def restrict(expr: sympy.Expr) -> sympy.Expr:
        at = expr.xreplace({t: t0})
        return at + (t - t0) * sympy.diff(expr, t).xreplace({t: t0}) if rate else at

    data = initial.data.xreplace({t: t0}) + ((t - t0) * rate.data.xreplace({t: t0}) if rate else 0)
    return _Projector(data, restrict, tau**2 if rate else tau)


def substitute(expr: sympy.Expr, forms: dict[str, tuple[sympy.Expr, sympy.Expr]], problem: SymbolicProblem) -> sympy.Expr:
    """``expr`` with each constrained unknown ``u`` replaced by ``G + φ·u`` (``u`` now the network's
    output) and its derivatives expanded by the product rule; Laplacians of ``u`` stay collapsed."""
    variables = tuple(symbol(v) for v in problem.variables)
    spatial = tuple(symbol(s) for s in problem.spatial)
    unknowns = {unknown_function(u, variables): u for u in forms}
    raw = {f: sympy.Function(f"__raw_{u}", real=True)(*variables) for f, u in unknowns.items()}
    full = {f: forms[u][0] + forms[u][1] * raw[f] for f, u in unknowns.items()}

    def walk(e: sympy.Basic) -> sympy.Basic:
        if e in full:
            return full[e]
        if isinstance(e, Laplacian):
            inner, power = laplacian_power(e)
            if inner not in full:
                return e
            G, phi = forms[unknowns[inner]]
            if power > 1:
                return expand_laplacians(e, spatial).xreplace(full).doit()
            N = raw[inner]
            return (
                sum(sympy.diff(G, x, 2) for x in spatial)
                + N * sum(sympy.diff(phi, x, 2) for x in spatial)
                + 2 * sum(sympy.diff(phi, x) * sympy.Derivative(N, x) for x in spatial)
                + phi * Laplacian(N)
            )
        if isinstance(e, NormalDerivative) and e.args[0] in full:
            G, phi = forms[unknowns[e.args[0]]]
            N = raw[e.args[0]]
            dG = NormalDerivative(G) if G.free_symbols else 0
            return dG + N * NormalDerivative(phi) + phi * NormalDerivative(N)
        if isinstance(e, sympy.Derivative) and e.expr in full:
            return sympy.Derivative(full[e.expr], *e.variable_count).doit()
        if not e.args:
            return e
        return e.func(*(walk(a) for a in e.args))

    return walk(expr).xreplace({raw[f]: f for f in unknowns})


def _check(forms, pieces: list[Piece], problem: SymbolicProblem) -> None:
    """Each piece's data is met by ``G`` (and ``φ`` vanishes) at sampled points of its set: the
    pieces' data agree where they meet."""
    geometry = geometry_of(problem.domain)
    constants = {symbol(k): v for k, v in problem.constants.items()}
    t = symbol(problem.time) if problem.time else None
    rng = np.random.default_rng(0)
    for p in pieces:
        G, phi = forms[p.unknown]
        support = p.where[1] if p.where[0] == "part" else Support(p.where[0], *(p.where[1:] or (None, None)))
        X = sample_support(support, problem.variables, problem.time_interval, geometry, CHECK_POINTS, rng, problem.constants)[0]
        env = {symbol(v): X[:, i] for i, v in enumerate(problem.variables)}
        got = sympy.diff(G, t) if p.order else G
        values = [evaluate(e.xreplace(constants), env, len(X)) for e in (got, p.data, phi)]
        bad = ~(np.abs(values[0] - values[1]) <= TOLERANCE * (1 + np.abs(values[1])))
        vanish = np.abs(values[2]) <= TOLERANCE
        if not vanish.all():
            i = int(np.argmin(vanish))
            at = ", ".join(f"{v}={X[i, j]:.3g}" for j, v in enumerate(problem.variables))
            raise SpecError(
                f"`{p.unknown}` cannot be exact here: its distance function is {values[2][i]:.3g}, not 0, at ({at}) "
                f"where `{p.term}` holds; drop `hard: true`",
                p.loc,
            )
        if bad.any():
            i = int(np.argmax(bad))
            at = ", ".join(f"{v}={X[i, j]:.3g}" for j, v in enumerate(problem.variables))
            raise SpecError(
                f"the exact conditions on `{p.unknown}` disagree where they meet: at ({at}) `{p.term}` asks "
                f"{values[1][i]:.6g} but the others give {values[0][i]:.6g}; make the data agree there, "
                "or drop `hard: true` from one of them",
                p.loc,
            )
