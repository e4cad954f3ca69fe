"""A validated `Spec` → the problem in SymPy: one residual per term.

This is where names meet meaning: every equation and condition is parsed
against the scope it may use, selectors are checked against the domain (they
must pick out part of the boundary or the initial slice), unknowns must all
appear in some equation, and an `exact` solution is tried in every residual
at random points (a warning catches typos in manufactured solutions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sympy

from ..contract import Domain, OutputSettings, TrainingSettings
from ..errors import Loc, SpecError, SpecWarning
from ..geometry import BoxGeometry, Geometry, contains, geometry_of
from .domain import checked_domain
from ..lang.nodes import Laplacian, NormalDerivative, expand_laplacians, unknown_atoms, unknown_function
from ..lang.numeric import constant_value, evaluate
from ..lang.parse import parse_equation, parse_expr, parse_selector
from ..lang.scope import Scope, symbol
from ..lang.selector import BOUNDARY, Relation
from ..spec.schema import Condition, Parameter, Spec, Text
from .support import Support, sample_support
from .files import check_reference, data_columns

CHECK_POINTS = 256
EXACT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Term:
    """One loss term: an equation, or a condition and where it holds."""

    name: str
    kind: str  # equation | boundary | initial | periodic | data
    residual: sympy.Expr | None
    weight: float
    loc: Loc
    text: str = ""
    supports: tuple[Support, ...] = ()
    periodic: str | None = None
    data: Path | None = None
    columns: tuple[tuple[str, str], ...] = ()
    points: int | None = None
    hard: bool = False
    """Satisfied exactly by the form of the unknown (`pdec.symbolic.hard`), not by a loss term."""


@dataclass(frozen=True)
class SymbolicProblem:
    """The spec with every expression parsed and checked: what the later stages read.

    Nothing after this stage sees the `Spec`: the settings travel here, as
    the contract's types.
    """

    name: str
    description: str
    domain: Domain
    indexed: str | None
    """The variable prefix of a `cube` domain (``x`` for ``x1 … xd``), else None."""
    time_interval: tuple[float, float] | None
    variables: tuple[str, ...]
    spatial: tuple[str, ...]
    time: str | None
    unknowns: tuple[str, ...]
    constants: dict[str, sympy.Expr]
    parameters: tuple[str, ...]
    terms: tuple[Term, ...]
    exact: dict[str, sympy.Expr]
    activation: sympy.Expr | None
    """The activation as an expression in `z`, or None for a built-in name."""
    activation_name: str
    """The built-in activation's name, or `custom`."""
    hidden: tuple[int, ...] | None
    """Layer widths; None until `pdec.plan.auto` chooses them."""
    fourier: tuple[int, float] | None
    """Random Fourier features ``(m, σ)`` in front of the network, or None."""
    learnable: tuple[Parameter, ...]
    """The learnable PDE parameters with their starting (and true) values."""
    reference: Path | None
    training: TrainingSettings
    output: OutputSettings
    warnings: tuple[SpecWarning, ...] = field(default=())
    choice: str = ""
    """What `pdec.plan.auto` chose, in one line."""
    embedding: tuple[tuple[str, sympy.Expr], ...] = ()
    """The network's inputs as expressions in the variables, when they are not the variables
    themselves (exact periodicity, `pdec.symbolic.periodic`); terms are then written in them."""
    reported: tuple[sympy.Basic, ...] = ()
    """The unknowns and the derivatives of them the spec's terms use, as written (before any
    rewriting in the network's output): what a run reports (`ProblemDef.solution`)."""
    defines: dict[str, sympy.Expr] = field(default_factory=dict)
    """The spec's `define:` names and values, for `pdec show`: the terms have them substituted."""
    constrained: dict[str, tuple[sympy.Expr, sympy.Expr]] = field(default_factory=dict)
    """Per unknown with exact conditions, ``(G, φ)``: the unknown is ``G + φ·N`` with ``N`` the
    network's output, and ``terms`` are written in ``N`` (`pdec.symbolic.hard`)."""

    @property
    def inputs(self) -> tuple[str, ...]:
        """The network's input names: the variables, or the embedding's names."""
        return tuple(name for name, _ in self.embedding) if self.embedding else self.variables

    @property
    def equations(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.kind == "equation")

    @property
    def conditions(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.kind != "equation")


