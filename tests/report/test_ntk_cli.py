"""`pdec ntk` in a subprocess: spectra at initialization and at each checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import pdec

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "specs" / "poisson1d.yaml")


def test_pdec_ntk_writes_spectra(tmp_path):
    run = tmp_path / "run"
    settings = ["model.hidden=[6]", "training.points={interior: 16, boundary: 4}", "output.plots=false",
                "output.checkpoint_every=2"]
    pdec.solve(SPEC, steps=4, out=run, settings=settings)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-m", "pdec", "ntk", SPEC, "--run", str(run), "--points", "12", "--out", str(tmp_path / "ntk")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    data = np.load(tmp_path / "ntk" / "ntk.npz")
    assert list(data["labels"]) == ["init", "step 2", "step 4"]
    assert list(data["terms"]) == ["pde", "bc1"]
    for i in range(3):
        eig = data[f"eig_{i}_pde"]
        assert len(eig) == 12 and np.all(np.diff(eig) <= 0) and eig[0] > 0
    assert (tmp_path / "ntk" / "ntk.png").stat().st_size > 0
