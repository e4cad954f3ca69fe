"""`pdec show`: the compiled problem as a person reads it."""

from __future__ import annotations

import numpy as np

from .contract import BallDomain, BoxDomain, CSGDomain, HalfspaceDomain, PolygonDomain
from .boundary_parts import sample_parts
from .geometry import geometry_of
from .lang.printer import to_text
from .plan.graph import OperatorGraph
from .lang.scope import symbol
from .symbolic.problem import SymbolicProblem
from .symbolic.support import holds

PART_SAMPLES = 20_000


def _shape(d, spatial) -> str:
    """One line for a primitive; a composite's operands on the lines below, indented."""
    if isinstance(d, BallDomain):
        return f"ball center ({', '.join(f'{c:g}' for c in d.center)}), radius {d.radius:g}"
    if isinstance(d, BoxDomain):
        return "box " + " × ".join(f"{v} ∈ [{lo:g}, {hi:g}]" for v, lo, hi in zip(spatial, d.lo, d.hi))
    if isinstance(d, PolygonDomain):
        return "polygon " + " ".join(f"({x:g}, {y:g})" for x, y in d.vertices)
    if isinstance(d, HalfspaceDomain):
        return "halfspace " + " + ".join(f"{c:g}·{v}" for c, v in zip(d.normal, spatial)) + f" ≤ {d.offset:g}"
    lines = [d.op + (" (the first minus the rest)" if d.op == "difference" else "")]
    for o in d.operands:
        lines += ["  " + line for line in _shape(o, spatial).split("\n")]
    return "\n".join(lines)


def _domain(problem: SymbolicProblem) -> str:
    d, spatial = problem.domain, problem.spatial
    if isinstance(d, BallDomain):
        center = ", ".join(f"{c:g}" for c in d.center)
        text = f"ball in ({', '.join(spatial)}), center ({center}), radius {d.radius:g}"
    elif isinstance(d, BoxDomain) and problem.indexed:
        text = f"cube [{d.lo[0]:g}, {d.hi[0]:g}]^{len(spatial)} in {problem.indexed}1 … {problem.indexed}{len(spatial)}"
    elif isinstance(d, BoxDomain):
        text = " × ".join(f"{v} ∈ [{lo:g}, {hi:g}]" for v, lo, hi in zip(spatial, d.lo, d.hi))
    else:
        g = geometry_of(d)
        exact = isinstance(d, PolygonDomain)
        (volume, dv) = (g.volume(), 0.0) if exact else g.volume_estimate
        (area, da) = (g.boundary_measure(), 0.0) if exact else g.boundary_estimate
        text = f"in ({', '.join(spatial)}): " + _shape(d, spatial).replace("\n", "\n" + " " * 13)
        text += f"\n             measure {volume:.4g}, boundary {area:.4g}" if exact else (
            f"\n             measure {volume:.4g} ± {dv:.1g}, boundary {area:.4g} ± {da:.1g} (Monte Carlo)"
        )
    if problem.time:
        t0, t1 = problem.time_interval
        text += f", {problem.time} ∈ [{t0:g}, {t1:g}]"
    return text


