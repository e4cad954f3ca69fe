"""`--set key.path=value` overrides, applied to the YAML tree before validation.

Overrides are validated like the file (one validator), and their errors
point at the flag, not at the spec.
"""

from __future__ import annotations

from ..errors import Loc, SpecError
from .yamlnodes import YMap, YNode, YScalar, YSeq, parse_yaml


def apply_override(root: YNode, override: str) -> YNode:
    """``key.path=value`` set in the YAML tree (``value`` read as YAML: ``[32, 32]`` is a list)."""
    where = Loc("--set", 1, 1, override)
    key, sep, value = override.partition("=")
    path = [k.strip() for k in key.split(".")]
    if not sep or not all(path):
        raise SpecError(f"override `{override}` must look like `key.path=value`", where)
    node = parse_yaml(value, "--set") if value.strip() else None
    if node is None:
        raise SpecError(f"override `{override}` has no value", where)
    node = _relocate(node, where.shifted(len(key) + 1))

    def put(current: YNode | None, keys: list[str]) -> YNode:
        if not keys:
            return node
        if current is not None and not isinstance(current, YMap):
            raise SpecError(f"override `{override}`: `{keys[0]}` is inside a value that is not a mapping", where)
        entries = dict(current.entries) if current else {}
        key_locs = dict(current.key_locs) if current else {}
        entries[keys[0]] = put(entries.get(keys[0]), keys[1:])
        key_locs.setdefault(keys[0], where)
        return YMap(entries, key_locs, current.loc if current else where)

    return put(root, path)


def _relocate(node: YNode, loc: Loc) -> YNode:
    """Point every position of an override's value at the override itself."""
    if isinstance(node, YScalar):
        return YScalar(node.text, loc, node.quoted, node.is_null)
    if isinstance(node, YSeq):
        return YSeq(tuple(_relocate(i, loc) for i in node.items), loc)
    return YMap({k: _relocate(v, loc) for k, v in node.entries.items()}, {k: loc for k in node.key_locs}, loc)
