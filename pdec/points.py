"""Tables of numbers read from CSV or NPZ (points for `pdec predict`, a spec's `data:` and
`reference:` files), and results written as CSV.

`pdec check` and the run read a spec's files through the same functions, so a
file that passes `check` is one the run can read. Accepted inputs
(``variables`` is the run's input order, e.g. ``x, t``; for `data:`, the
columns the spec maps):

- **CSV**: UTF-8 text; the first row is a header naming the columns, each
  variable once (other columns are ignored, order is free); every further
  row has as many cells as the header, and every variable's cell is a
  finite number written in ASCII (``0.5``, ``-1e-3``). Blank lines are
  skipped.
- **NPZ** (``numpy.savez``): one numeric array per variable, named like it,
  each of shape ``[N]`` or ``[N, 1]``; or one array ``X`` of shape
  ``[N, len(variables)]`` with the columns in the run's variable order. The
  per-variable arrays win when both are present. Object arrays are never
  unpickled.

Anything else is a `PdecError` saying what and where (line and column), and
never echoes the file's text. The output CSV has the variables, then one
column per unknown, then the derivatives when asked, by canonical name
(``"d(u,x)"``, ``laplacian(u)``: quoted where the name holds a comma, as CSV
requires); numbers are written with ``repr`` (the shortest text that reads
back as the same float64).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path
from typing import Sequence, TextIO

import numpy as np

from .errors import PdecError

_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*", re.ASCII)


def read_points(path: str | Path, variables: Sequence[str]) -> np.ndarray:
    """The points of a CSV or NPZ file as a float64 array ``[N, len(variables)]``."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        X = _read_npz(path, list(variables))
    else:
        X = _read_csv(path, list(variables))
    if len(X) == 0:
        raise PdecError(f"{path}: no points (no rows of numbers)")
    return X


