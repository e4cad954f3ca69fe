"""`pdec codegen`: a script that needs only torch and numpy and matches `pdec solve`."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pdec

ROOT = Path(__file__).resolve().parents[2]
HEAT = ROOT / "specs" / "heat.yaml"
ALLOWED = {"torch", "numpy", "__future__"}
STDLIB = set(sys.stdlib_module_names)


def test_standalone_matches_solve_without_pdec(tmp_path, small):
    sets = [a for s in small + ["output.plots=false"] for a in ("--set", s)]
    script = tmp_path / "train_heat.py"
    subprocess.run([sys.executable, "-m", "pdec", "codegen", str(HEAT), "-o", str(script), *sets], check=True)
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
    solved = pdec.solve(HEAT, steps=8, out=tmp_path / "solve_run", settings=small + ["output.plots=false"]).summary
    for key in ("final_loss", "rel_l2", "losses", "steps", "status", "optimizer", "name"):
        assert from_script[key] == solved[key], key
