"""Files pdec reads and writes: a planted file never runs code, is never written through,
and a run directory is never clobbered by another run (issue 13, "Safe files").

Each test plants the malicious or broken file and asserts that nothing ran (a
marker file the payload would create stays absent) and that the user gets a
clear error with exit status 2.
"""

from __future__ import annotations

import json
import os
import py_compile
import shlex
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import pdec
from pdec.cli import main
from pdec.errors import PdecError, SpecError
from pdec.runtime.rundir import RunDir

ROOT = Path(__file__).resolve().parents[2]
HEAT = ROOT / "specs" / "heat.yaml"
FAST = ["--steps", "2", "--set", "model.hidden=[4]", "--set", "training.points={interior: 8, boundary: 4, initial: 4}",
        "--set", "output.plots=false", "--set", "output.grid=5", "--optimizer", "adam", "-q"]  # fmt: skip


class _Payload:
    """Pickles to a call of ``os.system``: what a planted checkpoint would run on load."""

    def __init__(self, marker: Path) -> None:
        self.command = f"touch {shlex.quote(str(marker))}"

    def __reduce__(self):
        return (os.system, (self.command,))


def _solve(capsys, *args) -> tuple[int, str]:
    code = main(["solve", *map(str, args)])
    return code, capsys.readouterr().err


def _plant_checkpoint(run: Path, marker: Path, step: int = 999) -> Path:
    path = run / f"checkpoint-{step:09d}.pt"
    torch.save({"step": 1, "model": _Payload(marker)}, path)
    return path


def _snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.is_file() and p.name != ".lock"}


# -- checkpoints -----------------------------------------------------------------


def test_planted_checkpoint_does_not_run_on_resume(capsys, tmp_path):
    run, marker = tmp_path / "run", tmp_path / "pwned"
    assert _solve(capsys, HEAT, "--out", run, *FAST)[0] == 0
    _plant_checkpoint(run, marker)
    code, err = _solve(capsys, HEAT, "--out", run, "--resume", *FAST)
    assert code == 2 and "refusing to load the checkpoint" in err and "checkpoint-000000999.pt" in err
    assert "bug" not in err and not marker.exists()


def test_planted_checkpoint_does_not_run_on_load_predict_or_ntk(capsys, tmp_path):
    run, marker = tmp_path / "run", tmp_path / "pwned"
    assert _solve(capsys, HEAT, "--out", run, *FAST)[0] == 0
    _plant_checkpoint(run, marker)
    with pytest.raises(PdecError, match="refusing to load"):
        pdec.load(run)
    points = tmp_path / "points.csv"
    points.write_text("x,t\n0.5,0.5\n")
    assert main(["predict", str(run), "--points", str(points)]) == 2
    assert main(["ntk", str(HEAT), "--run", str(run), "--points", "4", "--set", "model.hidden=[4]"]) == 2
    assert "refusing to load" in capsys.readouterr().err
    assert not marker.exists()


def test_checkpoints_hold_plain_values_and_resume_loads_them_weights_only(tmp_path, small):
    result = pdec.solve(HEAT, steps=3, out=tmp_path, settings=small + ["training.optimizer=adam", "output.plots=false"])
    (path,) = RunDir(tmp_path).checkpoints()
    state = torch.load(path, map_location="cpu", weights_only=True)  # no safe globals needed
    assert state["step"] == 3 and set(state["batches"]) >= {"interior"}
    assert result.summary["steps"] == 3


def test_no_readable_checkpoint_is_a_clear_error(capsys, tmp_path):
    run = tmp_path / "run"
    assert _solve(capsys, HEAT, "--out", run, *FAST)[0] == 0
    for path in RunDir(run).checkpoints():
        path.write_bytes(path.read_bytes()[:30])  # truncated, as by a crash
    code, err = _solve(capsys, HEAT, "--out", run, "--resume", *FAST)
    assert code == 2 and "none of the checkpoints" in err and "bug" not in err


