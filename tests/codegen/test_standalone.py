"""`pdec codegen`: a script that needs only torch and numpy and matches `pdec solve`."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pdec

ROOT = Path(__file__).resolve().parents[2]
HEAT = ROOT / "specs" / "heat.yaml"
ALLOWED = {"torch", "numpy", "__future__"}
STDLIB = set(sys.stdlib_module_names)


CASES = [("heat", []), ("wave1d", []), ("advection", []), ("heat", ["model.fourier={features: 4, scale: 1}"])]
# wave1d: exact conditions, rar-d; advection: exact periodicity; heat + Fourier features


@pytest.mark.parametrize("name, extra", CASES, ids=["heat", "wave1d", "advection", "heat-fourier"])
def test_standalone_matches_solve_without_pdec(tmp_path, small, name, extra):
    spec = ROOT / "specs" / f"{name}.yaml"
    small = small + extra
    sets = [a for s in small + ["output.plots=false"] for a in ("--set", s)]
    script = tmp_path / f"train_{name}.py"
    subprocess.run([sys.executable, "-m", "pdec", "codegen", str(spec), "-o", str(script), *sets], check=True)
    tree = ast.parse(script.read_text())
    modules = {
        (n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in (n.names if isinstance(n, ast.Import) else [None])
    }
    assert modules - STDLIB <= ALLOWED, modules - STDLIB
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "pdec.py").write_text("raise ImportError('standalone scripts must not import pdec')\n")
    env = {"PYTHONPATH": str(blocker), "PATH": "/usr/bin:/bin"}
    # the same thread count as this process: float reductions differ between thread counts
    env |= {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}
    out = tmp_path / "script_run"
    done = subprocess.run(
        [sys.executable, str(script), "--steps", "8", "--out", str(out), "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    from_script = json.loads(done.stdout)
    solved = pdec.solve(spec, steps=8, out=tmp_path / "solve_run", settings=small + ["output.plots=false"]).summary
    for key in ("final_loss", "rel_l2", "losses", "steps", "status", "optimizer", "name"):
        assert from_script[key] == solved[key], key


def test_codegen_takes_the_solve_options_and_the_script_its_own(tmp_path, small):
    """`pdec codegen --optimizer/--steps` bake settings in like `pdec solve`; the script
    accepts `--optimizer`, `--steps` and `--resume` at run time."""
    script = tmp_path / "train.py"
    sets = [a for s in small + ["output.plots=false"] for a in ("--set", s)]
    subprocess.run(
        [sys.executable, "-m", "pdec", "codegen", str(HEAT), "-o", str(script), "--optimizer", "lbfgs", "--steps", "3", *sets],
        check=True, cwd=ROOT,
    )  # fmt: skip
    assert "TrainingSettings(optimizer='lbfgs', steps=3" in script.read_text()
    out = tmp_path / "run"
    first = subprocess.run(
        [sys.executable, str(script), "--optimizer", "adam", "--out", str(out), "--json"], capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr[-2000:]
    assert json.loads(first.stdout)["optimizer"] == "adam" and json.loads(first.stdout)["steps"] == 3
    more = subprocess.run(
        [sys.executable, str(script), "--optimizer", "adam", "--steps", "5", "--resume", "--out", str(out), "--json"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert more.returncode == 0, more.stderr[-2000:]
    assert json.loads(more.stdout)["steps"] == 5 and json.loads(more.stdout)["resumed_from"] == 3
