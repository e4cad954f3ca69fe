"""Data parallelism on two gloo ranks (issue 16), each test spawning its ranks itself.

One torchrun launch runs the two-rank jobs of the module (`ranks.py`; a launch costs seconds;
each job checks that the ranks end with the same parameters, to the bit): the same problem as
one process with Adam, ENGD, KFAC and two-level KFAC, a resume of a one-process run on two
ranks, and a two-rank run that one process resumes. A killed rank goes through
`pdec solve --nproc 2`. Everything is small (a 8×8 network, 280 points, float64).
"""

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
from pdec.runtime.rundir import list_checkpoints, load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
HEAT = ROOT / "specs" / "heat.yaml"
STEPS = 20
SETTINGS = [
    "model.hidden=[8, 8]",
    "training.points={interior: 201, boundary: 41, initial: 40}",  # odd: uneven shards
    "training.dtype=float64",
    "training.log_every=1",
    "output.plots=false",
]
EQUAL = {"adam": [], "kfac": [], "engd": ["training.damping=1e-6"], "kfac2l": []}
"""ENGD at damping 1e-6: at the 1e-8 floor the Gramian's conditioning amplifies the rounding of the
two ranks' split sums to ~1e-7 in 50 steps (docs/distributed.md)."""
TOLERANCE = 1e-8
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PDEC_COLLECTIVE_TIMEOUT": "60"}


def _torchrun(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args]
    return subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def _solve(out: Path, optimizer: str, steps: int = STEPS, extra=(), resume: bool = False):
    return pdec.solve(HEAT, steps=steps, optimizer=optimizer, out=out, settings=SETTINGS + list(extra), resume=resume)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Every two-rank run of the module, from one launch; the one-process runs they are compared with."""
    base = tmp_path_factory.mktemp("ranks")
    _solve(base / "one_to_two", "kfac", steps=STEPS // 2)  # one process first; two ranks resume it
    jobs = [{"out": str(base / f"two_{o}"), "steps": STEPS, "optimizer": o, "settings": SETTINGS + x} for o, x in EQUAL.items()]
    jobs += [
        {"out": str(base / "one_to_two"), "steps": STEPS, "optimizer": "kfac", "settings": SETTINGS, "resume": True},
        {"out": str(base / "two_to_one"), "steps": STEPS // 2, "optimizer": "kfac", "settings": SETTINGS},
    ]
    (base / "jobs.json").write_text(json.dumps(jobs))
    done = _torchrun(str(ROOT / "tests" / "distributed" / "ranks.py"), str(base / "jobs.json"))
    assert done.returncode == 0, done.stderr[-3000:]
    for optimizer, extra in EQUAL.items():
        _solve(base / f"one_{optimizer}", optimizer, extra=extra)
    return base


@pytest.mark.parametrize("optimizer", list(EQUAL))
def test_two_ranks_give_the_loss_curve_of_one_process(runs, optimizer):
    one, two = _losses(runs / f"one_{optimizer}"), _losses(runs / f"two_{optimizer}")
    assert len(one) == len(two) == STEPS
    worst = max(abs(a - b) / abs(a) for a, b in zip(one, two))
    assert worst <= TOLERANCE, (optimizer, worst)
    assert one[-1] < one[0]  # it trained: the curves compared are not flat
    summary = json.loads((runs / f"two_{optimizer}" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == STEPS
    assert json.loads((runs / f"one_{optimizer}" / "summary.json").read_text())["world_size"] == 1


def test_rank_zero_alone_writes_the_run_directory(runs):
    run = runs / "two_adam"
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))  # one record per step: rank 1 appended nothing
    assert (run / ".lock").read_text().strip().isdigit()
    names = {p.name for p in run.iterdir()}
    assert names == {".lock", "spec.yaml", "resolved.json", "metrics.jsonl", "summary.json", "solution.npz", f"checkpoint-{STEPS:09d}.pt"}
    assert "rel_l2" in json.loads((run / "summary.json").read_text())  # rank 0 evaluated


def _parameters(run: Path) -> list[torch.Tensor]:
    return list(load_checkpoint(list_checkpoints(run)[-1])["model"].values())


def test_resume_across_rank_counts(runs):
    """One process → two ranks, and two ranks → one process, continue the same run."""
    resumed = _solve(runs / "two_to_one", "kfac", resume=True)  # written by two ranks, resumed here
    assert resumed.summary["resumed_from"] == STEPS // 2 and resumed.summary["world_size"] == 1
    straight = _parameters(runs / "one_kfac")
    for run in ("one_to_two", "two_to_one"):
        summary = json.loads((runs / run / "summary.json").read_text())
        assert summary["resumed_from"] == STEPS // 2 and summary["steps"] == STEPS
        for a, b in zip(straight, _parameters(runs / run)):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
        losses = _losses(runs / run)
        assert len(losses) == STEPS
        assert abs(losses[-1] - _losses(runs / "one_kfac")[-1]) <= TOLERANCE * losses[-1]


def _rank_pid(parent: int, rank: int) -> int | None:
    """The pid of a rank started (through torchrun's launcher) by process ``parent``."""
    try:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    except OSError:
        return None
    for pid in children:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ:
            return int(pid)
    return None


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the rank through /proc (Linux)")
def test_a_killed_rank_ends_the_run_with_a_message_and_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "pdec", "solve", str(HEAT), "--nproc", "2", "--steps", "1000000", "--optimizer", "adam",
               "--out", str(out), "-q", *(a for s in SETTINGS + ["output.checkpoint_every=20"] for a in ("--set", s))]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (out.is_dir() and list_checkpoints(out)):
            time.sleep(0.2)
        victim = _rank_pid(process.pid, 1)
        assert victim is not None and list_checkpoints(out), "the run did not start"
        os.kill(victim, signal.SIGKILL)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    assert "another rank of this distributed run stopped" in stderr, stderr[-2000:]
    state = load_checkpoint(list_checkpoints(out)[-1])
    assert state["step"] > 0 and state["step"] % 20 == 0
    assert not (out / "summary.json").exists()  # it did not claim to have finished


