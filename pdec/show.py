"""`pdec show`: the compiled problem as a person reads it."""

from __future__ import annotations

from .contract import BallDomain
from .lang.printer import to_text
from .plan.graph import OperatorGraph
from .symbolic.problem import SymbolicProblem


def _domain(problem: SymbolicProblem) -> str:
    d, spatial = problem.domain, problem.spatial
    if isinstance(d, BallDomain):
        center = ", ".join(f"{c:g}" for c in d.center)
        text = f"ball in ({', '.join(spatial)}), center ({center}), radius {d.radius:g}"
    elif problem.indexed:
        text = f"cube [{d.lo[0]:g}, {d.hi[0]:g}]^{len(spatial)} in {problem.indexed}1 … {problem.indexed}{len(spatial)}"
    else:
        text = " × ".join(f"{v} ∈ [{lo:g}, {hi:g}]" for v, lo, hi in zip(spatial, d.lo, d.hi))
    if problem.time:
        t0, t1 = problem.time_interval
        text += f", {problem.time} ∈ [{t0:g}, {t1:g}]"
    return text


def describe(problem: SymbolicProblem, graph: OperatorGraph) -> str:
    """A multi-line description: equations, conditions, derivatives, streams. With exact
    conditions the residuals are shown as trained: in the network's output ``N`` (named ``u``)."""
    out = [f"{problem.name}" + (f" — {problem.description}" if problem.description else "")]
    out.append(f"  domain     {_domain(problem)}")
    out.append(f"  inputs     {', '.join(problem.variables)}")
    out.append(f"  unknowns   {', '.join(problem.unknowns)}")
    if problem.constants:
        out.append("  constants  " + ", ".join(f"{k} = {to_text(v)}" for k, v in problem.constants.items()))
    if problem.learnable:
        out.append("  learnable  " + ", ".join(f"{p.name} (from {p.initial:g})" for p in problem.learnable))
    if problem.embedding:
        out.append("  network    inputs " + ", ".join(f"{n} = {to_text(e)}" for n, e in problem.embedding) + " (exactly periodic)")
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
        spec_text.append(base + (f" where {relations}" if relations else ""))
    return " or ".join(spec_text)
