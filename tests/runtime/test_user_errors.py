"""Failures the user causes at run time are user errors: a message and exit 2, never "a bug in pdec"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pdec.cli import main

ROOT = Path(__file__).resolve().parents[2]
HEAT = ROOT / "specs" / "heat.yaml"
FAST = ["--steps", "2", "--set", "model.hidden=[4]", "--set", "training.points={interior: 8, boundary: 4, initial: 4}",
        "--set", "output.plots=false", "--set", "output.grid=5", "--optimizer", "adam", "-q"]  # fmt: skip


def _solve(capsys, *args) -> tuple[int, str]:
    code = main(["solve", *map(str, args)])
    return code, capsys.readouterr().err


def test_cuda_without_cuda_is_a_user_error(capsys, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, err = _solve(capsys, HEAT, "--device", "cuda", "--out", tmp_path / "run", *FAST)
    assert code == 2 and "no CUDA device" in err and "bug" not in err


def test_run_directory_that_cannot_be_made(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, err = _solve(capsys, HEAT, "--out", blocker / "run", *FAST)
    assert code == 2 and "cannot write the run directory" in err


def test_resume_with_a_checkpoint_of_another_problem(capsys, tmp_path):
    out = tmp_path / "run"
    assert _solve(capsys, HEAT, "--out", out, *FAST)[0] == 0
    code, err = _solve(capsys, HEAT, "--out", out, "--resume", *FAST, "--set", "constants.kappa=0.25")
    assert code == 2 and "different version of this problem" in err and "bug" not in err


def test_unreadable_data_file_is_a_user_error(capsys, tmp_path):
    data = tmp_path / "obs.csv"
    data.write_text("x,t,u\n0.5,0.1,0.2\n")
    spec = tmp_path / "inv.yaml"
    spec.write_text(HEAT.read_text(encoding="utf-8").split("exact:")[0] + "  - {data: obs.csv}\n")
    data.write_bytes(b"x,t,u\n0.5,zero,\x00\n")  # spoiled after `check` read its header
    code, err = _solve(capsys, spec, "--out", tmp_path / "run", *FAST)
    assert code == 2 and "NUL bytes" in err and "bug" not in err


def test_constant_exact_solution_is_evaluated(capsys, tmp_path):
    spec = tmp_path / "zero.yaml"
    spec.write_text(
        "domain: {x: [0, 1]}\nunknowns: [u]\nequations: [u_xx = 0]\n"
        "conditions: [{on: x = 0 or x = 1, impose: u = 0}]\nexact: {u: 0}\n"
    )
    code, _ = _solve(capsys, spec, "--out", tmp_path / "run", "--steps", "2", "--set", "output.plots=false", "-q")
    assert code == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert isinstance(summary["rel_l2"]["u"], float)
