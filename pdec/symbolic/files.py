"""The files a spec names (`data:` and `reference:`), read at `pdec check` as the run will read them.

A file that passes here is one the run can read: both go through
`pdec.points`, which refuses text, blank, NaN and ragged cells, non-UTF-8
text, arrays of the wrong shape or of strings, and files that are not an
``.npz``. Errors are located at the spec line that names the file.
"""

from __future__ import annotations

import numpy as np

from ..geometry import contains

from ..errors import PdecError, SpecError, SpecWarning
from ..points import read_points, read_reference, table_columns
from ..spec.schema import Condition, Reference, Spec


def data_columns(c: Condition, spec: Spec) -> tuple[tuple[str, str], ...]:
    """Map each variable and observed unknown to a column of the data file, and check its cells."""
    mapping = dict(c.columns)
    for key in mapping:
        if key not in spec.variables and key not in spec.unknowns:
            raise SpecError(f"`columns` maps `{key}`, which is neither a variable nor an unknown", c.loc)
    try:
        available = table_columns(c.data)
    except PdecError as exc:
        raise SpecError(f"data file of condition `{c.name}`: {exc}", c.loc) from None
    resolved = []
    for name in (*spec.variables, *spec.unknowns):
        column = mapping.get(name, name)
        if column in available:
            resolved.append((name, column))
        elif name in spec.variables or name in mapping:
            raise SpecError(
                f"data file `{c.data.name}` has no column `{column}` for `{name}` "
                f"({len(available)} column{'s' * (len(available) != 1)}; name its column with `columns:`)",
                c.loc,
            )
    if not any(name in spec.unknowns for name, _ in resolved):
        raise SpecError(f"data file `{c.data.name}` has no column for any unknown ({', '.join(spec.unknowns)})", c.loc)
    try:
        read_points(c.data, [column for _, column in resolved])
    except PdecError as exc:
        raise SpecError(f"data file of condition `{c.name}`: {exc}", c.loc) from None
    return tuple(resolved)


def check_reference(reference: Reference, spec: Spec, geometry) -> list[SpecWarning]:
    """Read the reference file as the run will; a warning naming the first point of the domain
    where a value is not finite (those points are left out of the error metrics and plots; points
    outside a domain that is not a box are dropped without a word, as NaN is how files mark them)."""
    try:
        X, truth, _ = read_reference(reference.path, spec.variables, spec.unknowns)
    except PdecError as exc:
        raise SpecError(f"reference: {exc}", reference.loc) from None
    warnings = []
    inside = contains(geometry, X[:, : geometry.dim], 1e-9)
    for u, values in truth.items():
        bad = ~np.isfinite(values) & inside
        if bad.any():
            i = int(np.argmax(bad))
            at = ", ".join(f"{v}={X[i, j]:.3g}" for j, v in enumerate(spec.variables))
            warnings.append(
                SpecWarning(
                    f"the reference value of `{u}` is not finite at {int(bad.sum())} of {len(values)} points, "
                    f"first at ({at}); those points are left out of the error",
                    reference.loc,
                )
            )
    return warnings
