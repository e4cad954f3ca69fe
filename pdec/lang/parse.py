"""Expression text → lark tree → SymPy, with every error located in the spec.

The grammar lives in ``grammars/pde.lark``; this module only loads it, parses,
guards against hostile input (size, nesting depth) and hands the tree to the
`ToSympy` transformer. User text never reaches ``eval``, ``exec`` or
``sympify``: numbers are read with `fractions.Fraction` after a regex match.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from pathlib import Path

import lark
import sympy

from ..errors import Loc, SpecError
from .scope import Scope
from .selector import Selector
from .messages import undefined_name
from .transform import ToSympy, check_bound

MAX_TEXT = 10_000
MAX_DEPTH = 200
MAX_NODES = 50_000


def _grammar_text() -> str:
    # Installed wheels carry the grammar as package data; a source checkout
    # (editable install) reads it from the top-level grammars/ folder.
    packaged = importlib.resources.files("pdec").joinpath("grammars").joinpath("pde.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parents[2] / "grammars" / "pde.lark").read_text(encoding="utf-8")


@functools.cache
def parser() -> lark.Lark:
    """The LALR parser for all three entry points (built once)."""
    return lark.Lark(
        _grammar_text(),
        parser="lalr",
        start=["start_equation", "start_expr", "start_selector"],
        propagate_positions=True,
        maybe_placeholders=False,
    )


_EXPECTED = {
    "NAME": "a name",
    "NUMBER": "a number",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "COMMA": "`,`",
    "EQ": "`=`",
    "COMPARE": "a comparison",
    "PLUS": "`+`",
    "MINUS": "`-`",
    "STAR": "`*`",
    "SLASH": "`/`",
    "POW": "`^`",
    "BOUNDARY": "`boundary`",
    "AND": "`and`",
    "OR": "`or`",
    "$END": "the end of the expression",
}


def _locate(base: Loc, line: int, col: int) -> Loc:
    """Map a (line, column) inside expression text to the spec file."""
    if line <= 1:
        return base.shifted(col - 1)
    return Loc(base.file, base.line + line - 1, col, "")


def _describe_expected(expected: set[str]) -> str:
    names = sorted({_EXPECTED.get(e, f"`{e}`") for e in expected if not e.startswith("__")})
    if not names:
        return "something else"
    return ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1]


def _syntax_error(exc: lark.exceptions.UnexpectedInput, text: str, base: Loc) -> SpecError:
    loc = _locate(base, getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1)
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else "?"
        hint = ": numbers are written with the digits 0-9" if char.isdigit() else ""
        return SpecError(f"unexpected character {char!r} in expression{hint}", loc)
    if isinstance(exc, lark.exceptions.UnexpectedEOF):
        return SpecError(f"expression ends too early: expected {_describe_expected(exc.expected)}", loc)
    token = exc.token
    if token.type == "$END":
        loc = base.shifted(len(text.rstrip()))
        return SpecError(f"expression ends too early: expected {_describe_expected(exc.expected)}", loc)
    if token.type == "EQ" and "EQ" not in exc.expected:
        return SpecError("unexpected `=`: an equation has exactly one `=`", loc)
    return SpecError(f"unexpected `{token}`: expected {_describe_expected(exc.expected)}", loc)


def _check_shape(tree: lark.Tree, base: Loc) -> None:
    """Refuse trees too deep or too large to transform safely (no recursion)."""
    stack = [(tree, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise SpecError(f"expression is nested more than {MAX_DEPTH} levels deep", base)
        if count > MAX_NODES:
            raise SpecError(f"expression has more than {MAX_NODES} parts", base)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, lark.Tree))


def parse_tree(text: str, start: str, base: Loc) -> lark.Tree:
    """Parse ``text`` at entry point ``start`` (``equation``, ``expr``, ``selector``)."""
    if len(text) > MAX_TEXT:
        raise SpecError(f"expression is longer than {MAX_TEXT} characters", base)
    if not text.strip():
        raise SpecError("empty expression", base)
    try:
        tree = parser().parse(text, start=f"start_{start}")
    except lark.exceptions.UnexpectedInput as exc:
        error = _syntax_error(exc, text, base)
        if start == "selector" and "(" in text and getattr(exc, "token", None) is not None and exc.token.type in ("EQ", "COMPARE", "OR", "AND"):
            error = SpecError(
                "selectors have no parentheses: `and` binds tighter than `or`, so write "
                "`x = 0 and y > 0.5 or x = 1 and y > 0.5`",
                error.loc,
            )
        conditional = re.search(r"\b(if|else|then|when|where)\b", text)
        if conditional:
            word, loc = conditional.group(1), _locate(base, 1, conditional.start() + 1)
            if start == "selector":
                error = SpecError(
                    f"a selector has no `{word}`: it says where the condition holds, with `=`, `<`, `>`, "
                    "`and`, `or` and `boundary`, e.g. `x = 0`, `x = 0 or x = 1`, `x = 0 and t > 0.5`",
                    loc,
                )
            elif not text[conditional.end() :].lstrip().startswith("("):
                error = SpecError(
                    f"expressions have no `{word}`; a condition that holds on part of the boundary is "
                    "its own entry under `conditions:` with `on:` saying where",
                    loc,
                )
        raise error from None
    _check_shape(tree, base)
    return tree


def _sum_indices(tree: lark.Tree) -> frozenset[str]:
    """Names written as the first argument of a `sum` call."""
    found = set()
    for node in tree.iter_subtrees():
        if node.data == "call" and str(node.children[0]) == "sum" and len(node.children) > 1:
            first = node.children[1]
            if isinstance(first, lark.Tree) and first.data == "name":
                found.add(str(first.children[0]))
    return frozenset(found)


def _check_sum_sizes(tree: lark.Tree, base: Loc) -> None:
    """Refuse nested sums whose literal ranges multiply past the limit, before building any."""
    from .transform import MAX_SUM_TERMS

    stack = [(tree, 1)]
    while stack:
        node, factor = stack.pop()
        if node.data == "call" and str(node.children[0]) == "sum" and len(node.children) == 5:
            lo, hi = node.children[2], node.children[3]
            if all(isinstance(b, lark.Tree) and b.data == "number" for b in (lo, hi)):
                try:
                    count = max(int(str(hi.children[0])) - int(str(lo.children[0])) + 1, 0)
                except ValueError:
                    count = 1  # not whole numbers: the transformer says so
                outer, factor = factor, factor * max(count, 1)
                if factor > MAX_SUM_TERMS:
                    token = node.children[0]
                    loc = base.shifted((token.column or 1) - 1) if (token.line or 1) <= 1 else base
                    if outer == 1:
                        raise SpecError(f"`sum` over {count} terms; at most {MAX_SUM_TERMS}", loc)
                    raise SpecError(f"sums expand to more than {MAX_SUM_TERMS} terms in one expression", loc)
        stack.extend((child, factor) for child in node.children if isinstance(child, lark.Tree))


def _check_names(tree: lark.Tree, scope: Scope, indices: frozenset[str], base: Loc) -> None:
    """Report an undefined name before any work: a typo next to a large `sum` fails at once."""
    known = set(scope.names()) | set(scope.excluded) | set(scope.refused) | indices
    for node in tree.iter_subtrees():
        if node.data == "name":
            token = node.children[0]
            name = str(token)
            if name not in known and "_" not in name:  # `u_xx` is checked by the transformer
                loc = base.shifted((token.column or 1) - 1) if (token.line or 1) <= 1 else base
                raise SpecError(undefined_name(name, scope.names()), loc)


@functools.lru_cache(maxsize=4096)
def _expanded_size(expr: sympy.Basic) -> int:
    """The parts of ``expr`` counted as a tree, a shared subexpression once per use: what SymPy's
    traversals visit. Counted over the distinct parts (memoized), so a define that doubles an
    earlier one thirty times is measured at once, not after 2^30 steps."""
    sizes: dict[sympy.Basic, int] = {}
    stack = [expr]
    while stack:
        node = stack[-1]
        pending = [a for a in node.args if a not in sizes]
        if pending:
            stack.extend(pending)
            continue
        sizes[node] = 1 + sum(sizes[a] for a in node.args)
        stack.pop()
    return sizes[expr]


def _check_define_sizes(tree: lark.Tree, scope: Scope, base: Loc) -> None:
    """Refuse an expression that grows past `MAX_NODES` parts once its defines are written out.

    A define is substituted, so ``a2: a1*(a1 + 1)``, ``a3: a2*(a2 + 1)``, … doubles
    at each step: without this bound a few dozen short lines would hang every later stage.
    """
    total = 0
    for node in tree.iter_subtrees():
        total += 1
        if node.data == "name" and str(node.children[0]) in scope.defines:
            token = node.children[0]
            total += _expanded_size(scope.defines[str(token)])
            if total > MAX_NODES:
                loc = base.shifted((token.column or 1) - 1) if (token.line or 1) <= 1 else base
                raise SpecError(f"expression has more than {MAX_NODES} parts once its defines are written out", loc)


def _transform(text: str, start: str, scope: Scope, base: Loc):
    tree = parse_tree(text, start, base)
    indices = _sum_indices(tree)
    _check_names(tree, scope, indices, base)
    if scope.defines:
        _check_define_sizes(tree, scope, base)
    _check_sum_sizes(tree, base)
    transformer = ToSympy(scope, base, indices)
    try:
        result = transformer.transform(tree)
    except lark.exceptions.VisitError as exc:
        if isinstance(exc.orig_exc, SpecError):
            raise exc.orig_exc from None
        raise
    check_bound(transformer, result)
    return result


def parse_expr(text: str, scope: Scope, base: Loc) -> sympy.Expr:
    """A single expression, e.g. an exact solution or a constant's value."""
    return _transform(text, "expr", scope, base)


def parse_equation(text: str, scope: Scope, base: Loc) -> tuple[sympy.Expr, sympy.Expr]:
    """``lhs = rhs`` as the pair (lhs, rhs)."""
    return _transform(text, "equation", scope, base)


def parse_selector(text: str, scope: Scope, base: Loc) -> Selector:
    """An ``on:`` selector in disjunctive normal form."""
    return _transform(text, "selector", scope, base)