def build_problem(spec: Spec, check_exact: bool = True) -> SymbolicProblem:
    """Parse and check every expression of ``spec``."""
    constants = _constants(spec)
    base = dict(
        variables=spec.variables,
        spatial=spec.spatial,
        time=spec.time.name if spec.time else None,
        unknowns=spec.unknowns,
        constants=tuple(constants),
        parameters=tuple(p.name for p in spec.parameters),
        indexed={spec.domain.indexed: spec.domain.variables} if getattr(spec.domain, "indexed", None) else {},
        defines={d.name: d.expr for d in spec.defines},
    )
    eq_scope = Scope(**base, context="an equation")
    cond_scope = Scope(**base, allow_dn=True, context="a condition")
    hidden = {**base, "parameters": (), "excluded": base["parameters"]}
    where_scope = Scope(**hidden, allow_unknowns=False, context="a selector")
    exact_scope = Scope(**hidden, allow_unknowns=False, context="`exact`")
    domain = checked_domain(spec.domain)
    geometry = geometry_of(domain)

    terms = [_equation(eq.name, eq.text, eq.weight, eq_scope) for eq in spec.equations]
    terms += [_condition(c, spec, cond_scope, where_scope, geometry, constants) for c in spec.conditions]
    _check_unknowns_used(spec, terms)
    exact = {name: parse_expr(text.text, exact_scope, text.loc) for name, text in spec.exact}
    values = {unknown_function(u, tuple(symbol(v) for v in spec.variables)) for u in spec.unknowns}
    used = set().union(values, *(unknown_atoms(t.residual) for t in terms if t.residual is not None))
    used |= {sympy.Derivative(u, symbol(t.periodic)) for t in terms if t.kind == "periodic" for u in values}  # matched slopes
    problem = SymbolicProblem(
        name=spec.name,
        description=spec.description,
        domain=domain,
        indexed=getattr(spec.domain, "indexed", None),
        time_interval=(spec.time.start, spec.time.end) if spec.time else None,
        variables=spec.variables,
        spatial=spec.spatial,
        time=base["time"],
        unknowns=spec.unknowns,
        constants=constants,
        defines=base["defines"],
        parameters=base["parameters"],
        terms=tuple(terms),
        exact=exact,
        activation=spec.model.activation_expr,
        activation_name="custom" if spec.model.activation_expr is not None else spec.model.activation,
        hidden=spec.model.hidden,
        fourier=spec.model.fourier,
        learnable=spec.parameters,
        reference=spec.reference.path if spec.reference else None,
        training=spec.training,
        output=spec.output,
        reported=tuple(sorted(used, key=str)),
    )
    warnings = check_reference(spec.reference, spec, geometry) if spec.reference else []
    if check_exact and exact:
        warnings += check_exact_solution(problem, geometry)
    if warnings:
        problem = SymbolicProblem(**{**problem.__dict__, "warnings": tuple(warnings)})
    return problem


def _constants(spec: Spec) -> dict[str, sympy.Expr]:
    """Each constant's value with earlier constants substituted (parsed once, by the spec reader)."""
    return {c.name: c.expr for c in spec.constants}


def _equation(name: str, text: Text, weight: float, scope: Scope) -> Term:
    lhs, rhs = parse_equation(text.text, scope, text.loc)
    residual = lhs - rhs
    if not residual.atoms(sympy.core.function.AppliedUndef):
        raise SpecError(f"equation `{name}` involves no unknown ({', '.join(scope.unknowns)})", text.loc)
    return Term(name, "equation", residual, weight, text.loc, text.text)


