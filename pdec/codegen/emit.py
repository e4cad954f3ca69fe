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

import hashlib

import sympy

from .. import __version__
from ..frontend import Compiled
from ..lang.nodes import Laplacian, NormalDerivative, expand_laplacians
from ..lang.printer import to_text
from ..lang.problem import Term
from ..lang.scope import symbol
from ..plan.graph import atom_need, derivative_atoms
from ..taylor.operators import Laplacian as LaplacianOp
from ..taylor.operators import Partial
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
        return expr.xreplace(self.constants)

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
        return "\n".join(out).rstrip() + "\n"


def emit_module(compiled: Compiled) -> str:
    """The problem module's source for a compiled spec."""
    return _Emitter(compiled).module()


def source_hash(source: str) -> str:
    return hashlib.sha256(f"pdec {__version__}\n{source}".encode()).hexdigest()[:16]
