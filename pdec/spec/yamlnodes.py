"""YAML to plain values that remember where they came from.

PyYAML's safe composer gives nodes with marks; we turn them into three small
types (`YMap`, `YSeq`, `YScalar`) so that every later error can point at the
exact line and column. Mapping keys are taken as written (YAML 1.1 would read
the key ``on`` as the boolean true), anchors and aliases are refused (a spec
has no use for them and they are the vector of the "billion laughs" bomb),
and scalars keep their raw text so numbers like ``1e-3`` are not lost to
YAML 1.1's float rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from ..errors import Loc, SpecError

MAX_SPEC_BYTES = 1_000_000
MAX_DEPTH = 50
"""Nesting of lists and mappings: a spec needs four; PyYAML's composer recurses, and 500 levels overflow the stack."""


@dataclass(frozen=True)
class YScalar:
    """A scalar: its raw text, whether it was quoted, and where it starts."""

    text: str
    loc: Loc
    quoted: bool = False
    is_null: bool = False


@dataclass(frozen=True)
class YSeq:
    items: tuple["YNode", ...]
    loc: Loc


@dataclass(frozen=True)
class YMap:
    """A mapping with string keys, in file order, each key with its position."""

    entries: dict[str, "YNode"]
    key_locs: dict[str, Loc]
    loc: Loc


YNode = YScalar | YSeq | YMap


def _loc(mark: yaml.Mark, file: str, lines: list[str]) -> Loc:
    line = lines[mark.line] if mark.line < len(lines) else ""
    return Loc(file, mark.line + 1, mark.column + 1, line)


def parse_yaml(text: str, file: str) -> YNode | None:
    """Parse ``text`` into located nodes; ``None`` for an empty document."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        raise SpecError(f"spec is larger than {MAX_SPEC_BYTES} bytes", Loc(file, 1, 1))
    if "\x00" in text:
        raise SpecError("spec contains a NUL byte: is this a binary file?", Loc(file, 1, 1))
    lines = text.splitlines()
    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise SpecError(
                    "YAML aliases (`*name`) are not supported in specs", _loc(event.start_mark, file, lines)
                )
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    loc = _loc(event.start_mark, file, lines)
                    raise SpecError(f"lists and mappings nested more than {MAX_DEPTH} levels deep", loc)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = _loc(mark, file, lines) if mark else Loc(file, 1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(f"invalid YAML: {problem}", loc) from None
    except yaml.reader.ReaderError as exc:  # an unprintable character: locate it ourselves
        before = text[: exc.position]
        line = before.count("\n")
        col = exc.position - (before.rfind("\n") + 1)
        loc = Loc(file, line + 1, col + 1, lines[line] if line < len(lines) else "")
        raise SpecError(f"invalid YAML: unacceptable character #x{exc.character:04x}: {exc.reason}", loc) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", Loc(file, 1, 1)) from None
    if root is None:
        return None
    def convert(node: yaml.Node) -> YNode:
        loc = _loc(node.start_mark, file, lines)
        if isinstance(node, yaml.ScalarNode):
            quoted = node.style in ("'", '"')
            is_null = node.tag == "tag:yaml.org,2002:null"
            return YScalar(node.value, loc.shifted(1) if quoted else loc, quoted, is_null)
        if isinstance(node, yaml.SequenceNode):
            return YSeq(tuple(convert(item) for item in node.value), loc)
        entries: dict[str, YNode] = {}
        key_locs: dict[str, Loc] = {}
        for key_node, value_node in node.value:
            key_loc = _loc(key_node.start_mark, file, lines)
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecError("mapping keys must be plain names", key_loc)
            key = key_node.value
            if key == "<<":
                raise SpecError("YAML merge keys (`<<`) are not supported in specs", key_loc)
            if key in entries:
                raise SpecError(f"duplicate key `{key}`", key_loc)
            entries[key] = convert(value_node)
            key_locs[key] = key_loc
        return YMap(entries, key_locs, loc)

    return convert(root)