def _condition(c: Condition, spec: Spec, scope: Scope, where: Scope, geometry: Geometry, constants) -> Term:
    if c.kind == "periodic":
        if c.periodic not in spec.spatial or spec.domain.shape not in ("box", "cube"):
            raise SpecError(f"`periodic: {c.periodic}` needs a spatial variable of a box domain", c.loc)
        text = f"periodic in {c.periodic}"
        return Term(c.name, "periodic", None, c.weight, c.loc, text, periodic=c.periodic, points=c.points, hard=c.hard)
    if c.kind == "data":
        columns = data_columns(c, spec)
        return Term(c.name, "data", None, c.weight, c.loc, c.data.name, data=c.data, columns=columns, points=c.points)
    lhs, rhs = parse_equation(c.impose.text, scope, c.impose.loc)
    residual = lhs - rhs
    if not residual.atoms(sympy.core.function.AppliedUndef):
        raise SpecError("condition imposes nothing on an unknown", c.impose.loc)
    selector = parse_selector(c.on.text, where, c.on.loc)
    supports = tuple(_support(clause, spec, geometry, constants, c.on) for clause in selector)
    regions = {s.region == "initial" for s in supports}
    if len(regions) > 1:
        raise SpecError("a selector cannot mix the initial slice and the boundary: write two conditions", c.on.loc)
    kind = "initial" if supports[0].region == "initial" else "boundary"
    points = {s.region == "point" for s in supports}
    if len(points) > 1:
        raise SpecError("a selector cannot mix points with faces or the boundary: write two conditions", c.on.loc)
    if True in points and residual.has(NormalDerivative):
        raise SpecError("`dn` needs the boundary's normal; a condition at a point has none", c.impose.loc)
    if kind == "initial" and residual.has(NormalDerivative):
        raise SpecError("`dn` is the normal derivative on the spatial boundary, not at the initial time", c.impose.loc)
    _check_finite_data(residual, supports, spec, geometry, constants, c.impose)
    return Term(c.name, kind, residual, c.weight, c.impose.loc, c.impose.text, supports=supports, points=c.points, hard=c.hard)


def _support(clause, spec: Spec, geometry: Geometry, constants, on: Text) -> Support:
    """Classify one ``and`` clause and check that it selects something."""
    relations = [r for r in clause if isinstance(r, Relation)]
    time = spec.time.name if spec.time else None
    if BOUNDARY in clause:
        region = Support("boundary", relations=tuple(relations))
        if any(_fixes(r, time, constants) for r in relations):
            raise SpecError("`boundary` is the spatial boundary; do not fix the time there", on.loc)
    else:
        region = _point(relations, spec, geometry, constants)
        for r in relations if region is None else ():
            if _fixes(r, time, constants):
                value = _number(r.rhs if r.lhs == symbol(time) else r.lhs, constants, r.loc)
                if not np.isclose(value, spec.time.start, rtol=0, atol=1e-12 * (1 + abs(spec.time.start))):
                    raise SpecError(
                        f"conditions hold at the initial time {time} = {spec.time.start:g}; "
                        f"`{r}` is not supported (only initial conditions)",
                        r.loc,
                    )
                region = Support("initial", relations=tuple(x for x in relations if x is not r))
                break
        if region is None and isinstance(geometry, BoxGeometry):
            for r in relations:
                for axis, var in enumerate(spec.spatial):
                    if _fixes(r, var, constants):
                        value = _number(r.rhs if r.lhs == symbol(var) else r.lhs, constants, r.loc)
                        lo, hi = geometry.lo[axis], geometry.hi[axis]
                        for side, end in ((0, lo), (1, hi)):
                            if np.isclose(value, end, rtol=0, atol=1e-12 * (1 + abs(end))):
                                region = Support("face", axis, side, tuple(x for x in relations if x is not r))
                        if region is None:
                            raise SpecError(
                                f"`{r}` is not on the boundary: {var} ranges over [{lo:g}, {hi:g}]", r.loc
                            )
                if region is not None:
                    break
        if region is None:
            if not any(r.op == "=" for r in relations):
                raise SpecError(
                    "this selector describes a region, not a part of the boundary: "
                    "use an equality (`x = 0`) or `boundary`",
                    relations[0].loc if relations else on.loc,
                )
            region = Support("boundary", relations=tuple(relations))
    interval = (spec.time.start, spec.time.end) if spec.time else None
    points = sample_support(region, spec.variables, interval, geometry, CHECK_POINTS * 8, np.random.default_rng(0), constants)[0]
    if len(points) == 0:
        where = relations[0].loc if relations else on.loc
        raise SpecError(
            "this selector picks no part of the "
            + ("initial slice" if region.region == "initial" else "boundary")
            + " (or only a set of measure zero)",
            where,
        )
    return region