def _part_measure(support, problem: SymbolicProblem) -> str:
    """A boundary part of a composite or polygon: its measure, the sum over the boundary's pieces
    of each one's measure times the share of its points the part keeps (`sample_parts`: a small
    part is measured on its own surface, not as a share of the whole boundary)."""
    names = set(map(symbol, problem.spatial)) | {symbol(k) for k in problem.constants}
    relations = [r for r in support.relations if r.lhs.free_symbols | r.rhs.free_symbols <= names]

    def accept(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        env = {symbol(v): X[:, i] for i, v in enumerate(problem.spatial)}
        keep = np.ones(len(X), bool)
        for r in relations:
            keep &= holds(r, env, len(X), problem.constants)
        return X, keep

    parts = sample_parts(geometry_of(problem.domain), PART_SAMPLES, np.random.default_rng(0), accept)
    measure, error = sum(p[2] for p in parts), float(np.sqrt(sum(p[3] ** 2 for p in parts)))
    return f" (measure {measure:.3g} ± {error:.1g})" if error else f" (measure {measure:.3g})"


def describe(problem: SymbolicProblem, graph: OperatorGraph) -> str:
    """A multi-line description: equations, conditions, derivatives, streams. With exact
    conditions the residuals are shown as trained: in the network's output ``N`` (named ``u``)."""
    out = [f"{problem.name}" + (f" — {problem.description}" if problem.description else "")]
    out.append(f"  domain     {_domain(problem)}")
    out.append(f"  inputs     {', '.join(problem.variables)}")
    out.append(f"  unknowns   {', '.join(problem.unknowns)}")
    if problem.constants:
        out.append("  constants  " + ", ".join(f"{k} = {to_text(v)}" for k, v in problem.constants.items()))
    if problem.defines:
        out.append("  defines    " + ", ".join(f"{k} = {to_text(v)}" for k, v in problem.defines.items()))
    if problem.learnable:
        out.append("  learnable  " + ", ".join(f"{p.name} (from {p.initial:g})" for p in problem.learnable))
    if problem.embedding:
        out.append("  network    inputs " + ", ".join(f"{n} = {to_text(e)}" for n, e in problem.embedding) + " (exactly periodic)")
    if problem.fourier:
        m, scale = problem.fourier
        out.append(f"  network    {m} random Fourier features cos/sin(2π B x), B ~ N(0, {scale:g}²), before the first layer")
    for name, (G, phi) in problem.constrained.items():
        out.append(f"  exactly    {name} = G + φ·N (N: the network; conditions met by construction)")
        out.append(f"               G = {to_text(G)}")
        out.append(f"               φ = {to_text(phi)}")
    out.append("")
    plans = {t.name: t for t in graph.terms}
    for term in problem.terms:
        tp = plans[term.name]
        where = ""
        if term.supports:
            where = f"   on {_supports_text(term, problem)}"
        residual = f"{tp.residual} = 0" if term.residual is not None else tp.residual
        out.append(f"  {term.kind:<9} {term.name:<10} {residual}{where}")
        out.append(
            f"  {'':<9} {'':<10} needs {', '.join(n.name for n in tp.needs)}"
            f"  (order {tp.order}, {'linear' if tp.linear else 'nonlinear'}, weight {term.weight:g})"
        )
    if problem.exact:
        out.append("")
        for name, expr in problem.exact.items():
            out.append(f"  exact     {name} = {to_text(expr)}")
    out.append("")
    out.append("  Taylor streams (one forward pass per point set, weights shared over streams):")
    for ps in graph.point_sets:
        streams = ps.plan
        out.append(f"    {ps.name} ({', '.join(ps.terms)}): {streams.n_streams} stream{'s' * (streams.n_streams != 1)}")
        for line in streams.describe(problem.inputs):
            out.append(f"      - {line}")
    return "\n".join(out)


def _supports_text(term, problem: SymbolicProblem) -> str:
    spec_text = []
    for s in term.supports:
        relations = " and ".join(str(r) for r in s.relations)
        if s.region == "initial":
            base = "initial slice"
        elif s.region == "face":
            var = problem.spatial[s.axis]
            base = f"{var} = {(problem.domain.lo, problem.domain.hi)[s.side][s.axis]:g}"
        elif s.region == "point":
            base = "the point (" + ", ".join(f"{v} = {c:g}" for v, c in zip(problem.spatial, s.point)) + ")"
        else:
            base = "boundary"
        base += f" where {relations}" if relations else ""
        if s.region == "boundary" and isinstance(problem.domain, CSGDomain | PolygonDomain):
            base += _part_measure(s, problem)
        spec_text.append(base)
    return " or ".join(spec_text)