def test_standalone_script_refuses_a_planted_checkpoint(tmp_path, small):
    script, run, marker = tmp_path / "train.py", tmp_path / "run", tmp_path / "pwned"
    sets = [a for s in small + ["output.plots=false", "training.optimizer=adam"] for a in ("--set", s)]
    subprocess.run([sys.executable, "-m", "pdec", "codegen", str(HEAT), "-o", str(script), *sets], check=True, cwd=ROOT)
    run.mkdir()
    _plant_checkpoint(run, marker, step=5)
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "pdec.py").write_text("raise ImportError('standalone scripts must not import pdec')\n")
    env = {"PYTHONPATH": str(blocker), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(script), "--steps", "2", "--out", str(run), "--resume", "-q"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "refusing to load the checkpoint" in done.stderr and not marker.exists()


# -- the module cache ----------------------------------------------------------------

SOURCE = "PROBLEM = 'the real module'\n"


def _fresh_cache(tmp_path, monkeypatch, prefix: str):
    """A private cache directory, a marker a planted file would create, and the module's stem and file name."""
    from pdec.codegen.emit import source_hash

    cache, marker = tmp_path / "cache", tmp_path / "pwned"
    monkeypatch.setenv("PDEC_CACHE_DIR", str(cache))
    stem = f"{prefix}{os.getpid()}{time.monotonic_ns()}"
    cache.mkdir(mode=0o700)
    return cache, marker, stem, f"pdec_generated_{stem}_{source_hash(SOURCE)}"


def test_planted_bytecode_in_the_cache_does_not_run(tmp_path, monkeypatch):
    from pdec.codegen.load import import_source

    cache, marker, stem, name = _fresh_cache(tmp_path, monkeypatch, "pyc")
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('ran')\nPROBLEM = 'planted'\n")
    (cache / f"{name}.py").write_text(SOURCE)
    # a bytecode file that Python's own loader would trust without looking at the source
    for tag in {sys.implementation.cache_tag, "cpython-310", "cpython-311", "cpython-312", "cpython-313"}:
        py_compile.compile(
            str(evil), cfile=str(cache / "__pycache__" / f"{name}.{tag}.pyc"),
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )  # fmt: skip
    module = import_source(SOURCE, stem)
    assert module.PROBLEM == "the real module" and not marker.exists()


def test_tampered_cached_source_does_not_run_and_is_replaced(tmp_path, monkeypatch):
    from pdec.codegen.load import import_source

    cache, marker, stem, name = _fresh_cache(tmp_path, monkeypatch, "py")
    (cache / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nPROBLEM = 'tampered'\n")
    module = import_source(SOURCE, stem)
    assert module.PROBLEM == "the real module" and not marker.exists()
    assert (cache / f"{name}.py").read_text() == SOURCE


def test_cache_is_private_and_a_shared_one_is_refused(tmp_path, monkeypatch):
    from pdec.codegen.load import import_source

    cache = tmp_path / "cache"
    monkeypatch.setenv("PDEC_CACHE_DIR", str(cache))
    import_source(SOURCE, f"mode{os.getpid()}{time.monotonic_ns()}")
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    cache.chmod(0o777)
    with pytest.raises(PdecError, match="can be written by other users"):
        import_source(SOURCE, f"shared{os.getpid()}{time.monotonic_ns()}")


# -- files a spec names ----------------------------------------------------------------

SECRET = "secret_token_1234,other\n1,2\n"
DATA_SPEC = """\
domain: {x: [0, 1]}
time: {t: [0, 1]}
unknowns: [u]
equations: [u_t = u_xx]
conditions:
  - {data: DATA}
"""


def _data_spec(directory: Path, data: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    spec = directory / "spec.yaml"
    spec.write_text(DATA_SPEC.replace("DATA", data))
    return spec


@pytest.mark.parametrize("where", ["parent", "absolute", "link"])
def test_data_outside_the_spec_directory_is_refused(tmp_path, where):
    secret = tmp_path / "secret.csv"
    secret.write_text(SECRET)
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    if where == "link":
        (spec_dir / "obs.csv").symlink_to(secret)
    data = {"parent": "../secret.csv", "absolute": str(secret), "link": "obs.csv"}[where]
    spec = _data_spec(spec_dir, data)
    with pytest.raises(SpecError) as info:
        pdec.api.compile_spec(spec)
    message = info.value.format()
    assert "outside the spec's directory" in message and "--allow-outside-data" in message
    assert info.value.loc is not None and info.value.loc.line == 6
    assert "secret_token" not in message


def test_allow_outside_data_is_an_explicit_opt_in(capsys, tmp_path):
    secret = tmp_path / "obs.csv"
    secret.write_text("x,t,u\n0.5,0.1,0.2\n")
    spec = _data_spec(tmp_path / "specs", "../obs.csv")
    assert main(["check", str(spec)]) == 2
    assert "outside the spec's directory" in capsys.readouterr().err
    assert main(["check", "--allow-outside-data", str(spec)]) == 0
    assert pdec.api.compile_spec(spec, allow_outside_data=True).problem.terms


def test_reference_outside_the_spec_directory_is_refused(tmp_path):
    import numpy as np

    np.savez(tmp_path / "ref.npz", x=np.zeros(2))
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    spec = spec_dir / "spec.yaml"
    spec.write_text(HEAT.read_text(encoding="utf-8").split("exact:")[0] + f"reference: {tmp_path / 'ref.npz'}\n")
    with pytest.raises(SpecError, match="outside the spec's directory"):
        pdec.api.compile_spec(spec)


def test_missing_data_column_error_does_not_print_the_header(tmp_path):
    (tmp_path / "obs.csv").write_text(SECRET)
    spec = _data_spec(tmp_path, "obs.csv")
    with pytest.raises(SpecError) as info:
        pdec.api.compile_spec(spec)
    assert "no column `x`" in str(info.value) and "secret_token" not in str(info.value)


# -- the run directory -----------------------------------------------------------------


def test_metrics_are_never_appended_through_a_planted_link(capsys, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").symlink_to(victim)
    code, err = _solve(capsys, HEAT, "--out", run, *FAST)
    assert code == 2 and "symbolic link" in err and "metrics.jsonl" in err
    assert victim.read_text() == "precious\n"


def test_append_refuses_a_link_planted_while_training(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    run = RunDir(tmp_path / "run")
    run.append_metrics({"step": 1})
    run.metrics_path.unlink()
    run.metrics_path.symlink_to(victim)
    with pytest.raises(PdecError, match="symbolic link"):
        run.append_metrics({"step": 2})
    with pytest.raises(PdecError, match="symbolic link"):
        run.truncate_metrics(1)
    assert victim.read_text() == "precious\n"


def test_a_second_process_cannot_train_into_a_locked_run(capsys, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "pdec", "solve", str(HEAT), "--steps", "100000", "--out", str(run), "-q"]
    cmd += ["--set", "model.hidden=[4]", "--set", "training.log_every=1", "--set", "output.plots=false", "--optimizer", "adam"]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (run / "metrics.jsonl").exists():
            time.sleep(0.1)
        assert (run / "metrics.jsonl").exists()
        code, err = _solve(capsys, HEAT, "--out", run, "--resume", *FAST)
        assert code == 2 and f"process {first.pid} is training" in err
        code, err = _solve(capsys, HEAT, "--out", run, *FAST)
        assert code == 2 and "is training" in err
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert first.returncode == 130
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["optimizer"] == "adam"


def test_orphaned_temporary_files_are_removed_when_a_run_starts(capsys, tmp_path):
    run = tmp_path / "run"
    assert _solve(capsys, HEAT, "--out", run, *FAST)[0] == 0
    orphans = [run / ".checkpoint-000000007.pt.x1y2.tmp", run / ".metrics.jsonl.abcd.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"half a file")
    assert _solve(capsys, HEAT, "--out", run, "--resume", "--steps", "3", *FAST[2:])[0] == 0
    assert not any(o.exists() for o in orphans)


# -- runs that destroy runs ----------------------------------------------------------------


def test_a_fresh_run_into_an_old_run_is_refused_before_writing(capsys, tmp_path):
    run = tmp_path / "run"
    assert _solve(capsys, HEAT, "--out", run, *FAST)[0] == 0
    before = _snapshot(run)
    code, err = _solve(capsys, HEAT, "--out", run, *FAST)
    assert code == 2 and "already holds a run" in err and "--resume" in err and "--out" in err
    assert _snapshot(run) == before


def test_a_refused_resume_rewrites_nothing(capsys, tmp_path):
    spec, run = tmp_path / "heat.yaml", tmp_path / "run"
    spec.write_text(HEAT.read_text(encoding="utf-8"))
    assert _solve(capsys, spec, "--out", run, *FAST)[0] == 0
    before = _snapshot(run)
    spec.write_text(HEAT.read_text(encoding="utf-8").replace("u_t = kappa * u_xx", "u_t = 2 * kappa * u_xx"))
    code, err = _solve(capsys, spec, "--out", run, "--resume", *FAST)
    assert code == 2 and "different version of this problem" in err and "bug" not in err
    code, err = _solve(capsys, HEAT, "--out", run, "--resume", *FAST[:-1], "--set", "model.hidden=[6]", "-q")
    assert code == 2 and "model.hidden is [4] in the run and [6] now" in err
    code, err = _solve(capsys, HEAT, "--out", run, "--resume", *FAST, "--dtype", "float32")
    assert code == 2 and "training.dtype is float64 in the run and float32 now" in err
    assert _snapshot(run) == before


def test_resume_without_a_checkpoint_is_refused(capsys, tmp_path):
    missing = tmp_path / "no-such-run"
    code, err = _solve(capsys, HEAT, "--out", missing, "--resume", *FAST)
    assert code == 2 and "--resume" in err and "fresh run" in err
    assert not missing.exists()
    run = tmp_path / "run"
    assert _solve(capsys, HEAT, "--out", run, *FAST)[0] == 0
    for path in RunDir(run).checkpoints():
        path.unlink()  # killed before its first checkpoint
    code, err = _solve(capsys, HEAT, "--out", run, "--resume", *FAST)
    assert code == 2 and "no checkpoint to resume from" in err and "--out" in err


def test_resume_with_more_steps_continues_to_the_new_total(tmp_path, small):
    settings = small + ["training.optimizer=adam", "output.plots=false"]
    straight = pdec.solve(HEAT, steps=8, out=tmp_path / "straight", settings=settings)
    first = pdec.solve(HEAT, steps=4, out=tmp_path / "split", settings=settings)
    assert first.summary["steps"] == 4 and first.summary["status"] == "completed"
    more = pdec.solve(HEAT, steps=8, out=tmp_path / "split", settings=settings, resume=True)
    assert more.summary["steps"] == 8 and more.summary["resumed_from"] == 4
    for a, b in zip(straight.problem.model.parameters(), more.problem.model.parameters()):
        assert torch.equal(a, b)
    steps = [json.loads(line)["step"] for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 8
    resolved = json.loads((tmp_path / "split" / "resolved.json").read_text())
    assert resolved["training"]["steps"] == 8 and "training.steps=8" in resolved["overrides"]