def _check_finite_data(residual, supports, spec: Spec, geometry: Geometry, constants, impose: Text) -> None:
    """What a condition imposes (its residual with the unknown set to zero) is finite where it holds:
    `u = log(x)` on `x = 0` would make the loss NaN at the first step, reported as divergence."""
    unknown_parts = (sympy.Derivative, sympy.core.function.AppliedUndef, NormalDerivative, Laplacian)
    data = residual.replace(lambda e: isinstance(e, unknown_parts), lambda e: sympy.S.Zero)
    data = data.xreplace({symbol(k): v for k, v in constants.items() if symbol(k) in data.free_symbols})
    data = data.xreplace({symbol(p.name): sympy.Float(p.initial) for p in spec.parameters})
    interval = (spec.time.start, spec.time.end) if spec.time else None
    rng = np.random.default_rng(0)
    for support in supports:
        X = sample_support(support, spec.variables, interval, geometry, CHECK_POINTS, rng, constants)[0]
        try:
            values = evaluate(data, {symbol(v): X[:, i] for i, v in enumerate(spec.variables)}, len(X))
        except (TypeError, KeyError):
            return  # a function we cannot evaluate numerically: the run will tell
        if not np.isfinite(values).all():
            bad = int(np.argmin(np.isfinite(values)))
            at = ", ".join(f"{v}={X[bad, i]:.3g}" for i, v in enumerate(spec.variables))
            raise SpecError(f"the imposed value is not finite at ({at}), where this condition holds", impose.loc)


def _point(relations, spec: Spec, geometry: Geometry, constants) -> Support | None:
    """A clause that fixes every spatial variable (``x = 0 and y = 0``): a point of the domain,
    closed (a pressure pin may lie on the boundary or inside), at all times. Not in one
    dimension, where ``x = 0`` is a face and ``x = 0.5`` most likely a mistake."""
    if len(spec.spatial) < 2:
        return None
    fixed = {}
    for r in relations:
        for var in spec.spatial:
            if _fixes(r, var, constants):
                fixed[var] = (r, _number(r.rhs if r.lhs == symbol(var) else r.lhs, constants, r.loc))
    if len(fixed) < len(spec.spatial) or any(_fixes(r, spec.time.name if spec.time else None, constants) for r in relations):
        return None
    point = np.array([fixed[v][1] for v in spec.spatial])
    if not contains(geometry, point[None])[0]:
        raise SpecError(f"the point ({', '.join(f'{v:g}' for v in point)}) lies outside the domain", fixed[spec.spatial[0]][0].loc)
    used = {id(r) for r, _ in fixed.values()}
    return Support("point", relations=tuple(r for r in relations if id(r) not in used), point=tuple(float(v) for v in point))


def _fixes(r: Relation, var: str | None, constants) -> bool:
    """Whether ``r`` reads ``var = number`` (either way round; constants are numbers)."""
    if var is None or r.op != "=":
        return False
    s, numbers = symbol(var), {symbol(k) for k in constants}
    return (r.lhs == s and r.rhs.free_symbols <= numbers) or (r.rhs == s and r.lhs.free_symbols <= numbers)


