"""The one check that a run stopped part-way and resumed ends exactly where an uninterrupted
run ends (every optimizer, weighting and feature that keeps state is checked with it)."""

from __future__ import annotations

from pathlib import Path

import torch

import pdec


def state(problem) -> list[torch.Tensor]:
    """Everything training changes or a checkpoint restores: the network (buffers included) and
    the learnable PDE parameters."""
    return [t.detach().clone() for t in problem.model.state_dict().values()] + [
        p.detach().clone() for p in problem.parameters.values()
    ]


def assert_resume_is_bit_identical(spec: str | Path, settings: list[str], tmp_path: Path, steps: int = 8):
    """Stop with a wall-clock budget that expires after the first step, resume, and compare with
    a straight run of ``steps``: the end state must not depend on where the run stopped."""
    straight = pdec.solve(spec, steps=steps, out=tmp_path / "straight", settings=settings)
    stopped = pdec.solve(spec, steps=steps, out=tmp_path / "split", settings=settings, max_time=1e-9)
    assert stopped.summary["status"] == "time-limit" and stopped.summary["steps"] < steps
    resumed = pdec.solve(spec, steps=steps, out=tmp_path / "split", settings=settings, resume=True)
    assert resumed.summary["resumed_from"] == stopped.summary["steps"]
    assert resumed.summary["steps"] == steps
    for a, b in zip(state(straight.problem), state(resumed.problem), strict=True):
        assert torch.equal(a, b)
    assert resumed.summary["final_loss"] == straight.summary["final_loss"]
    return straight, resumed
