"""Operator graph + SymPy residuals → the Python source of a problem module.

The module is small functions over torch tensors — one residual function
per equation and condition (printed from the SymPy tree, constants folded,
common subexpressions shared), exact solutions, point filters of selectors,
and the activation with its derivatives when the spec writes one as an
expression in `z` — and ends with ONE `pdec.contract.ProblemDef` object,
``PROBLEM``, that names them together with the domain, the point sets and
their Taylor plans, and the settings. The runtime reads that object and
nothing else. `pdec.compile` imports the module; `pdec codegen` inlines it,
with the runtime, into a standalone script. No user text is pasted in: every
identifier comes from `Namer`, every number from a parsed value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

import sympy

from .. import __version__

from ..errors import PdecError
from ..lang.numeric import evaluate
from ..lang.nodes import NormalDerivative
from ..lang.printer import to_text
from ..lang.scope import symbol
from ..plan.graph import OperatorGraph, atom_need, derivative_atoms
from ..symbolic.periodic import to_network
from ..symbolic.problem import SymbolicProblem, Term
from ..taylor.operators import Laplacian as LaplacianOp
from ..taylor.operators import Partial, canonical_name
from .names import Namer
from .printer import to_torch

MAX_ACTIVATION_ORDER = 4
RUNTIME_IMPORTS = (
    "from pdec.contract import BallDomain, BoxDomain, CSGDomain, Data, HalfspaceDomain, OutputSettings, Points, PolygonDomain, ProblemDef, Support, Term, TrainingSettings",
    "from pdec.taylor import Laplacian, Partial, plan_streams",
)
"""What an emitted module imports from pdec; standalone scripts inline these modules instead."""


def _domain_literal(domain) -> str:
    """The constructor call of a contract domain, operands nested (`pdec.contract`)."""
    args = []
    for f in dataclasses.fields(domain):
        value = getattr(domain, f.name)
        args.append("(" + "".join(_domain_literal(o) + ", " for o in value) + ")" if f.name == "operands" else _literal(value))
    return f"{type(domain).__name__}({', '.join(args)})"


def _literal(value) -> str:
    """A Python literal for plain data (str, float, int, tuples, dicts)."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return repr(value)
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Partial):
        return f"Partial({_literal(value.index)})"
    if isinstance(value, LaplacianOp):
        return f"Laplacian({_literal(value.over)}, power={value.power}, samples={value.samples})"
    if dataclasses.is_dataclass(value):
        return _settings(value)
    raise TypeError(f"no literal for {type(value).__name__}")


def _settings(value) -> str:
    """``Type(field=value, …)`` for a settings dataclass, naming only the fields that
    differ from their defaults (the defaults live in `pdec.contract`, once)."""
    default = type(value)()
    changed = [
        f"{f.name}={_literal(getattr(value, f.name))}"
        for f in dataclasses.fields(value)
        if getattr(value, f.name) != getattr(default, f.name)
    ]
    return f"{type(value).__name__}({', '.join(changed)})"


