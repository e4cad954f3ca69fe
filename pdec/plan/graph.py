"""The operator graph: which derivatives each loss term needs, on which points.

The plan reads the SymPy residuals and, for every term, collects the
derivative atoms it uses as Taylor-runtime `Operator`s. Terms evaluated on the
same points share one forward pass: all equations use the interior points, so
their operators are planned together (one `StreamPlan`); each condition has its
own points and its own, usually much smaller, plan. The stream plans are made
here, once: `pdec show`, the emitter and (through the emitted problem) the
runtime read them.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from ..lang.nodes import Laplacian, NormalDerivative, laplacian_power, unknown_atoms
from ..lang.printer import to_text
from ..symbolic.problem import SymbolicProblem, Term
from ..taylor.operators import Laplacian as LaplacianOp
from ..taylor.operators import Operator, Partial, canonical_name
from ..taylor.streams import StreamPlan, plan_streams


@dataclass(frozen=True)
class Need:
    """One derivative of one unknown, as the runtime names and computes it."""

    unknown: str
    operator: Operator
    name: str


@dataclass(frozen=True)
class TermPlan:
    name: str
    kind: str
    needs: tuple[Need, ...]
    linear: bool
    """Whether the residual is affine in the unknowns and their derivatives."""
    order: int
    residual: str
    """The residual in the spec language, for display."""


@dataclass(frozen=True)
class PointSet:
    """Terms evaluated on the same points, and the operators they need together."""

    name: str
    terms: tuple[str, ...]
    operators: tuple[Operator, ...]
    plan: StreamPlan
    """The Taylor streams that carry ``operators`` in one pass."""


@dataclass(frozen=True)
class OperatorGraph:
    variables: tuple[str, ...]
    spatial: tuple[str, ...]
    unknowns: tuple[str, ...]
    terms: tuple[TermPlan, ...]
    point_sets: tuple[PointSet, ...]
    everything: PointSet
    """Every operator any term needs, in one pass (`Problem.derivatives(X)`)."""

    @property
    def operators(self) -> tuple[Operator, ...]:
        """Every operator any term needs."""
        return self.everything.operators

    @property
    def max_order(self) -> int:
        return max((t.order for t in self.terms), default=0)

    def __repr__(self) -> str:
        lines = [f"OperatorGraph(variables={list(self.variables)}, unknowns={list(self.unknowns)})"]
        for t in self.terms:
            needs = ", ".join(n.name for n in t.needs)
            lines.append(f"  {t.kind} {t.name}: {t.residual}  [order {t.order}, {'linear' if t.linear else 'nonlinear'}; needs {needs}]")
        for ps in self.point_sets:
            lines.append(f"  points {ps.name}: {', '.join(map(str, ps.operators))}")
        return "\n".join(lines)


def _operator_key(op: Operator):
    return (op.order, isinstance(op, LaplacianOp), str(op))


def atom_need(atom: sympy.Basic, problem: SymbolicProblem, laplacian_samples: int = 0, variables=None) -> list[Need]:
    """The runtime operators behind one SymPy derivative atom, over the network's inputs
    (``variables``: over these instead — the spec's variables, for what a run reports)."""
    variables = problem.inputs if variables is None else variables
    if isinstance(atom, NormalDerivative):
        unknown = atom.args[0].func.__name__
        return [Need(unknown, Partial((i,)), canonical_name(unknown, Partial((i,)), variables)) for i in _spatial(problem, variables)]
    if isinstance(atom, Laplacian):
        inner, power = laplacian_power(atom)
        op = LaplacianOp(_spatial(problem, variables), power, laplacian_samples if power == 1 else 0)
    elif isinstance(atom, sympy.Derivative):
        inner = atom.expr
        names = [str(v) for v, count in atom.variable_count for _ in range(count)]
        op = Partial(tuple(sorted(variables.index(n) for n in names)))
    else:
        inner, op = atom, Partial(())
    unknown = inner.func.__name__
    return [Need(unknown, op, canonical_name(unknown, op, variables))]


def _spatial(problem: SymbolicProblem, variables) -> tuple[int, ...]:
    """The spatial variables' positions (Laplacians and normal derivatives act on them; with
    an embedding these are rewritten away before planning, `symbolic.periodic`)."""
    return tuple(variables.index(s) for s in problem.spatial)


derivative_atoms = unknown_atoms
"""The outermost unknown-bearing atoms of a residual (`lang.nodes.unknown_atoms`)."""


def is_linear(expr: sympy.Expr, atoms: set[sympy.Basic]) -> bool:
    """Affine in the atoms: every second derivative with respect to them vanishes."""
    placeholders = {a: sympy.Dummy() for a in atoms}
    e = expr.xreplace(placeholders)
    symbols = list(placeholders.values())
    return all(sympy.diff(e, a, b) == 0 for i, a in enumerate(symbols) for b in symbols[i:])


def _term_plan(term: Term, problem: SymbolicProblem, samples: int) -> TermPlan:
    variables = problem.inputs
    if term.kind == "periodic":
        axis = variables.index(term.periodic)
        needs = [
            Need(u, op, canonical_name(u, op, variables)) for u in problem.unknowns for op in (Partial(()), Partial((axis,)))
        ]
        return TermPlan(term.name, term.kind, tuple(needs), True, 1, f"u and d(u,{term.periodic}) match across {term.periodic}")
    if term.kind == "data":
        observed = [u for u, _ in term.columns if u in problem.unknowns]
        needs = [Need(u, Partial(()), u) for u in observed]
        return TermPlan(term.name, term.kind, tuple(needs), True, 0, f"{', '.join(observed)} = observations in {term.text}")
    atoms = derivative_atoms(term.residual)
    needs: dict[tuple[str, Operator], Need] = {}
    for atom in atoms:
        for need in atom_need(atom, problem, samples):
            needs[(need.unknown, need.operator)] = need
    ordered = sorted(needs.values(), key=lambda n: (problem.unknowns.index(n.unknown), _operator_key(n.operator)))
    order = max((n.operator.order for n in ordered), default=0)
    return TermPlan(term.name, term.kind, tuple(ordered), is_linear(term.residual, atoms), order, to_text(term.residual))


def plan(problem: SymbolicProblem) -> OperatorGraph:
    """Build the operator graph of a checked problem."""
    samples = problem.training.laplacian_samples
    terms = tuple(_term_plan(t, problem, samples) for t in problem.terms)
    n_inputs = len(problem.inputs)
    point_sets = []
    interior = [t for t in terms if t.kind == "equation"]
    point_sets.append(_point_set("interior", interior, n_inputs))
    for t in terms:
        if t.kind != "equation":
            point_sets.append(_point_set(t.name, [t], n_inputs))
    everything = _point_set("all", list(terms), n_inputs)
    return OperatorGraph(problem.variables, problem.spatial, problem.unknowns, terms, tuple(point_sets), everything)


def _point_set(name: str, terms: list[TermPlan], n_inputs: int) -> PointSet:
    ops = tuple(sorted({n.operator for t in terms for n in t.needs}, key=_operator_key))
    return PointSet(name, tuple(t.name for t in terms), ops, plan_streams(ops, n_inputs))