def _number(expr: sympy.Expr, constants: dict[str, sympy.Expr], loc: Loc) -> float:
    return constant_value(expr, constants, "the selector's value", loc)


def _check_unknowns_used(spec: Spec, terms: list[Term]) -> None:
    used = set()
    for t in terms:
        if t.kind == "equation":
            used |= {f.func.__name__ for f in t.residual.atoms(sympy.core.function.AppliedUndef)}
    for name, loc in zip(spec.unknowns, spec.unknown_locs):
        if name not in used:
            raise SpecError(f"unknown `{name}` appears in no equation", loc)


def check_exact_solution(problem: SymbolicProblem, geometry: Geometry) -> list[SpecWarning]:
    """Warn where `exact` does not satisfy an equation or condition."""
    params = {symbol(p.name): sympy.Float(p.true) for p in problem.learnable if p.true is not None}
    if len(params) < len(problem.learnable) or set(problem.exact) != set(problem.unknowns):
        return []  # not everything is known: nothing to check
    variables = tuple(symbol(v) for v in problem.variables)
    spatial = tuple(symbol(v) for v in problem.spatial)
    constants = {symbol(k): v for k, v in problem.constants.items()}
    normals = tuple(sympy.Symbol(f"__normal{i}", real=True) for i in range(len(spatial)))
    replacements = {sympy.Function(u, real=True)(*variables): problem.exact[u] for u in problem.unknowns}
    rng = np.random.default_rng(0)
    warnings = []
    for term in problem.terms:
        if term.residual is None:
            continue
        residual = expand_laplacians(term.residual, spatial)
        residual = residual.replace(
            lambda e: isinstance(e, NormalDerivative),
            lambda e: sympy.Add(*(n * sympy.diff(e.args[0], s) for n, s in zip(normals, spatial))),
        )
        residual = residual.xreplace(replacements).doit().xreplace(constants).xreplace(params)
        if term.kind == "equation":
            space = geometry.sample_interior(CHECK_POINTS, rng)
            X, N = space, np.zeros_like(space)
            if problem.time_interval:
                t0, t1 = problem.time_interval
                X = np.hstack([space, t0 + (t1 - t0) * rng.random((CHECK_POINTS, 1))])
        else:
            samples = [
                sample_support(s, problem.variables, problem.time_interval, geometry, CHECK_POINTS, rng, problem.constants)
                for s in term.supports
            ]
            X = np.vstack([x for x, _ in samples])
            N = np.vstack([n for _, n in samples])
        env = {v: X[:, i] for i, v in enumerate(variables)} | {n: N[:, i] for i, n in enumerate(normals)}
        try:
            values = evaluate(residual, env, len(X))
            parts = [np.abs(evaluate(a, env, len(X))) for a in sympy.Add.make_args(residual)]
            scale = max([1.0] + [float(np.nanmax(p)) for p in parts if np.isfinite(p).any()])
        except (TypeError, KeyError):
            continue  # a function we cannot evaluate numerically: skip the check
        if len(values) == 0:
            continue
        if not np.all(np.isfinite(values)):
            bad = int(np.argmin(np.isfinite(values)))
            at = ", ".join(f"{v}={X[bad, i]:.3g}" for i, v in enumerate(problem.variables))
            warnings.append(
                SpecWarning(f"`exact` in {term.kind} `{term.name}` is not finite at ({at}): is it defined on the domain?", term.loc)
            )
            continue
        worst = int(np.argmax(np.abs(values)))
        if not np.abs(values[worst]) <= EXACT_TOLERANCE * scale:
            at = ", ".join(f"{v}={X[worst, i]:.3g}" for i, v in enumerate(problem.variables))
            warnings.append(
                SpecWarning(
                    f"`exact` does not satisfy {term.kind} `{term.name}`: residual {values[worst]:.3g} at ({at})",
                    term.loc,
                )
            )
    return warnings
