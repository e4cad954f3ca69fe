"""`pdec show`: the compiled problem as a person reads it."""

from __future__ import annotations

from .frontend import Compiled
from .lang.printer import to_text
from .taylor import plan_streams


def _domain(spec) -> str:
    d = spec.domain
    if d.shape == "ball":
        center = ", ".join(f"{c:g}" for c in d.center)
        text = f"ball in ({', '.join(d.variables)}), center ({center}), radius {d.radius:g}"
    elif d.shape == "cube":
        lo, hi = d.bounds[0]
        text = f"cube [{lo:g}, {hi:g}]^{len(d.variables)} in {d.indexed}1 … {d.indexed}{len(d.variables)}"
    else:
        text = " × ".join(f"{v} ∈ [{lo:g}, {hi:g}]" for v, (lo, hi) in zip(d.variables, d.bounds))
    if spec.time:
        text += f", {spec.time.name} ∈ [{spec.time.start:g}, {spec.time.end:g}]"
    return text


def describe(compiled: Compiled) -> str:
    """A multi-line description: equations, conditions, derivatives, streams."""
    spec, problem, graph = compiled.spec, compiled.problem, compiled.graph
    out = [f"{spec.name}" + (f" — {spec.description}" if spec.description else "")]
    out.append(f"  domain     {_domain(spec)}")
    out.append(f"  inputs     {', '.join(problem.variables)}")
    out.append(f"  unknowns   {', '.join(problem.unknowns)}")
    if problem.constants:
        out.append("  constants  " + ", ".join(f"{k} = {to_text(v)}" for k, v in problem.constants.items()))
    if spec.parameters:
        out.append("  learnable  " + ", ".join(f"{p.name} (from {p.initial:g})" for p in spec.parameters))
    out.append("")
    plans = {t.name: t for t in graph.terms}
    for term in problem.terms:
        tp = plans[term.name]
        where = ""
        if term.supports:
            where = f"   on {_supports_text(term, spec)}"
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
        streams = plan_streams(ps.operators, len(problem.variables))
        out.append(f"    {ps.name} ({', '.join(ps.terms)}): {streams.n_streams} stream{'s' * (streams.n_streams != 1)}")
        for line in streams.describe(problem.variables):
            out.append(f"      - {line}")
    return "\n".join(out)


def _supports_text(term, spec) -> str:
    spec_text = []
    for s in term.supports:
        relations = " and ".join(str(r) for r in s.relations)
        if s.region == "initial":
            base = "initial slice"
        elif s.region == "face":
            var, bounds = spec.spatial[s.axis], spec.domain.bounds[s.axis]
            base = f"{var} = {bounds[s.side]:g}"
        else:
            base = "boundary"
        spec_text.append(base + (f" where {relations}" if relations else ""))
    return " or ".join(spec_text)
