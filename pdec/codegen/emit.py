"""Operator graph + SymPy residuals → the Python source of a problem module.

The module is plain data and small functions over torch tensors: the
problem's names, the operators each point set needs, one residual function
per equation and condition (printed from the SymPy tree, constants folded,
common subexpressions shared), exact solutions, and the activation with its
derivatives when the spec writes one as an expression in `z`. `pdec.compile`
imports it; `pdec codegen` inlines it, with the runtime, into a standalone
script. No user text is pasted in: every identifier comes from `Namer`, every
number from a parsed value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

import sympy

from .. import __version__
from ..errors import PdecError
from ..frontend import Compiled
from ..lang.numeric import evaluate
from ..lang.nodes import Laplacian, NormalDerivative, expand_laplacians
from ..lang.printer import to_text
from ..lang.problem import Term
from ..lang.scope import symbol
from ..plan.graph import atom_need, derivative_atoms
from ..taylor.operators import Laplacian as LaplacianOp
from ..taylor.operators import Partial
from ..taylor.streams import plan_streams
from .names import Namer
from .printer import to_torch

MAX_ACTIVATION_ORDER = 4
RUNTIME_IMPORT = "from pdec.taylor import Laplacian, Partial"


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
    raise TypeError(f"no literal for {type(value).__name__}")


class _Emitter:
    def __init__(self, compiled: Compiled) -> None:
        self.c = compiled
        self.problem = compiled.problem
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
        return {symbol(v): (self.namer.variable(v), f"X[:, {i}]") for i, v in enumerate(self.variables)}

    def residual(self, term: Term) -> list[str]:
        spatial = tuple(symbol(s) for s in self.problem.spatial)
        expr = self._fold(term.residual)
        normals = [sympy.Symbol(f"__normal_{s}") for s in self.problem.spatial]
        expr = expr.replace(
            lambda e: isinstance(e, NormalDerivative),
            lambda e: sympy.Add(*(n * sympy.diff(e.args[0], s) for n, s in zip(normals, spatial))),
        )
        bindings = self._variable_bindings()
        for p in self.problem.parameters:
            bindings[symbol(p)] = (self.namer.parameter(p), f"P[{p!r}]")
        for n, s in zip(normals, self.problem.spatial):
            bindings[n] = (self.namer.variable(f"n{s}"), f"normals[:, {self.problem.spatial.index(s)}]")
        for atom in derivative_atoms(expr):
            (need,) = atom_need(atom, self.problem, self.c.spec.training.laplacian_samples)
            ident = self.namer.derivative(need.unknown, need.operator, self.variables)
            bindings[atom] = (ident, f"D[{need.name!r}]")
        name = self.namer.function("residual", term.name)
        doc = f"{term.kind} {term.name}: {to_text(term.residual)} = 0"
        return self._function(name, "X, D, P, normals=None", doc, expr, bindings)

    def exact(self, unknown: str, expr: sympy.Expr) -> list[str]:
        name = self.namer.function("exact", unknown)
        return self._function(name, "X", f"exact {unknown}", self._fold(expr), self._variable_bindings())

    def activation(self) -> list[str]:
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
        return lines

    def layers(self) -> list[str]:
        """The KFAC view: every linear layer, and how many Taylor streams share its weight per point set.

        Each point set contributes one Kronecker term per layer (Dangel, Müller,
        Zeinhofer 2024); a layer used on S > 1 streams is a weight-shared layer.
        """
        n_in = len(self.problem.variables)
        widths = (n_in, *self.c.spec.model.hidden, len(self.problem.unknowns))
        streams = {ps.name: plan_streams(ps.operators, n_in).n_streams for ps in self.c.graph.point_sets}
        lines = [
            "# KFAC view: each linear layer (inputs, outputs) and the number of Taylor",
            "# streams that share its weight on each point set (one Kronecker term each).",
            "LAYERS = (",
        ]
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            lines.append(f"    {{'shape': ({fan_in}, {fan_out}), 'streams': {_literal(streams)}}},")
        return lines + [")"]

    def selector(self, term: Term, index: int, relations) -> list[str]:
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
        return lines

    def sampling(self) -> list[str]:
        spec, problem = self.c.spec, self.problem
        d = spec.domain
        if d.shape == "ball":
            domain = {"shape": "ball", "center": tuple(float(c) for c in d.center), "radius": float(d.radius)}
        else:
            domain = {"shape": "box", "lo": tuple(float(b[0]) for b in d.bounds), "hi": tuple(float(b[1]) for b in d.bounds)}
        time = (float(spec.time.start), float(spec.time.end)) if spec.time else None
        out: list[str] = []
        supports: dict[str, list[str]] = {}
        for term in problem.conditions:
            if term.kind not in ("boundary", "initial"):
                continue
            entries = []
            for i, s in enumerate(term.supports):
                fn = "None"
                if s.relations:
                    lines = self.selector(term, i, s.relations)
                    fn = lines[0][4 : lines[0].index("(")]
                    out += lines + ["", ""]
                entries.append(f"({_literal(s.region)}, {_literal(s.axis)}, {_literal(s.side)}, {fn})")
            supports[term.name] = entries
        out.append(f"DOMAIN = {_literal(domain)}")
        out.append(f"TIME_INTERVAL = {_literal(time)}")
        out.append("# condition: ((region, axis, side, point filter or None), ...), one entry per `or` clause")
        out.append("SUPPORTS = {")
        for name, entries in supports.items():
            out.append(f"    {_literal(name)}: ({', '.join(entries)}{',' if len(entries) == 1 else ''}),")
        out.append("}")
        periodic = {t.name: problem.spatial.index(t.periodic) for t in problem.conditions if t.kind == "periodic"}
        out.append(f"PERIODIC = {_literal(periodic)}")
        data = {t.name: (str(t.data), t.columns) for t in problem.conditions if t.kind == "data"}
        out.append(f"DATA = {_literal(data)}")
        reference = str(spec.reference.path) if spec.reference else None
        out.append(f"REFERENCE = {_literal(reference)}")
        truth = {p.name: float(p.true) for p in spec.parameters if p.true is not None}
        out.append(f"PARAMETERS_TRUE = {_literal(truth)}")
        training = {f.name: getattr(spec.training, f.name) for f in dataclasses.fields(spec.training)}
        training["points"] = {f.name: getattr(spec.training.points, f.name) for f in dataclasses.fields(spec.training.points)}
        condition_points = {t.name: t.points for t in problem.conditions if t.points is not None}
        out.append(f"TRAINING = {_literal(training)}")
        out.append(f"CONDITION_POINTS = {_literal(condition_points)}")
        output = {f.name: getattr(spec.output, f.name) for f in dataclasses.fields(spec.output)}
        out.append(f"OUTPUT = {_literal(output)}")
        return out

    def module(self) -> str:
        c, problem, graph = self.c, self.problem, self.c.graph
        spec = c.spec
        out = [
            f'"""Problem module for `{spec.name}`, generated by pdec {__version__}. Do not edit.',
            "",
            "Regenerate it with pdec from the spec instead.",
            '"""',
            "",
            "import torch",
            "",
            RUNTIME_IMPORT,
            "",
        ]
        if problem.activation is not None:
            out += self.activation() + ["", ""]
        activation = "activation" if problem.activation is not None else _literal(spec.model.activation)
        out += [
            f"NAME = {_literal(spec.name)}",
            f"VARIABLES = {_literal(problem.variables)}",
            f"SPATIAL = {_literal(problem.spatial)}",
            f"TIME = {_literal(problem.time)}",
            f"UNKNOWNS = {_literal(problem.unknowns)}",
            f"PARAMETERS = {_literal({p.name: float(p.initial) for p in spec.parameters})}",
            f"HIDDEN = {_literal(tuple(spec.model.hidden))}",
            f"ACTIVATION = {activation}",
            "",
            "# Operators each point set needs; terms on the same points share one Taylor pass.",
            "POINT_SETS = {",
            *(f"    {_literal(ps.name)}: {_literal(ps.operators)}," for ps in graph.point_sets),
            "}",
            "",
            *self.layers(),
            "",
            "",
        ]
        residual_names = {}
        for term in problem.terms:
            if term.residual is not None:
                lines = self.residual(term)
                residual_names[term.name] = lines[0][4 : lines[0].index("(")]
                out += lines + ["", ""]
        exact_names = {}
        for unknown, expr in problem.exact.items():
            lines = self.exact(unknown, expr)
            exact_names[unknown] = lines[0][4 : lines[0].index("(")]
            out += lines + ["", ""]
        point_set_of = {t: ps.name for ps in graph.point_sets for t in ps.terms}
        out.append("# name: (kind, point set, residual function or None, weight)")
        out.append("TERMS = {")
        for term in problem.terms:
            fn = residual_names.get(term.name, "None")
            where = _literal(point_set_of[term.name])
            out.append(f"    {_literal(term.name)}: ({_literal(term.kind)}, {where}, {fn}, {term.weight!r}),")
        out.append("}")
        out.append("EXACT = {" + ", ".join(f"{_literal(u)}: {f}" for u, f in exact_names.items()) + "}")
        out += ["", ""] + self.sampling()
        return "\n".join(out).rstrip() + "\n"


def emit_module(compiled: Compiled) -> str:
    """The problem module's source for a compiled spec."""
    return _Emitter(compiled).module()


def source_hash(source: str) -> str:
    return hashlib.sha256(f"pdec {__version__}\n{source}".encode()).hexdigest()[:16]
