"""One exception tree for everything pdec reports to a user.

`SpecError` carries the position of the offending text so that the CLI can
print ``FILE:LINE:COL: error: message`` with the source line and a caret,
without a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Loc:
    """A position in a spec file: 1-based line and column."""

    file: str
    line: int
    col: int
    source_line: str = ""

    def shifted(self, offset: int) -> "Loc":
        """The position ``offset`` characters further along the same line."""
        return Loc(self.file, self.line, self.col + offset, self.source_line)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class PdecError(Exception):
    """Base class of every error pdec raises on purpose."""


class SpecError(PdecError, ValueError):
    """A spec that cannot be compiled, with where and why."""

    def __init__(self, message: str, loc: Loc | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc

    def format(self) -> str:
        """``FILE:LINE:COL: error: message`` then the source line and a caret."""
        if self.loc is None:
            return f"error: {self.message}"
        text = f"{self.loc}: error: {self.message}"
        if self.loc.source_line:
            line = self.loc.source_line.rstrip("\n").expandtabs(1)
            text += f"\n    {line}\n    {' ' * max(self.loc.col - 1, 0)}^"
        return text

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True)
class SpecWarning:
    """Something that compiles but is probably not what the user meant."""

    message: str
    loc: Loc | None = None

    def format(self) -> str:
        where = f"{self.loc}: " if self.loc else ""
        return f"{where}warning: {self.message}"


def did_you_mean(name: str, candidates) -> str:
    """`` Did you mean `x`?`` when a candidate is close to ``name``, else ``""``."""
    import difflib

    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" Did you mean `{close[0]}`?" if close else ""


def abbreviate(text: str, limit: int = 40) -> str:
    """``text`` as written, or its ends and its length when longer than ``limit``: an error quoting
    a 5,000-digit number must still fit a terminal."""
    if len(text) <= limit:
        return text
    return f"{text[: limit // 2]}…{text[-8:]} ({len(text)} characters)"
