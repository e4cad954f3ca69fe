"""Exact periodicity (`periodic: x` with `hard: true`): the network sees ``cos`` and ``sin`` of ``x``.

A periodic condition in the loss matches values and slopes at sampled pairs of
points; the network in between need not be periodic at all. Fed
``ξ₁ = cos(k(x − lo))``, ``ξ₂ = sin(k(x − lo))`` with ``k = 2π/L`` instead of
``x``, it is periodic with every derivative, to rounding, and the term
disappears (Dong & Ni 2021; Wang, Wang & Perdikaris 2023, jaxpi's
``periodicity``).

The Taylor runtime differentiates the network in its own inputs; here the
residuals are rewritten in them by the chain rule, once, symbolically. With
``ξ₁' = −kξ₂`` and ``ξ₂' = kξ₁`` along ``x``, the total derivative of any
expression ``E(x, ξ, N(ξ, t))`` is

    d/dx E = ∂E/∂x + k(ξ₁ ∂E/∂ξ₂ − ξ₂ ∂E/∂ξ₁),

applied as often as the derivative's order (a Laplacian becomes its sum of
second derivatives). Exact conditions compose: ``u = G + φ·N(ξ, t)``.
"""

from __future__ import annotations

import dataclasses
import math

import sympy

from ..errors import SpecError
from ..lang.nodes import Laplacian, NormalDerivative, is_unknown, laplacian_power
from ..lang.scope import symbol
from .hard import substitute
from .problem import SymbolicProblem


def make_periodic(problem: SymbolicProblem) -> SymbolicProblem:
    """``problem`` with its `hard` periodic conditions built into the network's inputs."""
    axes = [t for t in problem.terms if t.kind == "periodic" and t.hard]
    if not axes:
        return problem
    names = set(problem.variables) | set(problem.unknowns) | set(problem.parameters) | set(problem.constants) | set(problem.defines)
    embedding = []
    for v in problem.variables:
        term = next((t for t in axes if t.periodic == v), None)
        if term is None:
            embedding.append((v, symbol(v)))
            continue
        lo = problem.domain.lo[problem.spatial.index(v)]
        angle = _wavenumber(problem, v) * (symbol(v) - sympy.Float(lo, 17))
        for name, expr in ((f"cos_{v}", sympy.cos(angle)), (f"sin_{v}", sympy.sin(angle))):
            if name in names:
                raise SpecError(f"exact periodicity in `{v}` names a network input `{name}`, which the spec uses", term.loc)
            embedding.append((name, expr))
    problem = dataclasses.replace(problem, embedding=tuple(embedding))
    terms = tuple(
        t if t.residual is None else dataclasses.replace(t, residual=to_inputs(t.residual, problem))
        for t in problem.terms
        if not (t.kind == "periodic" and t.hard)
    )
    return dataclasses.replace(problem, terms=terms)


def to_network(expr: sympy.Expr, problem: SymbolicProblem) -> sympy.Expr:
    """An expression in the spec's unknowns written in the network's outputs and inputs:
    exact conditions substituted (`hard.substitute`), then the inputs embedded (`to_inputs`)."""
    if problem.constrained:
        expr = substitute(expr, problem.constrained, problem)
    return to_inputs(expr, problem) if problem.embedding else expr


def _wavenumber(problem: SymbolicProblem, v: str) -> sympy.Float:
    """``k = 2π/L`` for the period ``L`` of variable ``v``."""
    axis = problem.spatial.index(v)
    return sympy.Float(2 * math.pi / (problem.domain.hi[axis] - problem.domain.lo[axis]), 17)


def _periodic_axes(problem: SymbolicProblem) -> dict[sympy.Symbol, tuple[sympy.Symbol, sympy.Symbol, sympy.Expr]]:
    """Per embedded variable: its ``cos`` and ``sin`` input symbols and ``k``."""
    inputs = dict(problem.embedding)
    return {
        symbol(v): (symbol(f"cos_{v}"), symbol(f"sin_{v}"), _wavenumber(problem, v))
        for v in problem.variables
        if f"cos_{v}" in inputs
    }


def to_inputs(expr: sympy.Expr, problem: SymbolicProblem) -> sympy.Expr:
    """``expr`` (in the unknowns as functions of the variables) with each unknown a function of
    the network's inputs and every derivative taken by the chain rule; the inputs stay symbols
    (the emitted code binds them to the embedding)."""
    variables = tuple(symbol(v) for v in problem.variables)
    inputs = tuple(symbol(name) for name, _ in problem.embedding)
    spatial = tuple(symbol(s) for s in problem.spatial)
    axes = _periodic_axes(problem)
    net = {sympy.Function(u, real=True)(*variables): sympy.Function(u, real=True)(*inputs) for u in problem.unknowns}
    normals = {s: sympy.Symbol(f"__normal_{s}") for s in spatial}

    def d(e: sympy.Expr, v: sympy.Symbol) -> sympy.Expr:
        if v not in axes:
            return sympy.diff(e, v)
        c, s, k = axes[v]
        return sympy.diff(e, v) + k * (c * sympy.diff(e, s) - s * sympy.diff(e, c))

    def walk(e: sympy.Basic) -> sympy.Basic:
        if is_unknown(e) and e in net:
            return net[e]
        if isinstance(e, sympy.Derivative) and e.expr in net:
            out = net[e.expr]
            for v, count in e.variable_count:
                for _ in range(count):
                    out = d(out, v)
            return out
        if isinstance(e, Laplacian):
            inner, power = laplacian_power(e)
            if inner not in net:
                raise ValueError(f"a Laplacian of {inner}")  # hard.substitute leaves only unknowns inside
            out = net[inner]
            for _ in range(power):
                out = sum(d(d(out, s), s) for s in spatial)
            return out
        if isinstance(e, NormalDerivative):
            inner = walk(e.args[0])
            return sum(normals[s] * d(inner, s) for s in spatial)
        if not e.args:
            return e
        return e.func(*(walk(a) for a in e.args))

    return walk(expr)
