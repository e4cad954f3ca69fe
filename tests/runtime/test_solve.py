"""`pdec solve`: summary contract, exact resume, clean stops, divergence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import pdec
from resume_check import assert_resume_is_bit_identical, state
from pdec.runtime.rundir import RunDir

ROOT = Path(__file__).resolve().parents[2]
HEAT = ROOT / "specs" / "heat.yaml"
CONTRACT = {"name", "optimizer", "steps", "wall_time_s", "final_loss", "status", "world_size"}




def test_summary_has_contract_fields(tmp_path, small):
    result = pdec.solve(HEAT, steps=6, out=tmp_path, settings=small + ["training.optimizer=adam"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert CONTRACT <= set(summary)
    assert summary == result.summary
    assert summary["steps"] == 6 and summary["status"] == "completed" and summary["optimizer"] == "adam"
    assert summary["world_size"] == 1  # a plain run is one process (torchrun runs: tests/distributed)
    assert set(summary["rel_l2"]) == {"u"} and 0 < summary["rel_l2"]["u"] < 10
    assert "resumed_from" not in summary
    for name in ("metrics.jsonl", "solution.npz", "resolved.json", "spec.yaml", "loss.png", "solution_u.png"):
        assert (tmp_path / name).exists(), name
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]  # the loss curve: at least 100 points or every step
    full = {r["step"] for r in records if "rel_l2" in r}
    assert {5, 6} <= full  # log_every = 5 and the last step (more only if a step took over LOG_SECONDS)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs", "adam+lbfgs"])
def test_resume_is_bit_identical(tmp_path, small, optimizer):
    assert_resume_is_bit_identical(HEAT, small + [f"training.optimizer={optimizer}", "output.plots=false"], tmp_path, steps=12)


def test_resume_continues_partial_run(tmp_path, small):
    settings = small + ["training.optimizer=adam", "output.plots=false", "output.checkpoint_every=4"]
    straight = pdec.solve(HEAT, steps=10, out=tmp_path / "a", settings=settings)
    first = pdec.solve(HEAT, steps=10, out=tmp_path / "b", settings=settings + ["training.lr=0.001"], max_time=0.0)
    assert first.summary["steps"] == 0
    resumed = pdec.solve(HEAT, steps=10, out=tmp_path / "b", settings=settings, resume=True)
    assert resumed.summary["resumed_from"] == 0
    assert all(torch.equal(a, b) for a, b in zip(state(straight.problem), state(resumed.problem)))


def test_divergence_restores_and_reports(tmp_path, small):
    spec = tmp_path / "nan.yaml"
    spec.write_text(
        "domain: {x: [0, 1]}\nunknowns: [u]\nequations:\n  - u_xx = log(x - 2)\n"
        "conditions:\n  - {on: x = 0 or x = 1, impose: u = 0}\ntraining: {optimizer: adam, steps: 50}\n"
    )
    result = pdec.solve(spec, out=tmp_path / "run", settings=small + ["output.plots=false"])
    assert result.summary["status"] == "diverged"
    assert "pde" in result.summary["message"] and "non-finite" in result.summary["message"]
    assert all(torch.isfinite(p).all() for p in state(result.problem))


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    run = RunDir(tmp_path)
    run.save_checkpoint(1, {"value": torch.ones(3)})

    def crash(*args, **kwargs):
        raise OSError("killed while writing")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        run.save_checkpoint(2, {"value": torch.zeros(3)})
    monkeypatch.undo()
    assert [p.name for p in run.checkpoints()] == ["checkpoint-000000001.pt"]
    assert not list(tmp_path.glob("*.tmp"))
    assert torch.equal(run.load_latest_checkpoint()["value"], torch.ones(3))


def test_truncated_newest_checkpoint_falls_back(tmp_path):
    run = RunDir(tmp_path)
    run.save_checkpoint(1, {"value": torch.ones(3)})
    run.save_checkpoint(2, {"value": torch.zeros(3)})
    newest = run.checkpoints()[-1]
    newest.write_bytes(newest.read_bytes()[:20])
    assert torch.equal(run.load_latest_checkpoint()["value"], torch.ones(3))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_checkpoints_and_exits_130(tmp_path, sig):
    """Ctrl-C and a scheduler's SIGTERM both stop after the step, with a checkpoint and the summary."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "pdec", "solve", str(HEAT), "--steps", "100000", "--out", str(out), "-q"]
    cmd += ["--set", "model.hidden=[8]", "--set", "training.log_every=1", "--set", "output.plots=false"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "metrics.jsonl").exists():
        time.sleep(0.1)
    assert (out / "metrics.jsonl").exists(), proc.communicate(timeout=5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 0 < summary["steps"] < 100000
    assert RunDir(out).checkpoints()
