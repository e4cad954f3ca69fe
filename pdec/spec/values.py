"""Typed reads of YAML nodes with located errors: the checks every spec section shares.

Numbers may be written as expressions of constants (``[0, 2*pi]``); those
are parsed by the pdec grammar, never evaluated as Python.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import sympy

from ..errors import Loc, SpecError, abbreviate, did_you_mean
from ..lang.numeric import constant_value
from ..lang.parse import parse_expr
from ..lang.scope import RESERVED, Scope
from .schema import Text
from .yamlnodes import YMap, YNode, YScalar, YSeq

NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,31}")
"""Variables and unknowns: no underscore, so that ``u_xy`` reads unambiguously."""
_FLOAT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)
"""ASCII digits only: `float` reads other scripts' digits too (``1٠`` would be 10)."""


class ValueReader:
    """Scalars, lists, names, numbers and choices read from YAML nodes, each with its position."""

    def __init__(self, file: str, base_dir: Path, *, allow_outside_data: bool = False, files: bool = True) -> None:
        self.file = file
        self.base_dir = base_dir
        self.allow_outside_data = allow_outside_data
        """`data:` and `reference:` files may lie outside the spec's directory."""
        self.files = files
        """False: data conditions and the reference are dropped, their files never looked for."""
        self.constant_values: dict[str, sympy.Expr] = {}

    # -- generic checks --------------------------------------------------
    def mapping(self, node: YNode, what: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> YMap:
        if not isinstance(node, YMap):
            raise SpecError(f"`{what}` must be a mapping ({_kind(node)} given)", node.loc)
        for key, loc in node.key_locs.items():
            if key not in allowed:
                prefix = f"`{what}`" if what != "spec" else "the spec"
                raise SpecError(
                    f"unknown key `{key}` in {prefix}.{did_you_mean(key, allowed)} Valid keys: {', '.join(allowed)}",
                    loc,
                )
        for key in required:
            if key not in node.entries:
                raise SpecError(f"`{what}` needs `{key}`", node.loc)
        return node

    def sequence(self, node: YNode, what: str) -> tuple[YNode, ...]:
        if isinstance(node, YSeq):
            return node.items
        if isinstance(node, YScalar) and not node.is_null:
            return (node,)
        raise SpecError(f"`{what}` must be a list ({_kind(node)} given)", node.loc)

    def string(self, node: YNode, what: str) -> str:
        if not isinstance(node, YScalar) or node.is_null:
            raise SpecError(f"`{what}` must be text ({_kind(node)} given)", node.loc)
        return node.text

    def text(self, node: YNode, what: str) -> Text:
        value = self.string(node, what)
        if not value.strip():
            raise SpecError(f"`{what}` is empty", node.loc)
        return Text(value, node.loc)

    def name(self, node: YNode, what: str, pattern: re.Pattern = NAME) -> str:
        value = self.string(node, what)
        self.check_name(value, what, node.loc, pattern)
        return value

    def check_name(self, value: str, what: str, loc: Loc, pattern: re.Pattern = NAME) -> None:
        if not pattern.fullmatch(value):
            rule = "letters and digits" if pattern is NAME else "letters, digits and `_`"
            raise SpecError(f"invalid {what} name `{value}`: use {rule}, starting with a letter (at most 32)", loc)
        if value in RESERVED:
            raise SpecError(f"`{value}` is a built-in name and cannot be used as {_article(what)} name", loc)

    def number(self, node: YNode, what: str) -> float:
        if not isinstance(node, YScalar) or node.is_null:
            raise SpecError(f"`{what}` must be a number ({_kind(node)} given)", node.loc)
        text = node.text.strip()
        if _FLOAT.fullmatch(text):
            value = float(text)
        else:
            scope = Scope(constants=tuple(self.constant_values), allow_unknowns=False, context=f"`{what}`")
            try:
                expr = parse_expr(text, scope, node.loc)
            except SpecError as exc:
                if exc.message.startswith("undefined name"):
                    raise SpecError(f"`{what}` must be a number or an expression of constants: {exc.message}", exc.loc) from None
                raise
            value = self._evaluate(expr, what, node.loc)
        if not math.isfinite(value):
            raise SpecError(f"`{what}` must be finite, got {abbreviate(text)}", node.loc)
        return value

    def _evaluate(self, expr: sympy.Expr, what: str, loc: Loc) -> float:
        return constant_value(expr, self.constant_values, what, loc)

    def integer(self, node: YNode, what: str, minimum: int = 0, maximum: int | None = None) -> int:
        if not isinstance(node, YScalar) or not re.fullmatch(r"[+-]?[0-9]+", node.text.strip()):
            raise SpecError(f"`{what}` must be a whole number ({_describe(node)} given)", node.loc)
        digits = node.text.strip().lstrip("+-").lstrip("0")
        value = int(node.text) if len(digits) <= 18 else (1 if node.text.strip()[0] != "-" else -1) * 10**18  # Python refuses int() of 4,300 digits
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise SpecError(f"`{what}` must be {bound}, got {abbreviate(node.text.strip())}", node.loc)
        return value

    def choice(self, node: YNode, what: str, options: tuple[str, ...]) -> str:
        value = self.string(node, what)
        if value not in options:
            raise SpecError(
                f"invalid `{what}` `{value}`. Supported: {', '.join(options)}.{did_you_mean(value, options)}".rstrip("."),
                node.loc,
            )
        return value

    def boolean(self, node: YNode, what: str) -> bool:
        value = self.string(node, what).lower()
        if value in ("true", "yes", "on"):
            return True
        if value in ("false", "no", "off"):
            return False
        raise SpecError(f"`{what}` must be true or false", node.loc)

    def interval(self, node: YNode, what: str) -> tuple[float, float]:
        items = self.sequence(node, what)
        if len(items) != 2:
            raise SpecError(f"`{what}` must be an interval `[lo, hi]`", node.loc)
        lo, hi = self.number(items[0], what), self.number(items[1], what)
        if not lo < hi:
            raise SpecError(f"`{what}` is empty or reversed: [{lo:g}, {hi:g}] needs lo < hi", node.loc)
        return lo, hi

    def path(self, node: YNode, what: str) -> Path:
        """A file the spec names, resolved under the spec's directory (links followed). One outside it
        is refused, before anything looks at it, unless the user allowed it (``allow_outside_data``)."""
        value = self.string(node, what)
        if not self.files:
            return Path(value)
        base = self.base_dir.resolve()
        path = (base / value).resolve()
        if not self.allow_outside_data and not path.is_relative_to(base):
            raise SpecError(
                f"`{what}`: `{value}` is outside the spec's directory; a spec may read files under its own "
                "directory only (pass --allow-outside-data if you trust this spec)",
                node.loc,
            )
        if not path.is_file():
            raise SpecError(f"`{what}`: no file `{value}` (looked in {self.base_dir or '.'})", node.loc)
        return path

    # -- sections --------------------------------------------------------


def _article(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _kind(node: YNode) -> str:
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YSeq):
        return "a list"
    return "nothing" if node.is_null else "text"


def _describe(node: YNode) -> str:
    return f"`{abbreviate(node.text)}`" if isinstance(node, YScalar) and not node.is_null else _kind(node)