class _Emitter:
    def __init__(self, problem: SymbolicProblem, graph: OperatorGraph) -> None:
        self.problem, self.graph = problem, graph
        self.namer = Namer()
        self.variables = self.problem.variables
        self.constants = {symbol(k): v for k, v in self.problem.constants.items()}

    def _fold(self, expr: sympy.Expr) -> sympy.Expr:
        """Constants substituted, and every closed numeric subexpression made one float.

        ``sqrt(Re^2/4 + 4*pi^2)`` must not reach torch as ``torch.sqrt(<float>)``.
        """
        expr = expr.xreplace(self.constants)

        def to_float(node: sympy.Expr) -> sympy.Float:
            value = float(evaluate(node, {}, 1)[0])
            if not math.isfinite(value):
                raise PdecError(f"the constant expression `{to_text(node)}` is not finite in float64")
            return sympy.Float(value, 17)

        return expr.replace(lambda e: e.is_number and not e.is_Atom, to_float)

    def _function(self, name: str, args: str, doc: str, expr: sympy.Expr, bindings: dict[sympy.Basic, tuple[str, str]]) -> list[str]:
        """``def name(args):`` binding locals, sharing subexpressions, returning ``expr``.

        ``bindings`` maps each atom to (identifier, the source that computes it).
        """
        placeholders = {atom: sympy.Dummy(ident) for atom, (ident, _) in bindings.items()}
        expr = expr.xreplace(placeholders)
        names = {placeholders[atom]: ident for atom, (ident, _) in bindings.items()}
        replacements, (reduced,) = sympy.cse([expr], symbols=sympy.numbered_symbols("_cse", cls=sympy.Dummy))
        lines = [f"def {name}({args}):", f'    """{doc}"""']
        used = expr.free_symbols
        for atom, (ident, source) in sorted(bindings.items(), key=lambda kv: kv[1][0]):
            if placeholders[atom] in used:
                lines.append(f"    {ident} = {source}")
        for i, (sym, sub) in enumerate(replacements):
            names[sym] = f"_t{i}"
            lines.append(f"    _t{i} = {to_torch(sub, names)}")
        lines.append(f"    return {to_torch(reduced, names)}")
        return lines

    def _variable_bindings(self) -> dict[sympy.Basic, tuple[str, str]]:
        """The variables from the columns of ``X``, and embedded network inputs from their
        expressions (written on ``X`` directly: bindings are emitted in name order)."""
        bindings = {symbol(v): (self.namer.variable(v), f"X[:, {i}]") for i, v in enumerate(self.variables)}
        for name, expr in self.problem.embedding:
            if symbol(name) not in bindings:
                bindings[symbol(name)] = (self.namer.variable(name), self._on_columns(expr))
        return bindings

    def _on_columns(self, expr: sympy.Expr) -> str:
        """Torch source for an expression of the variables, written on the columns of ``X``."""
        return to_torch(self._fold(expr), {symbol(v): f"X[:, {i}]" for i, v in enumerate(self.variables)})

    def residual(self, term: Term) -> tuple[str, list[str]]:
        name = self.namer.function("residual", term.name)
        doc = f"{term.kind} {term.name}: {to_text(term.residual)} = 0"
        return name, self._over_derivatives(name, doc, term.residual)

    def _over_derivatives(self, name: str, doc: str, expr: sympy.Expr) -> list[str]:
        """``def name(X, D, P, normals=None)`` computing ``expr`` from the points, the network's
        derivatives, the learnable parameters and the outward normals."""
        spatial = tuple(symbol(s) for s in self.problem.spatial)
        normals = [sympy.Symbol(f"__normal_{s}") for s in self.problem.spatial]
        expr = expr.replace(  # before folding: dn of a constant (exact data G = 0) is a number to SymPy
            lambda e: isinstance(e, NormalDerivative),
            lambda e: sympy.Add(*(n * sympy.diff(e.args[0], s) for n, s in zip(normals, spatial))),
        )
        expr = self._fold(expr)
        bindings = self._variable_bindings()
        for p in self.problem.parameters:
            bindings[symbol(p)] = (self.namer.parameter(p), f"P[{p!r}]")
        for n, s in zip(normals, self.problem.spatial):
            bindings[n] = (self.namer.variable(f"n{s}"), f"normals[:, {self.problem.spatial.index(s)}]")
        for atom in derivative_atoms(expr):
            (need,) = atom_need(atom, self.problem, self.problem.training.laplacian_samples)
            ident = self.namer.derivative(need.unknown, need.operator, self.problem.inputs)
            bindings[atom] = (ident, f"D[{need.name!r}]")
        return self._function(name, "X, D, P, normals=None", doc, expr, bindings)

    def solution(self, out: list[str]) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
        """With exact conditions or an embedding: every unknown and derivative the spec uses
        (``problem.reported``), as functions of the network's derivatives, and the names each
        needs. Those the `everything` plan cannot feed are left out; the values never are
        (`Problem.solution` feeds them from a plain forward pass)."""
        problem = self.problem
        if not (problem.constrained or problem.embedding):
            return {}, {}
        values = {canonical_name(u, Partial(()), problem.inputs) for u in problem.unknowns}
        available = {canonical_name(u, op, problem.inputs) for op in self.graph.everything.operators for u in problem.unknowns}
        functions, needs = {}, {}
        samples = problem.training.laplacian_samples
        atoms, spatial = [], [symbol(s) for s in problem.spatial]
        for atom in problem.reported:  # a normal derivative is reported as its first partials
            atoms += [sympy.Derivative(atom.args[0], s) for s in spatial] if isinstance(atom, NormalDerivative) else [atom]
        for atom in dict.fromkeys(atoms):
            expr = to_network(atom, problem)
            wanted = {n.name for a in derivative_atoms(expr) for n in atom_need(a, problem, samples)}
            (need,) = atom_need(atom, problem, samples, problem.variables)
            if need.operator != Partial(()) and not wanted <= available | values:
                continue
            ident = self.namer.derivative(need.unknown, need.operator, self.variables)
            name = self.namer.function("solution", ident)
            doc = f"{need.name} from the network's derivatives (exact conditions, embedded inputs)"
            functions[need.name] = self._defined((name, self._over_derivatives(name, doc, expr)), out)
            needs[need.name] = tuple(sorted(wanted))
        return functions, needs

    def embed(self) -> tuple[str, list[str]]:
        """``embed(X)``: the network's inputs from the points (exact periodicity)."""
        inputs = ", ".join(self._on_columns(e) for _, e in self.problem.embedding)
        doc = "The network's inputs: " + ", ".join(f"{n} = {to_text(e)}" for n, e in self.problem.embedding)
        return "embed", ["def embed(X):", f'    """{doc}."""', f"    return torch.stack([{inputs}], dim=1)"]

    def exact(self, unknown: str, expr: sympy.Expr) -> tuple[str, list[str]]:
        name = self.namer.function("exact", unknown)
        expr = self._fold(expr)
        if not expr.free_symbols:  # a constant solution: one value per point all the same
            value = to_torch(expr, {})
            return name, [f"def {name}(X):", f'    """exact {unknown}"""', f"    return torch.full_like(X[:, 0], {value})"]
        return name, self._function(name, "X", f"exact {unknown}", expr, self._variable_bindings())

    def activation(self) -> tuple[str, list[str]]:
        z = symbol("z")
        expr = self._fold(self.problem.activation)
        derivs = [expr]
        for _ in range(MAX_ACTIVATION_ORDER):
            derivs.append(sympy.diff(derivs[-1], z))
        replacements, reduced = sympy.cse(derivs, symbols=sympy.numbered_symbols("_cse", cls=sympy.Dummy))
        names = {z: "z"}
        lines = [
            "def activation(z, order):",
            '    """The activation and its derivatives up to `order` (derived by SymPy)."""',
        ]
        for i, (sym, sub) in enumerate(replacements):
            names[sym] = f"_t{i}"
            lines.append(f"    _t{i} = {to_torch(sub, names)}")
        values = ", ".join(
            to_torch(r, names) if d.has(z) else f"torch.full_like(z, {to_torch(r, names)})"
            for d, r in zip(derivs, reduced)
        )
        lines.append(f"    return [{values}][: order + 1]")
        return "activation", lines

    def selector(self, term: Term, index: int, relations) -> tuple[str, list[str]]:
        """A predicate over points: which of the sampled support points a clause keeps."""
        name = self.namer.function("select", f"{term.name}_{index}")
        bindings = self._variable_bindings()
        names = {atom: ident for atom, (ident, _) in bindings.items()}
        lines = [f"def {name}(X):", f'    """Points of `{term.name}` where {" and ".join(str(r) for r in relations)}."""']
        used = set().union(*((r.lhs - r.rhs).free_symbols for r in relations))
        for atom, (ident, source) in sorted(bindings.items(), key=lambda kv: kv[1][0]):
            if atom in used:
                lines.append(f"    {ident} = {source}")
        tests = []
        for r in relations:
            lhs, rhs = to_torch(self._fold(r.lhs), names), to_torch(self._fold(r.rhs), names)
            tol = f"1e-9 * (1.0 + abs({rhs}))" if not self._fold(r.rhs).free_symbols else f"1e-9 * (1.0 + torch.abs({rhs}))"
            tests.append(
                {
                    "=": f"(torch.abs(({lhs}) - ({rhs})) <= {tol})",
                    "<": f"(({lhs}) < ({rhs}) - {tol})",
                    "<=": f"(({lhs}) <= ({rhs}) + {tol})",
                    ">": f"(({lhs}) > ({rhs}) + {tol})",
                    ">=": f"(({lhs}) >= ({rhs}) - {tol})",
                }[r.op]
            )
        lines.append(f"    return {' & '.join(tests)}")
        return name, lines

    @staticmethod
    def _defined(function: tuple[str, list[str]], out: list[str]) -> str:
        """Append a function's lines to ``out``; return its name."""
        name, lines = function
        out += lines + ["", ""]
        return name

    def _supports(self, term: Term, out: list[str]) -> str:
        entries = []
        for i, s in enumerate(term.supports):
            keep = self._defined(self.selector(term, i, s.relations), out) if s.relations else "None"
            point = f", point={_literal(s.point)}" if s.point is not None else ""
            entries.append(f"Support({_literal(s.region)}, {_literal(s.axis)}, {_literal(s.side)}, {keep}{point})")
        return f"({', '.join(entries)}{',' if len(entries) == 1 else ''})"

    def _term(self, term: Term, point_set: str, out: list[str]) -> str:
        """``Term(...)`` for one loss term; its functions are appended to ``out``."""
        args = [_literal(term.name), _literal(term.kind), _literal(point_set)]
        residual = self._defined(self.residual(term), out) if term.residual is not None else "None"
        args += [f"residual={residual}", f"weight={term.weight!r}"]
        if term.supports:
            args.append(f"supports={self._supports(term, out)}")
        if term.kind == "periodic":
            args.append(f"periodic_axis={self.problem.spatial.index(term.periodic)}")
        if term.kind == "data":
            args.append(f"data=Data({_literal(str(term.data))}, {_literal(term.columns)})")
        if term.points is not None:
            args.append(f"points={term.points}")
        return f"Term({', '.join(args)})"

    def _plan(self, ps) -> str:
        return f"plan_streams({_literal(ps.operators)}, {len(self.problem.inputs)})"

    def module(self) -> str:
        problem, graph = self.problem, self.graph
        out = [
            f'"""Problem module for `{problem.name}`, generated by pdec {__version__}. Do not edit.',
            "",
            "Regenerate it with pdec from the spec instead. The runtime reads `PROBLEM` alone.",
            '"""',
            "",
            "import torch",
            "",
            *RUNTIME_IMPORTS,
            "",
            "",
        ]
        activation = _literal(problem.activation_name)
        if problem.activation is not None:
            activation = self._defined(self.activation(), out)
        point_set_of = {t: ps.name for ps in graph.point_sets for t in ps.terms}
        terms = [self._term(t, point_set_of[t.name], out) for t in problem.terms]
        exact = {u: self._defined(self.exact(u, expr), out) for u, expr in problem.exact.items()}
        solution, needs = self.solution(out)
        embed = self._defined(self.embed(), out) if problem.embedding else None
        domain = _domain_literal(problem.domain)
        parameters = {p.name: float(p.initial) for p in problem.learnable}
        truth = {p.name: float(p.true) for p in problem.learnable if p.true is not None}
        reference = str(problem.reference) if problem.reference else None
        out += [
            "PROBLEM = ProblemDef(",
            f"    name={_literal(problem.name)},",
            f"    variables={_literal(problem.variables)},",
            f"    spatial={_literal(problem.spatial)},",
            f"    unknowns={_literal(problem.unknowns)},",
            f"    domain={domain},",
            "    # the operators each point set needs and their Taylor streams (one pass per point set)",
            "    point_sets={",
            *(f"        {_literal(ps.name)}: {self._plan(ps)}," for ps in graph.point_sets),
            "    },",
            f"    everything={self._plan(graph.everything)},",
            "    terms=(",
            *(f"        {t}," for t in terms),
            "    ),",
            f"    hidden={_literal(tuple(problem.hidden))},",
            f"    activation={activation},",
            *([f"    fourier={_literal(tuple(problem.fourier))},"] if problem.fourier else []),
            f"    time={_literal(problem.time)},",
            f"    time_interval={_literal(problem.time_interval)},",
            f"    parameters={_literal(parameters)},",
            f"    parameters_true={_literal(truth)},",
            "    exact={" + ", ".join(f"{_literal(u)}: {f}" for u, f in exact.items()) + "},",
            f"    reference={_literal(reference)},",
            f"    training={_literal(problem.training)},",
            f"    output={_literal(problem.output)},",
            f"    choice={_literal(problem.choice)},",
            *(["    solution={" + ", ".join(f"{_literal(k)}: {f}" for k, f in solution.items()) + "},"] if solution else []),
            *([f"    solution_needs={_literal(needs)},"] if solution else []),
            *([f"    inputs={_literal(problem.inputs)},", f"    embed={embed},"] if embed else []),
            ")",
        ]
        return "\n".join(out).rstrip() + "\n"


def emit_module(problem: SymbolicProblem, graph: OperatorGraph) -> str:
    """The problem module's source: residuals and the ``PROBLEM`` contract object."""
    return _Emitter(problem, graph).module()


def source_hash(source: str) -> str:
    return hashlib.sha256(f"pdec {__version__}\n{source}".encode()).hexdigest()[:16]


SETTINGS_LINES = ("    training=", "    output=", "    choice=")
"""The lines of ``PROBLEM = ProblemDef(...)`` that hold run settings, not the problem."""


def problem_hash(source: str) -> str:
    """`source_hash` of the problem alone (the settings lines left out): a checkpoint carries it,
    and a run may resume under other settings (more steps, another optimizer) but not another
    problem or network."""
    return source_hash("\n".join(line for line in source.splitlines() if not line.startswith(SETTINGS_LINES)))
