"""Python identifiers for spec names, chosen so that generated code is valid.

Spec names were validated (letters, digits, `_`), but may still be Python
keywords (`lambda`), builtins or names the generated module itself uses.
Every identifier in emitted code comes from here.
"""

from __future__ import annotations

import builtins
import keyword

from ..taylor.operators import Laplacian, Operator, Partial

MODULE_NAMES = frozenset({"torch", "math", "np", "X", "D", "P", "N", "normals", "activation", "annotations"})


class Namer:
    """Hands out unique, safe identifiers; the same request gets the same answer."""

    def __init__(self) -> None:
        self._given: dict[tuple, str] = {}
        self._used: set[str] = set(MODULE_NAMES)

    def _unique(self, key: tuple, wanted: str) -> str:
        if key in self._given:
            return self._given[key]
        name = wanted
        if keyword.iskeyword(name) or keyword.issoftkeyword(name) or hasattr(builtins, name) or name in self._used:
            name = f"{wanted}_"
        i = 2
        while name in self._used:
            name, i = f"{wanted}_{i}", i + 1
        if not name.isidentifier():  # unreachable for validated names; a guard for the future
            raise ValueError(f"cannot make an identifier of {wanted!r}")
        self._given[key] = name
        self._used.add(name)
        return name

    def variable(self, name: str) -> str:
        return self._unique(("var", name), name)

    def parameter(self, name: str) -> str:
        return self._unique(("param", name), name)

    def derivative(self, unknown: str, op: Operator, variables: tuple[str, ...]) -> str:
        """``u``, ``u_xx``, ``u_x1_x2``, ``lap_u``, ``lap2_u``."""
        if isinstance(op, Laplacian):
            wanted = f"{'lap' if op.power == 1 else 'lap2'}_{unknown}"
        elif isinstance(op, Partial) and op.index:
            names = [variables[i] for i in op.index]
            sep = "" if all(len(n) == 1 for n in names) else "_"
            wanted = f"{unknown}_{sep.join(names)}"
        else:
            wanted = unknown
        return self._unique(("deriv", unknown, op, tuple(variables)), wanted)

    def function(self, kind: str, name: str) -> str:
        """``residual_pde``, ``exact_u``: a function defined by the module."""
        return self._unique(("func", kind, name), f"{kind}_{name}")