def test_nproc_must_be_positive(capsys):
    from pdec.cli import main

    assert main(["solve", str(HEAT), "--nproc", "0"]) == 2
    assert "--nproc must be at least 1" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_auto_trains_on_the_gpu(tmp_path):
    result = pdec.solve(HEAT, steps=5, optimizer="kfac", out=tmp_path, settings=SETTINGS + ["training.device=auto"])
    assert result.summary["device"].startswith("cuda") and result.summary["world_size"] == 1


def test_shards_cover_every_point_once_and_their_shares_sum_to_one():
    from pdec.runtime.distributed import World, shard_batches, shard_range
    from pdec.runtime.sampling import Batch

    class Rank(World):
        def __init__(self, rank: int, size: int) -> None:
            self.rank, self.size = rank, size

    assert [shard_range(7, 3, r) for r in range(3)] == [(0, 3), (3, 5), (5, 7)]
    X = torch.arange(14.0).reshape(7, 2)
    batches = {"interior": Batch(X, normals=-X), "tiny": Batch(X[:2])}
    shards = [shard_batches(batches, Rank(r, 3)) for r in range(3)]
    assert torch.equal(torch.cat([local["interior"].X for local, _ in shards]), X)
    assert torch.equal(torch.cat([local["interior"].normals for local, _ in shards]), -X)
    assert all(local["tiny"].X.shape[0] == 2 for local, _ in shards)  # fewer points than ranks: whole on each
    for name in batches:
        assert abs(sum(scales[name] ** 2 for _, scales in shards) - 1) < 1e-15  # the ranks' shares sum to the term


def test_one_process_world_changes_nothing():
    from pdec.runtime.distributed import World, current_world

    world, t = current_world(), torch.ones(3)
    assert type(world) is World and world.size == 1 and world.is_root
    assert world.sum_(t) is t and world.sum_many_([t])[0] is t and torch.equal(t, torch.ones(3))
