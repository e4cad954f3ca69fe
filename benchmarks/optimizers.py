"""Optimizer race: Adam, L-BFGS, the quasi-Newton methods, ENGD, KFAC, KFAC*,
two-level KFAC (REFERENCES §2–4), each under the same wall-clock budget.

The KFAC paper's problems (Dangel, Müller & Zeinhofer 2024), through
`pdec solve` (the product path, the spec's fixed points, float64), each race
a fresh process with one thread pinned to its own core (`--jobs 2` runs two
at once, one per core):

- small (d→64→1): 2d Poisson `poisson2d` (D = 257, 900 interior / 120
  boundary), 1+1d heat `heat_1p1d` (D = 257, 900 / 60 + 60), 5d Poisson
  `poisson5d` (D = 449, 3000 / 500);
- `--large`: 2d Poisson `poisson2d_large` (2→64→64→48→48→1, D = 9,873),
  5d Poisson `poisson5d_large` and 4+1d heat `heat4d_large`
  (d→256→256→128→128→1, D ≈ 1.2·10⁵), 100d Poisson `poisson100d`
  ([64, 64]).

Every optimizer runs with its defaults (the tuned values are the defaults);
only the logging interval is set, so that the evaluations cost a few per cent
of the steps. Prints the final relative L2 per optimizer and a table, writes
`results.json` and an error-against-time plot per problem into `--out`.

    python benchmarks/optimizers.py --budget 180 --jobs 2
    python benchmarks/optimizers.py --large --budget 300 --jobs 2      # about 40 minutes
    python benchmarks/optimizers.py --problems poisson2d --optimizers engd kfac --budget 60
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hard import run_all, run_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SMALL = ("poisson2d", "heat_1p1d", "poisson5d")
LARGE = ("poisson2d_large", "poisson5d_large", "heat4d_large", "poisson100d")
OPTIMIZERS = ("adam", "lbfgs", "ssbroyden", "engd", "kfac", "kfac*", "kfac2l")
LOG_EVERY = {"adam": 200, "lbfgs": 20, "ssbroyden": 20}
"""Records (with an error evaluation) every this many steps; 10 for the Gauss–Newton optimizers."""
DENSE_MAX = 10_000
"""ENGD and the dense quasi-Newton methods (a D×D matrix) race only below this many parameters."""
TWO_LEVEL_ON = ("poisson2d", "heat_1p1d", "poisson5d", "poisson2d_large")
"""Two-level KFAC costs a coarse solve per step; on the large set it races on one problem."""


def parameters(name: str) -> int:
    """The number of trainable parameters of spec ``name`` (compiled, not trained)."""
    import pdec

    problem = pdec.compile(ROOT / "specs" / f"{name}.yaml")
    return sum(p.numel() for p in problem.model.parameters())


def races(problems: list[str], optimizers: list[str]) -> list[tuple[str, str]]:
    """The (problem, optimizer) pairs that fit: dense methods below `DENSE_MAX`."""
    todo = []
    for problem in problems:
        D = parameters(problem)
        for optimizer in optimizers:
            if optimizer in ("engd", "bfgs", "ssbroyden") and D > DENSE_MAX:
                continue
            if optimizer == "kfac2l" and problem not in TWO_LEVEL_ON:
                continue
            todo.append((problem, optimizer))
    return todo


def race(problem: str, optimizer: str, budget: float, core: int, out: Path, extra: list[str]) -> dict:
    """One run: `pdec solve` with ``optimizer`` for ``budget`` seconds; the row with its error curve."""
    mode = optimizer.replace("*", "_star")
    args = ["--optimizer", optimizer, "--steps", str(10**9),
            "--set", f"training.log_every={LOG_EVERY.get(optimizer, 10)}", *extra]  # fmt: skip
    row = run_spec(ROOT / "specs" / f"{problem}.yaml", problem, mode, args, budget, core, out, threads=1)
    row["optimizer"] = optimizer
    curve = []
    metrics = out / f"{problem}-{mode}" / "metrics.jsonl"
    for line in metrics.read_text().splitlines() if metrics.exists() else []:
        record = json.loads(line)
        if "rel_l2" in record and record["rel_l2"].get("u") is not None:
            curve.append((record["time_s"], record["rel_l2"]["u"]))
    row["curve"] = curve
    return row


def plot(rows: list[dict], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plots are optional
        return
    for problem in sorted({r["spec"] for r in rows}):
        fig, ax = plt.subplots(figsize=(6, 4))
        for r in rows:
            if r["spec"] == problem and r.get("curve"):
                t, e = zip(*r["curve"])
                ax.loglog(t, e, label=r["optimizer"])
        ax.set_xlabel("wall-clock time [s]")
        ax.set_ylabel("relative L2 error")
        ax.set_title(problem)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / f"optimizers_{problem}.png", dpi=120)
        plt.close(fig)


def table(rows: list[dict], optimizers: list[str]) -> str:
    lines = ["| problem | " + " | ".join(optimizers) + " |", "|---|" + "---|" * len(optimizers)]
    for problem in dict.fromkeys(r["spec"] for r in rows):
        cells = {}
        for r in rows:
            if r["spec"] == problem:
                cells[r["optimizer"]] = f"error: {r['error']}" if "error" in r else f"{r['rel_l2']['u']:.1e} ({r['steps']})"
        lines.append(f"| {problem} | " + " | ".join(cells.get(o, "—") for o in optimizers) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=180.0, help="wall-clock seconds per optimizer and problem")
    p.add_argument("--large", action="store_true", help="the paper's large networks instead of d→64→1")
    p.add_argument("--problems", nargs="+", choices=SMALL + LARGE, help="a subset of the problems")
    p.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=list(OPTIMIZERS))
    p.add_argument("--jobs", type=int, default=2, help="races at once, each pinned to its own core")
    p.add_argument("--first-core", type=int, default=0, help="pin to cores FIRST_CORE, FIRST_CORE + 1, ...")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra spec setting for every run")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-optimizers")
    args = p.parse_args(argv)
    problems = args.problems or list(LARGE if args.large else SMALL)
    extra = [a for s in args.set for a in ("--set", s)]
    todo = races(problems, args.optimizers)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = run_all(todo, args.jobs, lambda problem, optimizer, core: race(problem, optimizer, args.budget, core, args.out, extra), args.first_core)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    plot(rows, args.out)
    print(f"\nrelative L2 of u after {args.budget:g} s (steps), one thread per run, {args.jobs} at once")
    print(table(rows, args.optimizers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
