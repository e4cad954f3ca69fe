"""Scaling of data-parallel training (issue 16): one process against two gloo ranks.

Strong scaling: the same problem (``--points`` interior points, a tenth as many on the
boundary) on 1 and on 2 ranks. Weak scaling: the points per rank fixed (half the problem on 1
rank, the whole on 2). Every run is `pdec solve` in a fresh process, one thread per rank
(``OMP_NUM_THREADS=1``; two ranks through `pdec solve --nproc 2`), float64, on
`specs/poisson2d.yaml` with a 64×64 tanh network. Time per step is measured from the run's
metrics (first logged step to the last: start-up and the first step excluded); the final
relative L2 error is the run's. Rounds are interleaved (1 rank, 2 ranks, 1 rank, …) and the
median is reported; the machine's load (`uptime`) is recorded before and after, because two
ranks need two free cores.

    python benchmarks/scaling.py                       # short: about 4 min on 2 free cores
    python benchmarks/scaling.py --rounds 5 --optimizers adam:200,kfac:50 --readme   # also rewrite README's "Scaling"

Writes ``benchmarks/results/scaling.json``; with ``--readme`` replaces the "## Scaling" section of
``benchmarks/README.md`` (and only that section) by the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "poisson2d.yaml"
SETTINGS = ["model.hidden=[64, 64]", "training.dtype=float64", "output.plots=false", "training.log_every=100000"]


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run(out: Path, ranks: int, optimizer: str, points: int, steps: int) -> dict:
    """One `pdec solve`; returns time per step, steps per second, final loss and error."""
    settings = SETTINGS + [f"training.points={{interior: {points}, boundary: {max(points // 10, 4)}}}"]
    command = [sys.executable, "-m", "pdec", "solve", str(SPEC), "--steps", str(steps), "--optimizer", optimizer,
               "--out", str(out), "-q", *(a for s in settings for a in ("--set", s))]  # fmt: skip
    if ranks > 1:
        command += ["--nproc", str(ranks)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    first, last = records[0], records[-1]
    per_step = (last["time_s"] - first["time_s"]) / (last["step"] - first["step"])
    summary = json.loads((out / "summary.json").read_text())
    return {
        "ranks": ranks, "points": points, "optimizer": optimizer, "steps": summary["steps"],
        "s_per_step": per_step, "steps_per_s": 1 / per_step, "final_loss": summary["final_loss"],
        "rel_l2": summary.get("rel_l2", {}).get("u"), "world_size": summary["world_size"],
    }  # fmt: skip


def measure(optimizer: str, points: int, steps: int, rounds: int) -> dict:
    """Strong (``points`` on 1 and 2 ranks) and weak (``points/2`` on 1 rank, ``points`` on 2) scaling."""
    cases = {"1 rank": (1, points), "2 ranks": (2, points), "1 rank, half": (1, points // 2)}
    results: dict[str, list[dict]] = {k: [] for k in cases}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for name, (ranks, n) in cases.items():  # interleaved: a load change hits every case alike
                out = Path(tmp) / f"{optimizer}-{name.replace(' ', '_').replace(',', '')}-{r}"
                results[name].append(run(out, ranks, optimizer, n, steps))
                print(f"  {optimizer:5s} {name:13s} round {r}: {results[name][-1]['s_per_step'] * 1e3:8.1f} ms/step", flush=True)
    median = {k: statistics.median(x["s_per_step"] for x in v) for k, v in results.items()}
    return {
        "optimizer": optimizer, "points": points, "steps": steps, "rounds": rounds, "runs": results,
        "median_s_per_step": median,
        "strong_speedup": median["1 rank"] / median["2 ranks"],
        "weak_efficiency": median["1 rank, half"] / median["2 ranks"],
        "rel_l2": {k: v[0]["rel_l2"] for k, v in results.items()},
    }  # fmt: skip


def table(results: list[dict], before: str, after: str, date: str) -> str:
    jobs = ",".join(f"{r['optimizer']}:{r['steps']}" for r in results)
    lines = [
        "## Scaling",
        "",
        f"Data-parallel training (issue 16; `docs/distributed.md`), measured {date} by `python benchmarks/scaling.py"
        f" --rounds {results[0]['rounds']} --optimizers {jobs}`:"
        " `specs/poisson2d.yaml`, 64×64 tanh network,"
        " float64, one thread per rank (two ranks: `pdec solve --nproc 2`, gloo). Time per step from the metrics"
        " (start-up excluded), median of interleaved rounds. Strong scaling: the same points on 1 and 2 ranks;"
        " weak scaling: the points per rank fixed (half the points on 1 rank against all on 2; 1.0 is ideal).",
        "",
        "| optimizer | interior points (+10% boundary) | 1 rank ms/step | 2 ranks ms/step | strong speed-up | 1 rank, half the points ms/step | weak efficiency | rel. L2 (1 rank / 2 ranks) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r["median_s_per_step"]
        e = r["rel_l2"]
        lines.append(
            f"| {r['optimizer']} | {r['points']} | {m['1 rank'] * 1e3:.1f} | {m['2 ranks'] * 1e3:.1f} | "
            f"{r['strong_speedup']:.2f}× | {m['1 rank, half'] * 1e3:.1f} | {r['weak_efficiency']:.2f} | "
            f"{e['1 rank']:.3e} / {e['2 ranks']:.3e} |"
        )
    lines += ["", f"Load before: `{before}`; after: `{after}`.", ""]
    return "\n".join(lines)


def write_readme(section: str) -> None:
    """Replace the "## Scaling" section of benchmarks/README.md (append it when missing); nothing else."""
    path = ROOT / "benchmarks" / "README.md"
    text = path.read_text(encoding="utf-8")
    start = text.find("\n## Scaling\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[: start + 1] + section + (text[end + 1 :] if end >= 0 else "")
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--optimizers", default="adam:60,kfac:15", help="OPTIMIZER:STEPS, comma-separated (default adam:60,kfac:15)")
    parser.add_argument("--points", type=int, default=8000, help="interior points of the strong-scaling problem")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--readme", action="store_true", help="rewrite the Scaling section of benchmarks/README.md")
    args = parser.parse_args()
    before = load()
    print(f"load before: {before}", flush=True)
    jobs = [item.split(":") for item in args.optimizers.split(",")]
    results = [measure(name, args.points, int(steps), args.rounds) for name, steps in jobs]
    after = load()
    date = time.strftime("%Y-%m-%d")
    out = {"date": date, "load_before": before, "load_after": after, "cpus": os.cpu_count(), "results": results}
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "scaling.json").write_text(json.dumps(out, indent=2) + "\n")
    section = table(results, before, after, date)
    print(section)
    if args.readme:
        write_readme(section)


if __name__ == "__main__":
    main()
