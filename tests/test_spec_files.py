"""`pdec check` reads a spec's `data:` and `reference:` files as the run will: a malformed file is
an error located at the line that names it (exit 2), never "a bug in pdec" and never a divergence
at run time; a non-finite reference value is a warning naming where."""

from __future__ import annotations

import io

import numpy as np
import pytest

from pdec.cli import main

BASE = "domain: {x: [0, 1]}\nunknowns: [u]\nequations: [u_xx = 0]\nconditions:\n  - {on: x = 0 or x = 1, impose: u = 0}\n"


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


BAD_DATA = {
    "ragged.csv": (b"x,u\n0.1,0.2\n0.3\n", ":3: 1 cells, but the header has 2"),
    "non-utf8-cell.csv": (b"x,u\n0.1,\xff\n", "not UTF-8 text (byte 8)"),
    "non-utf8-header.csv": (b"x\xff,u\n0.1,0.2\n", "not UTF-8 text (byte 1)"),
    "text.csv": (b"x,u\n0.1,abc\n", ":2: column `u` is not a finite number"),
    "blank.csv": (b"x,u\n0.1,\n", ":2: column `u` is not a finite number"),
    "nan.csv": (b"x,u\n0.1,nan\n", ":2: column `u` is not a finite number"),
    "header-only.csv": (b"x,u\n", "no points"),
    "not-a-zip.npz": (b"hello", "not an .npz file"),
    "wrong-shape.npz": (lambda: {"x": np.zeros((3, 2)), "u": np.zeros(3)}, "`x` has shape [3, 2]"),
    "strings.npz": (lambda: {"x": np.array(["a"]), "u": np.array(["b"])}, "not numbers"),
    "objects.npz": (lambda: {"x": np.array([1, "a"], dtype=object), "u": np.zeros(2)}, "object array"),
    "single-array.npz": (_npy(np.zeros(3)), "a single array"),
}


def _write(path, content) -> None:
    if callable(content):
        np.savez(path, **content())
    else:
        path.write_bytes(content)


def _check(capsys, spec) -> tuple[int, str]:
    code = main(["check", str(spec)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(BAD_DATA))
def test_check_reads_the_data_file(tmp_path, capsys, name):
    content, expected = BAD_DATA[name]
    _write(tmp_path / name, content)
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE + f"  - {{data: {name}}}\n")
    code, err = _check(capsys, spec)
    assert code == 2 and expected in err and "bug" not in err, err
    assert err.startswith(f"{spec}:6:5: error: data file of condition `data1`")


BAD_REFERENCE = {
    "not-a-zip.npz": (b"hello", "not an .npz file"),
    "wrong-size.npz": (lambda: {"x": np.linspace(0, 1, 5), "usol": np.zeros(7)}, "`usol` has 7 values"),
    "strings.npz": (lambda: {"x": np.array(["a"]), "usol": np.array(["b"])}, "not numbers"),
    "no-values.npz": (lambda: {"x": np.linspace(0, 1, 5)}, "no values"),
    "no-grid.npz": (lambda: {"usol": np.zeros(5)}, "no array `x` and no `X_test`"),
    "points-shape.npz": (lambda: {"X_test": np.zeros((4, 3)), "y_ref": np.zeros(4)}, "`X_test` has shape [4, 3]"),
    "points-values.npz": (lambda: {"X_test": np.zeros((4, 1)), "y_ref": np.zeros(3)}, "`y_ref` has shape [3]"),
    "points-nan.npz": (lambda: {"X_test": np.array([[np.nan]]), "y_ref": np.zeros(1)}, "point 0 is not finite"),
}


@pytest.mark.parametrize("name", sorted(BAD_REFERENCE))
def test_check_reads_the_reference(tmp_path, capsys, name):
    content, expected = BAD_REFERENCE[name]
    _write(tmp_path / name, content)
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE + f"reference: {name}\n")
    code, err = _check(capsys, spec)
    assert code == 2 and expected in err and "bug" not in err, err
    assert err.startswith(f"{spec}:6:12: error: reference:")


def test_non_finite_reference_value_is_a_warning_naming_where(tmp_path, capsys):
    np.savez(tmp_path / "ref.npz", x=np.linspace(0, 1, 5), usol=np.array([np.nan, 0, 0, 0, 0]))
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE + "reference: ref.npz\n")
    code, err = _check(capsys, spec)
    assert code == 0
    assert f"{spec}:6:12: warning: the reference value of `u` is not finite at 1 of 5 points, first at (x=0)" in err
