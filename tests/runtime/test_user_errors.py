"""Failures the user causes at run time are user errors: a message and exit 2, never "a bug in pdec"."""

from __future__ import annotations

import json
import math
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
    assert summary["rel_l2"]["u"] is None  # a relative error of a zero solution is undefined (it read 1e300)


def _numbers_or_null(value) -> bool:
    if isinstance(value, dict):
        return all(_numbers_or_null(v) for v in value.values())
    if isinstance(value, list):
        return all(_numbers_or_null(v) for v in value)
    return value is None or not isinstance(value, float) or math.isfinite(value)


def test_exact_that_is_nan_on_the_boundary_is_masked(capsys, tmp_path):
    """`sin(x)/x` is 0/0 at x = 0: a warning at check, then training, metrics and plots over the other
    points (the 2-D plot crashed on the NaN), and a summary of numbers or null."""
    spec = tmp_path / "sinc.yaml"
    spec.write_text(
        "domain: {x: [0, 1], y: [0, 1]}\nunknowns: [u]\nequations: [u_xx + u_yy = 0]\n"
        "conditions: [{on: boundary, impose: u = 0}]\nexact: {u: sin(x)/x}\n"
    )
    assert main(["check", str(spec)]) == 0
    assert "`exact` in boundary `bc1` is not finite at (x=0, y=" in capsys.readouterr().err
    out = tmp_path / "run"
    code, err = _solve(capsys, spec, "--out", out, "--steps", "2", "--set", "output.grid=9", "--set", "model.hidden=[4]")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert math.isfinite(summary["rel_l2"]["u"]) and _numbers_or_null(summary)
    assert (out / "solution_u.png").exists()


def test_summary_holds_null_for_a_non_finite_value(tmp_path):
    from pdec.runtime.rundir import RunDir

    run = RunDir(tmp_path)
    run.write_json("summary.json", {"final_loss": float("nan"), "rel_l2": {"u": float("inf")}, "steps": 3})
    assert json.loads((tmp_path / "summary.json").read_text()) == {"final_loss": None, "rel_l2": {"u": None}, "steps": 3}


def test_no_op_resume_of_a_completed_run_keeps_its_final_loss(capsys, tmp_path):
    out = tmp_path / "run"
    assert _solve(capsys, HEAT, "--out", out, *FAST)[0] == 0
    first = json.loads((out / "summary.json").read_text())
    assert _solve(capsys, HEAT, "--out", out, "--resume", *FAST)[0] == 0
    again = json.loads((out / "summary.json").read_text())
    assert again["steps"] == first["steps"] == 2
    assert again["final_loss"] == first["final_loss"] and again["losses"] == first["losses"]
