"""The activation rule of a stream: multivariate Faà di Bruno over polynomials.

A stream carries ``q(∂)z`` for a homogeneous polynomial ``q`` (``streams.py``).
Propagating ``p(∂)`` of degree ``k`` through an activation (the multivariate
Faà di Bruno formula, Constantine & Savits 1996) gives, with ``T`` the
symmetric tensor of ``p``,

    p(∂)σ(h) = σ'(h)·p(∂)h + Σ_λ σ^(m)(h) · c_λ · ⟨T, H_{b1} ⊗ … ⊗ H_{bm}⟩,

summed over the partitions ``λ = (b1, …, bm)`` of ``k`` into ``m ≥ 2`` parts,
``c_λ = k! / (Π b! Π mult!)`` set partitions of that shape, ``H_b`` the
tensor of b-th derivatives of ``h``. Each contraction is the polarised form
``(1/k!) Π_j (y_j·∇)^{b_j} p`` with the group-j monomials read as streams,
and every slot of it lies in the space of ``(k - b_j)``-th partial
derivatives of ``p`` (polarisation, Griewank, Utke & Walther 2000). That is
why the planner closes the targets under differentiation, and why a rule
can be written as ``Σ coef · σ^(m)(h) · Π_f Z[f]`` over earlier streams.

The polynomial arithmetic and the exact echelon basis the planner expresses
polynomials in are here too: everything is exact rationals, computed once
per plan, without torch.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

Monomial = tuple[int, ...]  # sorted coordinate indices, one per differentiation
Poly = dict[Monomial, Fraction]


@dataclass(frozen=True)
class RuleTerm:
    """``coef · σ^(m)(h) · Π_f Z[f]`` in the activation rule of a stream."""

    m: int
    coef: Fraction
    factors: tuple[int, ...]


# --------------------------------------------------------------------------
# polynomials


def _poly_mul(a: Poly, b: Poly) -> Poly:
    out: Poly = defaultdict(Fraction)
    for ma, ca in a.items():
        for mb, cb in b.items():
            out[tuple(sorted(ma + mb))] += ca * cb
    return _poly_clean(out)


def _poly_clean(p: dict) -> dict:
    return {m: c for m, c in p.items() if c != 0}


def _mono_drop(m: Monomial, i: int) -> Monomial:
    k = m.index(i)
    return m[:k] + m[k + 1 :]


def _poly_derivative(p: Poly, i: int) -> Poly:
    out: Poly = defaultdict(Fraction)
    for m, c in p.items():
        n = m.count(i)
        if n:
            out[_mono_drop(m, i)] += c * n
    return _poly_clean(out)


def _poly_normalised(p: Poly) -> tuple[tuple[Monomial, Fraction], ...]:
    """``p`` scaled so its leading coefficient is 1, as a hashable sorted tuple."""
    lead = p[max(p)]
    return tuple(sorted((m, c / lead) for m, c in p.items()))


def _poly_derivatives(p: Poly, order: int) -> list[Poly]:
    """All partial derivatives of ``p`` of the given order (non-zero, deduplicated)."""
    level = {_poly_normalised(p): p}
    for _ in range(order):
        nxt: dict = {}
        for q in level.values():
            for i in sorted({i for m in q for i in m}):
                d = _poly_derivative(q, i)
                if d:
                    key = _poly_normalised(d)
                    nxt.setdefault(key, dict(key))
        level = nxt
    return list(level.values())


def _poly_polarised(p: Poly, blocks: Sequence[int], ones: int) -> dict[tuple[Monomial, ...], Fraction]:
    """``Π_j (y_j·∇)^{blocks[j]} (y_1·∇)^ones p`` as a polynomial in the groups ``y_j``.

    The size-one blocks share one group (the last): they all contract with the
    same first-order tensor, so only ``p(h, h, …)`` of that group is needed.
    """
    groups = len(blocks) + 1
    state: dict[tuple[tuple[Monomial, ...], Monomial], Fraction] = {
        ((),) * groups + (m,): c for m, c in p.items()
    }
    for g, times in [*enumerate(blocks), (groups - 1, ones)]:
        for _ in range(times):
            nxt: dict = defaultdict(Fraction)
            for key, c in state.items():
                xm = key[-1]
                for i in set(xm):
                    gm = list(key[:-1])
                    gm[g] = tuple(sorted(gm[g] + (i,)))
                    nxt[(*gm, _mono_drop(xm, i))] += c * xm.count(i)
            state = nxt
    return _poly_clean({key[:-1]: c for key, c in state.items()})


def _int_partitions(k: int, largest: int | None = None) -> list[tuple[int, ...]]:
    """Integer partitions of k, parts in non-increasing order."""
    largest = k if largest is None else largest
    if k == 0:
        return [()]
    return [(b, *rest) for b in range(min(k, largest), 0, -1) for rest in _int_partitions(k - b, b)]


# --------------------------------------------------------------------------
# exact linear algebra over the streams of one order


class _PolyBasis:
    """Echelon form of the stream polynomials of one order, with their stream ids."""

    def __init__(self) -> None:
        self.rows: dict[Monomial, tuple[Poly, dict[int, Fraction]]] = {}

    def reduce(self, q: Poly) -> tuple[Poly, dict[int, Fraction]]:
        """``q = Σ combo[s]·stream_s + remainder`` with no pivot in the remainder."""
        rest = dict(q)
        remainder: Poly = {}
        combo: dict[int, Fraction] = defaultdict(Fraction)
        while rest:
            lead = max(rest)
            c = rest.pop(lead)
            if lead not in self.rows:
                remainder[lead] = c
                continue
            row, row_combo = self.rows[lead]
            for m, rc in row.items():
                if m != lead:
                    rest[m] = rest.get(m, Fraction(0)) - c * rc
                    if rest[m] == 0:
                        del rest[m]
            for s, sc in row_combo.items():
                combo[s] += c * sc
        return remainder, _poly_clean(combo)

    def add_if_new(self, q: Poly, stream_id: int) -> bool:
        """Make ``q`` stream ``stream_id`` if it is not in the span yet."""
        remainder, combo = self.reduce(q)
        if not remainder:
            return False
        lead = max(remainder)
        scale = remainder[lead]
        row = {m: c / scale for m, c in remainder.items()}
        row_combo = {stream_id: 1 / scale}
        for s, c in combo.items():
            row_combo[s] = -c / scale
        self.rows[lead] = (row, row_combo)
        return True

    def express(self, q: Poly) -> dict[int, Fraction]:
        remainder, combo = self.reduce(q)
        if remainder:  # the derivative-closure argument guarantees membership
            raise AssertionError(f"planner bug: {q} is not spanned by the planned streams")
        return combo


# --------------------------------------------------------------------------
# the rule


def _activation_rule(p: Poly, express, first_id: dict[int, int]) -> tuple[RuleTerm, ...]:
    """The Faà di Bruno terms of ``p(∂)σ(h)`` beyond ``σ'·p(∂)h`` (module docstring)."""
    k = len(next(iter(p)))
    terms: dict[tuple[int, tuple[int, ...]], Fraction] = defaultdict(Fraction)
    for shape in _int_partitions(k):
        if len(shape) < 2:
            continue
        big = [b for b in shape if b >= 2]
        ones = len(shape) - len(big)
        count = math.factorial(k)
        for b in shape:
            count //= math.factorial(b)
        for b in set(shape):
            count //= math.factorial(shape.count(b))
        scale = Fraction(count, math.factorial(k))
        polar = _poly_polarised(p, big, ones)
        # Read group by group: the coefficient polynomial of each group, for
        # fixed monomials in the other groups, lies in the span of the streams
        # of that order, so it becomes a combination of stream ids.
        partial: dict[tuple, Fraction] = {(key, ()): c * scale for key, c in polar.items()}
        for g in range(len(big)):
            collected: dict[tuple, Poly] = defaultdict(dict)
            for (key, ids), c in partial.items():
                rest = key[:g] + ((),) + key[g + 1 :]
                collected[(rest, ids)][key[g]] = c
            partial = defaultdict(Fraction)
            for (rest, ids), q in collected.items():
                for sid, c in express(q).items():
                    partial[(rest, ids + (sid,))] += c
        for (key, ids), c in partial.items():
            factors = tuple(sorted(ids + tuple(first_id[i] for i in key[-1])))
            terms[(len(shape), factors)] += c
    return tuple(RuleTerm(m, c, f) for (m, f), c in sorted(terms.items()) if c != 0)
