"""The grammar ships inside the wheel: a non-editable install must find it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0, reason="no pip"
)
def test_wheel_carries_grammar(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 and "hatchling" in (result.stdout + result.stderr):
        pytest.skip("hatchling is not installed in this environment")
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("pdec-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "pdec/grammars/pde.lark" in names
        assert zf.read("pdec/grammars/pde.lark") == (ROOT / "grammars" / "pde.lark").read_bytes()
