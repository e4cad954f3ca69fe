"""Sketched ENGD (issue 12, item 6): the exact ENGD step against its randomized Nyström
variant (`training.sketch: s`, `pdec/runtime/nystrom.py`) under the same wall-clock budget.

Each run is `pdec solve SPEC --optimizer engd` in a fresh process, one
thread pinned to one core (`taskset -c CORE env OMP_NUM_THREADS=1`), on

- `default`: the default network [64, 64, 64] (D = 8577) on the spec's 900 + 120 points
  (N = 1020 rows: the N×N kernel is sketched);
- `default-2500`: the same network on the default 2000 + 500 points (N = 2500);
- `auto`: `auto`'s network [32, 32] (D = 1185) on the spec's points (N = 1020);
- `--only burgers helmholtz`: `auto`'s recipe for those specs (exact conditions: [32, 32],
  3000 interior points redrawn by `rar-d` every step, so N > D and the D×D Gramian is
  sketched), without the plateau stop,

exact (`sketch: null`) and with sketches of rank s, and prints a table: steps, seconds per
step, relative L2 error and loss at the end of the budget.

    python benchmarks/sketched_engd.py --budget 120 --core 1
    python benchmarks/sketched_engd.py --budget 60 --only default --sketches 100
    python benchmarks/sketched_engd.py --budget 120 --only burgers helmholtz --sketches 100
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AUTO_EXACT = ["model.hidden=[32, 32]", "training.points={interior: 3000, boundary: 400, initial: 400}",
              "training.resample=1", "training.sampler=rar-d", "training.patience=0"]  # fmt: skip
"""`auto`'s recipe for exact conditions written out (`sketch` needs `optimizer: engd` named),
without its plateau stop, so that every run has the whole budget."""
SETUPS = {
    "default": ("poisson2d", ["model.hidden=[64, 64, 64]"]),
    "default-2500": ("poisson2d", ["model.hidden=[64, 64, 64]", "training.points={interior: 2000, boundary: 500}"]),
    "auto": ("poisson2d", ["model.hidden=[32, 32]"]),
    "burgers": ("burgers", AUTO_EXACT),
    "helmholtz": ("helmholtz", AUTO_EXACT),
}
DEFAULT_SETUPS = ("default", "default-2500", "auto")
SKETCHES = (100, 300)


def run(setup: str, sketch: int | None, budget: float, core: int, out: Path) -> dict:
    """One `pdec solve` run; its summary.json."""
    spec, extra = SETUPS[setup]
    sets = [*extra, "output.plots=false", f"training.sketch={'null' if sketch is None else sketch}"]
    command = [
        "taskset", "-c", str(core), "env", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1",
        sys.executable, "-m", "pdec", "solve", str(ROOT / "specs" / f"{spec}.yaml"), "--optimizer", "engd", "--steps", "1000000",
        "--max-time", str(budget), "--out", str(out), "-q",
        *[a for s in sets for a in ("--set", s)],
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT)
    return json.loads((out / "summary.json").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per run (default 120)")
    parser.add_argument("--core", type=int, default=1, help="the CPU core to pin to (default 1)")
    parser.add_argument("--only", nargs="+", choices=sorted(SETUPS), help="these setups only")
    parser.add_argument("--sketches", nargs="+", type=int, default=list(SKETCHES), help="sketch ranks s")
    parser.add_argument("--out", type=Path, help="keep the run directories here")
    args = parser.parse_args(argv)
    base = args.out or Path(tempfile.mkdtemp(prefix="sketched_engd_"))
    rows = []
    for setup in args.only or DEFAULT_SETUPS:
        for sketch in [None, *args.sketches]:
            name = f"{setup}_{'exact' if sketch is None else f's{sketch}'}"
            summary = run(setup, sketch, args.budget, args.core, base / name)
            steps, wall = summary["steps"], summary["wall_time_s"]
            row = (setup, "exact" if sketch is None else str(sketch), steps, wall / max(steps, 1), summary["rel_l2"]["u"], summary["final_loss"])
            rows.append(row)
            print(f"{name}: {steps} steps, rel. L2 {row[4]:.2e}", file=sys.stderr, flush=True)
    print(f"\n| setup | sketch s | steps in {args.budget:g} s | s/step | rel. L2 | loss |")
    print("|---|---|---|---|---|---|")
    for setup, sketch, steps, per_step, error, loss in rows:
        print(f"| {setup} | {sketch} | {steps} | {per_step:.3f} | {error:.2e} | {loss:.2e} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
