"""The `define:` section: named expressions of the variables, such as a coefficient ``k: 1 + x^2``.

A define is an abbreviation: every expression that names it is parsed with its
value in its place (`Scope.defines`), so the problem, the plan and the emitted
code never see it. Defines are read in order and each may use the variables,
the constants and the defines above it; one that mentions an unknown or a
learnable parameter would no longer be a fixed function of the variables, and
is refused where it does.

Constants are numbers, read before the domain (an interval may be ``[0, L]``);
a constant whose value mentions a variable or a define gets a message that
points to `define:` (`refuse_spatial_constant`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import replace

import sympy

from ..errors import SpecError
from ..lang.parse import parse_expr
from ..lang.scope import Scope
from .schema import Define, Domain, Parameter, Text, TimeInterval
from .domain import DomainReader
from .yamlnodes import YMap, YNode

DEFINE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
"""Like a constant's name: letters, digits and `_`."""


class _Refused(Mapping):
    """The defines one define may not use, with why: itself, and every define below it.

    One mapping for the whole section, narrowed as the reading moves down
    (`current`), so that n defines cost O(n) and not n dictionaries of n messages.
    """

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.position = {name: i for i, name in enumerate(names)}
        self.current = -1
        """The index of the define being read."""

    def __contains__(self, name: object) -> bool:
        return self.position.get(name, -1) >= self.current >= 0

    def __getitem__(self, name: str) -> str:
        if name not in self:
            raise KeyError(name)
        current = self.names[self.current]
        if name == current:
            return f"define `{current}` is written in terms of itself: a define is an abbreviation, not an equation"
        return f"`{name}` is defined below `{current}`: a define may use only the defines above it (move `{name}` up)"

    def __iter__(self) -> Iterator[str]:
        return iter(self.names[self.current :] if self.current >= 0 else ())

    def __len__(self) -> int:
        return len(self.names) - self.current if self.current >= 0 else 0


class DefineReader(DomainReader):
    """Reads `define:`, and explains a constant that should have been a define."""

    def defines(
        self, node: YNode, domain: Domain, time: TimeInterval | None, unknowns: tuple[str, ...], parameters: tuple[Parameter, ...]
    ) -> tuple[Define, ...]:
        node = self.mapping(node, "define", tuple(node.entries) if isinstance(node, YMap) else ())
        indexed = getattr(domain, "indexed", None)
        values: dict[str, sympy.Expr] = {}
        refused = _Refused(list(node.entries))
        scope = Scope(
            variables=domain.variables + ((time.name,) if time else ()),
            spatial=domain.variables,
            time=time.name if time else None,
            unknowns=unknowns,
            constants=tuple(self.constant_values),
            excluded=tuple(p.name for p in parameters),
            indexed={indexed: domain.variables} if indexed else {},
            defines=values,
            refused=refused,
            allow_unknowns=False,
        )
        result = []
        for key, value in node.entries.items():
            self.check_name(key, "define", node.key_locs[key], DEFINE_NAME)
            text = self.text(value, f"define.{key}")
            refused.current += 1
            values[key] = parse_expr(text.text, replace(scope, context=f"define `{key}`"), text.loc)
            result.append(Define(key, text, node.key_locs[key], values[key]))
        return tuple(result)

    def refuse_spatial_constant(self, key: str, text: Text, scope: Scope, entries: dict[str, YNode]) -> None:
        """Raise the located error for constant ``key`` if its value names a variable or a define.

        Called when the value has an undefined name: the domain is read here
        (with the constants read so far) only to learn the variables' names.
        """
        names: list[str] = []
        try:
            names += self.domain(entries["domain"]).variables if "domain" in entries else ()
        except SpecError:
            pass  # the domain's own error comes when it is read
        if isinstance(entries.get("time"), YMap):
            names += entries["time"].entries
        refused = {
            name: f"constant `{key}` depends on the variable `{name}`, but a constant is a number: "
            f"move `{key}` under `define:`, which names expressions of the variables"
            for name in names
        }
        section = entries.get("define")
        for name in section.entries if isinstance(section, YMap) else ():
            refused.setdefault(
                name, f"constant `{key}` uses `{name}`, an expression of the variables from `define:`: move `{key}` there too"
            )
        if refused:
            parse_expr(text.text, replace(scope, refused=refused), text.loc)
