"""Optimizer race: Adam, L-BFGS, ENGD, KFAC, KFAC*, two-level KFAC (REFERENCES §2–4).

The KFAC paper's problems (Dangel, Müller & Zeinhofer 2024), each optimizer
under the same wall-clock budget, through `pdec.solve` (the product path:
the spec's fixed points, float64, network d→64→1):

- 2d Poisson `specs/poisson2d.yaml` (D = 257, 900 interior / 120 boundary);
- 1+1d heat `specs/heat_1p1d.yaml` (D = 257, 900 / 60 + 60);
- 5d Poisson `specs/poisson5d.yaml` (D = 449, 3000 / 500).

Prints the final relative L2 error per optimizer, writes `results.json` and
an error-against-time plot per problem into `--out`. The budget includes the
logging evaluations (relative L2 on the spec's evaluation points).

    python benchmarks/optimizers.py --budget 180
    python benchmarks/optimizers.py --problems poisson2d --optimizers engd kfac --budget 60
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import pdec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = {"poisson2d": "poisson2d.yaml", "heat": "heat_1p1d.yaml", "poisson5d": "poisson5d.yaml"}
OPTIMIZERS = ("adam", "lbfgs", "engd", "kfac", "kfac*", "kfac2l")
# Settings per optimizer (the spec's defaults otherwise); log intervals keep the
# evaluation overhead to a few per cent of each optimizer's steps.
SETTINGS = {
    "adam": ["training.lr=0.001", "training.log_every=200"],
    "lbfgs": ["training.log_every=20"],
    "engd": ["training.damping=1e-10", "training.log_every=10"],
    "kfac": ["training.damping=1e-10", "training.ema=0.5", "training.momentum=0.0", "training.log_every=10"],
    "kfac*": ["training.damping=1e-10", "training.ema=0.5", "training.log_every=10"],
    "kfac2l": ["training.damping=1e-10", "training.ema=0.5", "training.log_every=10"],
}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def race(problem: str, optimizer: str, budget: float, out: Path, extra: list[str]) -> dict:
    run_dir = out / problem / optimizer.replace("*", "_star")
    shutil.rmtree(run_dir, ignore_errors=True)  # each race starts fresh (pdec refuses to train into an old run)
    load_before = load()
    t0 = time.perf_counter()
    result = pdec.solve(
        ROOT / "specs" / PROBLEMS[problem],
        steps=10**9,
        max_time=budget,
        optimizer=optimizer,
        out=run_dir,
        settings=[*SETTINGS[optimizer], *extra, "output.plots=false"],
    )
    wall = time.perf_counter() - t0
    curve = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "rel_l2" in record:
            curve.append((record["time_s"], record["rel_l2"]["u"]))
    summary = result.summary
    return {
        "problem": problem,
        "optimizer": optimizer,
        "steps": summary["steps"],
        "rel_l2": summary["rel_l2"]["u"],
        "best_rel_l2": min([e for _, e in curve] + [summary["rel_l2"]["u"]]),
        "final_loss": summary["final_loss"],
        "wall_s": round(wall, 1),
        "load_before": load_before,
        "load_after": load(),
        "curve": curve,
        "settings": SETTINGS[optimizer] + extra,
    }


def plot(rows: list[dict], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plots are optional
        return
    for problem in sorted({r["problem"] for r in rows}):
        fig, ax = plt.subplots(figsize=(6, 4))
        for r in rows:
            if r["problem"] == problem and r["curve"]:
                t, e = zip(*r["curve"])
                ax.loglog(t, e, label=r["optimizer"])
        ax.set_xlabel("wall-clock time [s]")
        ax.set_ylabel("relative L2 error")
        ax.set_title(problem)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / f"{problem}.png", dpi=120)
        plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=180.0, help="wall-clock seconds per optimizer and problem")
    p.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    p.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=list(OPTIMIZERS))
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra spec setting for every run")
    p.add_argument("--out", type=Path, default=Path("runs/bench_optimizers"))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"torch threads {torch.get_num_threads()}, budget {args.budget:g} s, load {load()}", flush=True)
    rows = []
    for problem in args.problems:
        for optimizer in args.optimizers:
            row = race(problem, optimizer, args.budget, args.out, args.set)
            rows.append(row)
            print(
                f"{problem:10s} {optimizer:7s} steps {row['steps']:>7d}  rel L2 {row['rel_l2']:.2e}"
                f"  (best logged {row['best_rel_l2']:.2e})  load {row['load_before']} -> {row['load_after']}",
                flush=True,
            )
        (args.out / "results.json").write_text(json.dumps(rows, indent=1))
        plot(rows, args.out)
    print("\n| problem | " + " | ".join(args.optimizers) + " |")
    print("|---|" + "---|" * len(args.optimizers))
    for problem in args.problems:
        cells = {r["optimizer"]: f"{r['rel_l2']:.1e}" for r in rows if r["problem"] == problem}
        print(f"| {problem} | " + " | ".join(cells.get(o, "") for o in args.optimizers) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
