"""Messages about names: lists of them, and what to say when one is not defined."""

from __future__ import annotations

from ..errors import did_you_mean


def names_list(names, limit: int = 8) -> str:
    """``x, y, t`` — or ``x1, x2, x3, …, x100`` when there are many."""
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[: limit - 2]) + f", …, {names[-1]} ({len(names)} in all)"


def undefined_name(name: str, known) -> str:
    """The message for a name nothing defines. `i` and `j` are not typos of `pi`: people write them
    for the imaginary unit or an index, so say what the language has instead."""
    if name in ("i", "j", "I"):
        return (
            f"undefined name `{name}`: the language has real numbers only (no imaginary unit); "
            f"an index is named by a sum, `sum({name.lower()}, 1, n, ...)`"
        )
    hint = did_you_mean(name, known)
    return f"undefined name `{name}`" + (f".{hint}" if hint else "")
