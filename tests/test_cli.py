"""`python -m pdec check` in subprocesses, `pdec show` through `main()`: the CLI contract.

DESIGN.md, contracts: `pdec check SPEC...` exits 0 when every spec compiles,
2 with errors of the form ``FILE:LINE:COL: error: …`` (no traceback)
otherwise. Each subprocess starts a Python with torch (seconds), so both are
started at once by one module fixture and the tests read the results.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from pdec.cli import main
from spec_templates import HEAT, edit, equation

ROOT = Path(__file__).resolve().parents[1]

SPECS = {
    "good.yaml": HEAT,
    "typo.yaml": equation("u_t = kapa * u_xx"),  # line 10, col 11
    "kfca.yaml": edit("optimizer: kfac", "optimizer: kfca"),  # line 22, col 14
    "exact.yaml": edit("exp(-kappa*pi^2*t)", "exp(-kappa*pi*t)"),  # compiles, with a warning
    "crash.yaml": edit("on: x = 0 or x = 1", "on: x = sqrt(-1)"),  # TypeError inside pdec
}

COMMANDS = {
    "check-good": ["check", "good.yaml", "exact.yaml"],
    "check-broken": ["check", "typo.yaml", "good.yaml", "kfca.yaml", "missing.yaml"],
}
"""Two runs, each about 3 s of start-up (torch): the rest goes through `main()` in-process."""

ERROR_LINE = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+):(?P<col>\d+): error: (?P<message>.+)$")


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Result]:
    folder = tmp_path_factory.mktemp("cli")
    for name, text in SPECS.items():
        (folder / name).write_text(text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    children: dict[str, subprocess.Popen] = {}
    results: dict[str, Result] = {}
    try:
        for key, args in COMMANDS.items():
            children[key] = subprocess.Popen(
                [sys.executable, "-m", "pdec", *args],
                cwd=folder,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        for key, child in children.items():
            out, err = child.communicate(timeout=120)
            results[key] = Result(child.returncode, out, err)
    finally:
        for child in children.values():  # only the children started here
            if child.poll() is None:
                child.kill()
                child.communicate()
    return results


def _errors(stderr: str) -> list[re.Match]:
    return [m for m in map(ERROR_LINE.match, stderr.splitlines()) if m]


@pytest.mark.parametrize("key", list(COMMANDS))
def test_no_traceback(runs, key: str) -> None:
    assert "Traceback" not in runs[key].stdout + runs[key].stderr


def test_check_good_specs_exit_0(runs) -> None:
    run = runs["check-good"]
    assert run.returncode == 0, run.stderr
    assert run.stdout == "good.yaml: ok (heat1d: 1 equation, 2 conditions)\nexact.yaml: ok (heat1d: 1 equation, 2 conditions)\n"


def test_check_broken_spec_exits_2_with_located_error(runs) -> None:
    run = runs["check-broken"]
    assert run.returncode == 2
    assert run.stderr.startswith("typo.yaml:10:11: error: ")
    lines = run.stderr.splitlines()
    assert lines[:3] == [
        "typo.yaml:10:11: error: undefined name `kapa`. Did you mean `kappa`?",
        "      - u_t = kapa * u_xx",
        "              ^",
    ]
    # the caret stands under the column the first line names, below the line as written
    source, caret = lines[1], lines[2]
    assert source[4:] == SPECS["typo.yaml"].splitlines()[9]
    assert caret.index("^") - 4 + 1 == 11
    assert source[caret.index("^") :].startswith("kapa")


def test_check_reports_every_spec(runs) -> None:
    run = runs["check-broken"]
    assert run.returncode == 2
    errors = _errors(run.stderr)
    assert [(m["file"], m["line"], m["col"]) for m in errors] == [
        ("typo.yaml", "10", "11"),
        ("kfca.yaml", "22", "14"),
        ("missing.yaml", "1", "1"),
    ]
    assert "Did you mean `kappa`?" in errors[0]["message"]
    assert "Did you mean `kfac`?" in errors[1]["message"]
    assert errors[2]["message"].startswith("cannot read spec")
    assert run.stdout == "good.yaml: ok (heat1d: 1 equation, 2 conditions)\n"
    # each located error is followed by its source line and a caret
    lines = run.stderr.splitlines()
    for m in errors[:2]:
        at = lines.index(m.group(0))
        assert lines[at + 2].strip() == "^"


def test_check_warns_on_wrong_exact_solution(runs) -> None:
    run = runs["check-good"]
    assert run.returncode == 0
    warnings = run.stderr.splitlines()
    assert len(warnings) == 1, run.stderr
    assert re.match(r"^exact\.yaml:10:5: warning: `exact` does not satisfy equation `pde`: residual \S+ at \(x=\S+, t=\S+\)$", warnings[0])


def test_check_spec_that_crashes_pdec_still_exits_2(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    Path("crash.yaml").write_text(SPECS["crash.yaml"], encoding="utf-8")
    status = main(["check", "crash.yaml"])
    err = capsys.readouterr().err
    assert status == 2, err
    assert _errors(err)


def test_show_prints_equations_and_derivatives(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    Path("good.yaml").write_text(SPECS["good.yaml"], encoding="utf-8")
    status = main(["show", "good.yaml"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert err == ""
    assert out.startswith("heat1d\n")
    assert "inputs     x, t" in out
    assert re.search(r"equation\s+pde\s+-kappa\*u_xx \+ u_t = 0", out)
    assert re.search(r"needs d\(u,t\), d\(u,x,x\)\s+\(order 2, linear, weight 1\)", out)
    assert re.search(r"boundary\s+bc1\s+u = 0\s+on x = 0 or x = 1", out)
    assert re.search(r"initial\s+ic1\s+.*on initial slice", out)
    assert "exact     u = " in out


def test_show_broken_spec_exits_2(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    Path("typo.yaml").write_text(SPECS["typo.yaml"], encoding="utf-8")
    status = main(["show", "typo.yaml"])
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert err.startswith("typo.yaml:10:11: error: undefined name `kapa`")
    assert "Traceback" not in err


def test_solve_without_a_terminal_prints_plain_lines_as_it_goes(tmp_path) -> None:
    """Piped (CI, ``nohup``): progress lines arrive while training runs, at least every 10 s, whole
    (no bar that shows only at the end, no cut at 80 columns)."""
    import itertools
    import time

    spec = tmp_path / "good.yaml"
    out = tmp_path / ("a_run_directory_name_long_enough_to_push_a_line_past_eighty_columns" * 2)
    spec.write_text(SPECS["good.yaml"], encoding="utf-8")
    settings = ["model.hidden=[4]", "training.points={interior: 8, boundary: 4, initial: 4}", "output.plots=false",
                "output.grid=5", "training.log_every=100000000"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "pdec", "solve", str(spec), "--out", str(out), "--steps", "100000000",
               "--optimizer", "adam", "--max-time", "12", *(a for s in settings for a in ("--set", s))]  # fmt: skip
    child = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    arrivals = []
    try:
        for line in child.stdout:
            arrivals.append((time.monotonic(), line.rstrip("\n")))
        child.wait(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
    ended = time.monotonic()
    assert child.returncode == 0, arrivals
    steps = [(t, line) for t, line in arrivals if line.startswith("step ")]
    assert len(steps) >= 2, arrivals
    assert ended - steps[0][0] > 3, "the first progress line came only at the end"
    times = [t for t, _ in steps] + [ended]
    assert max(b - a for a, b in itertools.pairwise(times)) < 10
    assert all("rel L2 u " in line for _, line in steps)
    finish = [line for _, line in arrivals if line.startswith("time-limit after")]
    assert finish and "final loss" in finish[0] and "rel L2 u" in finish[0]
    assert all(re.fullmatch(r"step +\d+/100000000 +[\d.]+ s  loss \S+  rel L2 u \S+", line) for _, line in steps)
    assert f"run directory: {out}" in [line for _, line in arrivals]  # whole, past 80 columns