def table_columns(path: str | Path) -> list[str]:
    """The column names of a CSV (its header row) or NPZ (its arrays), without reading the rest."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        with _open_npz(path) as npz:
            return list(npz.files)
    text = _csv_text(path)
    row = next((r for r in csv.reader(io.StringIO(text, newline="")) if r), [])
    return [h.strip() for h in row]


def read_reference(path: str | Path, variables: Sequence[str], unknowns: Sequence[str]):
    """A reference solution: ``(X, truth, grid_axes)`` with ``X`` ``[N, len(variables)]``, ``truth``
    one array ``[N]`` per unknown the file gives, and ``grid_axes`` the 1-D axes of a tensor grid
    (else None).

    Two layouts: scattered points (``X_test`` ``[N, d]``, ``y_ref`` ``[N]`` or ``[N, k]``, column j
    for the j-th unknown), or a tensor grid (one 1-D array per variable, and values named after the
    unknown, or ``usol`` for the first, with one entry per grid point in ``meshgrid(ij)`` order).
    Values may be NaN or infinite (the caller masks them); points may not."""
    path = Path(path)
    d = len(variables)
    with _open_npz(path) as npz:
        try:
            arrays = {k: _numeric(npz[k], k, path) for k in npz.files}
        except (ValueError, zipfile.BadZipFile, EOFError, OSError) as exc:
            reason = "an object array (not unpickled)" if "allow_pickle" in str(exc) else "a damaged array"
            raise PdecError(f"{path}: {reason}") from None
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    if "X_test" in arrays:
        X = arrays["X_test"].reshape(-1, d) if arrays["X_test"].ndim == 1 and d == 1 else arrays["X_test"]
        if X.ndim != 2 or X.shape[1] != d:
            raise PdecError(f"{path}: `X_test` has shape {list(X.shape)}; expected [N, {d}] ({', '.join(variables)})")
        if "y_ref" not in arrays:
            raise PdecError(f"{path}: `X_test` without `y_ref` (the values at those points)")
        values = arrays["y_ref"].reshape(len(X), -1) if arrays["y_ref"].size % max(len(X), 1) == 0 else None
        if values is None or len(X) == 0 or values.shape[1] > len(unknowns):
            raise PdecError(
                f"{path}: `y_ref` has shape {list(arrays['y_ref'].shape)}; expected [{len(X)}] or [{len(X)}, k] "
                f"with k <= {len(unknowns)} ({', '.join(unknowns)})"
            )
        truth, axes = {u: values[:, j] for j, u in enumerate(unknowns[: values.shape[1]])}, None
    else:
        missing = [v for v in variables if v not in arrays]
        if missing:
            raise PdecError(
                f"{path}: no array `{missing[0]}` and no `X_test`; give one 1-D array per variable "
                f"({', '.join(variables)}) for a grid, or `X_test` and `y_ref` for points"
            )
        axes = [arrays[v].reshape(-1) for v in variables]
        X = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
        truth = {}
        for j, u in enumerate(unknowns):
            key = u if u in arrays else ("usol" if j == 0 and "usol" in arrays else None)
            if key is not None:
                if arrays[key].size != len(X):
                    sizes = " x ".join(str(len(a)) for a in axes)
                    raise PdecError(f"{path}: `{key}` has {arrays[key].size} values; the grid ({sizes}) has {len(X)} points")
                truth[u] = arrays[key].reshape(-1)
        if not truth:
            raise PdecError(f"{path}: no values: name an array after an unknown ({', '.join(unknowns)}) or `usol`")
    if not np.isfinite(X).all():
        raise PdecError(f"{path}: point {int(np.argwhere(~np.isfinite(X))[0][0])} is not finite (NaN or infinite)")
    return X, truth, axes


def _csv_text(path: Path) -> str:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise PdecError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PdecError(f"{path}: not UTF-8 text (byte {exc.start}); a CSV is text with a header row") from None
    if "\x00" in text:
        raise PdecError(f"{path}: holds NUL bytes; a CSV is text with a header row")
    return text


def _read_csv(path: Path, variables: list[str]) -> np.ndarray:
    text = _csv_text(path)
    rows = csv.reader(io.StringIO(text, newline=""))
    header = None
    line = 0
    for line, row in enumerate(rows, 1):
        if row:
            header = [h.strip() for h in row]
            break
    if header is None:
        raise PdecError(f"{path}: empty; the CSV must start with a header naming the columns ({', '.join(variables)})")
    duplicates = sorted({h for h in header if h and header.count(h) > 1} & set(variables))
    if duplicates:
        raise PdecError(f"{path}: the header names `{duplicates[0]}` twice")
    missing = [v for v in variables if v not in header]
    if missing:
        raise PdecError(
            f"{path}: the header has no column `{missing[0]}`; it must name every variable of the run "
            f"({', '.join(variables)}) in its first row"
        )
    index = [header.index(v) for v in variables]
    values: list[list[float]] = []
    for line, row in enumerate(rows, line + 1):
        if not row:
            continue
        if len(row) != len(header):
            raise PdecError(f"{path}:{line}: {len(row)} cells, but the header has {len(header)}")
        point = []
        for v, j in zip(variables, index):
            cell = row[j]
            if not _NUMBER.fullmatch(cell):
                raise PdecError(f"{path}:{line}: column `{v}` is not a finite number")
            point.append(float(cell))
        values.append(point)
    return np.asarray(values, dtype=np.float64).reshape(-1, len(variables))


def _open_npz(path: Path):
    try:
        npz = np.load(path, allow_pickle=False)
    except OSError as exc:
        raise PdecError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, zipfile.BadZipFile, EOFError):
        raise PdecError(f"{path}: not an .npz file (a zip of arrays written by numpy.savez)") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise PdecError(f"{path}: a single array, not an .npz file; save with numpy.savez(path, x=..., t=...)")
    return npz


def _read_npz(path: Path, variables: list[str]) -> np.ndarray:
    with _open_npz(path) as npz:
        try:
            if all(v in npz.files for v in variables):
                columns = [_column(npz[v], v, path) for v in variables]
                lengths = {len(c) for c in columns}
                if len(lengths) > 1:
                    sizes = ", ".join(f"{v} {len(c)}" for v, c in zip(variables, columns))
                    raise PdecError(f"{path}: the variables' arrays differ in length ({sizes})")
                X = np.stack(columns, axis=1)
            elif "X" in npz.files:
                X = _numeric(npz["X"], "X", path)
                if X.ndim == 1 and len(variables) == 1:
                    X = X[:, None]
                if X.ndim != 2 or X.shape[1] != len(variables):
                    raise PdecError(
                        f"{path}: `X` has shape {list(X.shape)}; expected [N, {len(variables)}] "
                        f"with columns {', '.join(variables)}"
                    )
            else:
                missing = next(v for v in variables if v not in npz.files)
                raise PdecError(
                    f"{path}: no array `{missing}` and no `X`; give one array per variable "
                    f"({', '.join(variables)}) or `X` with those columns"
                )
        except (ValueError, zipfile.BadZipFile, EOFError, OSError) as exc:
            reason = "an object array (not unpickled)" if "allow_pickle" in str(exc) else "a damaged array"
            raise PdecError(f"{path}: {reason}") from None
    X = np.asarray(X, dtype=np.float64)
    if not np.isfinite(X).all():
        row = int(np.argwhere(~np.isfinite(X))[0][0])
        raise PdecError(f"{path}: point {row} is not finite (NaN or infinite)")
    return X


def _numeric(array: np.ndarray, name: str, path: Path) -> np.ndarray:
    if array.dtype.kind not in "biuf":
        raise PdecError(f"{path}: array `{name}` holds {array.dtype} values, not numbers")
    return array


def _column(array: np.ndarray, name: str, path: Path) -> np.ndarray:
    array = _numeric(array, name, path)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise PdecError(f"{path}: array `{name}` has shape {list(array.shape)}; expected [N] or [N, 1]")
    return array


def write_csv(out: TextIO, columns: Sequence[str], table: np.ndarray) -> None:
    """A header of ``columns`` (quoted where a name holds a comma: ``"d(u,x)"``), then one line per
    row of ``table`` (``repr`` of each float64)."""
    csv.writer(out, lineterminator="\n").writerow(columns)
    for row in np.asarray(table, dtype=np.float64).tolist():
        out.write(",".join(map(repr, row)) + "\n")
