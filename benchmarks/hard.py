"""What `pdec solve SPEC` gives a user: every spec with an exact or reference solution,
trained with no training section (`auto`) and, for the hard benchmarks, also with
the spec's own section; `--mode bare` drops the model section too (the network
left to `auto` as well), as a user who writes only the problem would.

Each run is `pdec solve` in a fresh process, one thread, pinned to one core
(`taskset`), with a wall-clock budget: `--max-time 600` for the hard problems
and 180 for the rest (override with `--max-time`). `--jobs 2` runs two problems
at once, one per core. Prints a table (spec, mode, relative L2 per unknown,
steps, time, what `auto` chose) beside the best published number, and writes
`hard.json` into `--out`.

    python benchmarks/hard.py                                  # everything (about 90 min at --jobs 2)
    python benchmarks/hard.py --only poisson2d heat --mode auto --max-time 60
    python benchmarks/hard.py --table runs/a/hard.json runs/b/hard.json   # one table from parts

A row whose exact conditions already give the exact solution (``u = G`` with the network's
output zero; `handed`) is marked: its error does not measure solving the equation.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import queue
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARD = ("burgers", "allen_cahn", "wave1d", "advection", "helmholtz", "kovasznay", "poisson10d")
PUBLISHED = {
    "burgers": "4e-5 (PirateNet + SOAP, 2025)",
    "allen_cahn": "3.5e-6 (PirateNet + SOAP); 1.9e-6 (Fourier + SSBroyden, 2025)",
    "wave1d": "2.9e-5",
    "helmholtz": "1.5e-3 (learning-rate annealing, 2021)",
    "poisson2d": "1.2e-7 (ENGD, KFAC paper: RMSE 6.2e-8)",
}
TARGET = {
    "burgers": 1e-4, "allen_cahn": 1e-3, "wave1d": 1e-3, "advection": 1e-3,
    "helmholtz": 1e-4, "kovasznay": 1e-4, "poisson10d": 1e-3,
}  # fmt: skip
SMALL_TARGET = 1e-4
"""Every other spec with an exact solution and at most 3 variables, within 3 minutes (none for more variables)."""


def specs_with_truth() -> list[str]:
    names = []
    for path in sorted((ROOT / "specs").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        if "\nexact:" in text or "\nreference:" in text:
            names.append(path.stem)
    return names


@functools.cache
def handed(spec: Path) -> tuple[str, ...]:
    """The unknowns whose exact conditions already give their exact solution: with the network's
    output zero, ``u = G`` equals ``exact`` to rounding at 512 interior points. For those the
    training only learns ``N = 0`` and the error says nothing about solving the equation (the
    data's own expression is ``G`` on a ball's sphere and on composite boundaries,
    `pdec.symbolic.hard`)."""
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT))
    import pdec
    from pdec.geometry import geometry_of

    problem = pdec.compile(spec, overrides=["model.hidden=[4]"])
    d = problem.definition
    if not d.exact or not d.solution:
        return ()
    rng = np.random.default_rng(0)
    X = geometry_of(d.domain).sample_interior(512, rng)
    if d.time_interval:
        t0, t1 = d.time_interval
        X = np.c_[X, t0 + (t1 - t0) * rng.random(len(X))]
    X = torch.as_tensor(X)
    with torch.no_grad():
        problem.model.layers[-1].weight.zero_()
        problem.model.layers[-1].bias.zero_()
        G = problem.solution(X)
    out = []
    for k, u in enumerate(d.unknowns):
        if u in d.exact:
            truth = torch.as_tensor(d.exact[u](X), dtype=G.dtype).reshape(-1)
            if (G[:, k] - truth).abs().max() <= 1e-10 * max(1.0, float(truth.abs().max())):
                out.append(u)
    return tuple(out)


def run_one(name: str, mode: str, budget: float, core: int, out: Path, threads: int) -> dict:
    extra = []
    if mode in ("auto", "bare"):
        extra += ["--set", "training={}"]  # the section as if the spec had none
    if mode == "bare":
        extra += ["--set", "model={}"]  # the network left to `auto` too (every spec's activation is tanh, the default)
    return run_spec(ROOT / "specs" / f"{name}.yaml", name, mode, extra, budget, core, out, threads)


def run_spec(spec: Path, name: str, mode: str, extra: list[str], budget: float, core: int, out: Path, threads: int) -> dict:
    """`pdec solve spec` with ``extra`` arguments in a fresh process pinned to ``core``: one table row."""
    run_dir = out / f"{name}-{mode}"
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run each time (pdec refuses to train into an old run)
    cmd = [sys.executable, "-m", "pdec", "solve", str(spec), "--out", str(run_dir),
           "--max-time", str(budget), "--json", "-q", "--set", "output.plots=false", *extra]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if sys.platform.startswith("linux"):
        cmd = ["taskset", "-c", str(core)] + cmd
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    row = {"spec": name, "mode": mode, "budget_s": budget, "load": round(load, 2), "wall_s": round(time.perf_counter() - t0, 1)}
    if done.returncode not in (0, 130):
        row["error"] = (done.stderr.strip().splitlines() or ["?"])[-1]
        return row
    summary = json.loads(done.stdout)
    resolved = json.loads((run_dir / "resolved.json").read_text())
    row |= {
        "rel_l2": summary.get("rel_l2", {}),
        "steps": summary["steps"],
        "time_s": summary["wall_time_s"],
        "status": summary["status"],
        "optimizer": summary["optimizer"],
        "choice": resolved.get("choice", ""),
        "hidden": resolved["model"]["hidden"],
        "inputs": len(resolved["variables"]),
    }
    return row


def run_all(todo: list[tuple], jobs: int, run, first_core: int = 0) -> list[dict]:
    """``run(*item, core)`` for each item of ``todo``, at most ``jobs`` at once, each on a core of
    its own (cores ``first_core`` …, never two runs on one); rows printed as they finish,
    returned in ``todo``'s order."""
    cores: queue.Queue[int] = queue.Queue()
    for core in range(first_core, first_core + jobs):
        cores.put(core)

    def pinned(item: tuple) -> dict:
        core = cores.get()
        try:
            row = run(*item, core)
        finally:
            cores.put(core)
        print(json.dumps(row), flush=True)
        return row

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(pinned, todo))


def table(rows: list[dict]) -> str:
    lines = [
        "| spec | mode | rel. L2 | steps | time (s) | status | target | best published | what ran |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['spec']} | {r['mode']} | error: {r['error']} | | | | | | |")
            continue
        errors = ", ".join(f"{u} {e:.1e}" + (" (G = exact)" if u in r.get("handed", ()) else "") for u, e in r["rel_l2"].items())
        target = TARGET.get(r["spec"], SMALL_TARGET if r["inputs"] <= 3 else None)
        worst = max(r["rel_l2"].values(), default=float("nan"))
        verdict = "" if target is None else ("met" if worst <= target else f"missed ×{worst / target:.0f}")
        if target is not None and r.get("handed"):
            verdict = "not measured: the exact data is the solution"
        what = f"{r['optimizer']} {r['hidden']}"
        lines.append(
            f"| {r['spec']} | {r['mode']} | {errors} | {r['steps']} | {r['time_s']:.0f} | {r['status']} "
            f"| {f'{target:.0e} ({verdict})' if target else '—'} | {PUBLISHED.get(r['spec'], '')} | {what} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", metavar="NAME", help="spec names (file stems)")
    p.add_argument("--mode", choices=("auto", "bare", "own", "both"), default="both",
                   help="auto: no training section; bare: no training and no model section; "
                        "own: the spec's section (hard problems only with `both`)")  # fmt: skip
    p.add_argument("--max-time", type=float, help="budget per run in seconds (default 600 hard, 180 others)")
    p.add_argument("--jobs", type=int, default=2, help="runs at once, each pinned to its own core")
    p.add_argument("--first-core", type=int, default=0, help="the runs use cores first-core … first-core + jobs - 1")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-hard")
    p.add_argument("--table", nargs="+", type=Path, metavar="JSON",
                   help="only print the table of these hard.json files (a later file's row replaces an earlier one's)")  # fmt: skip
    args = p.parse_args(argv)
    if args.table:
        merged = {}
        for path in args.table:
            for r in json.loads(path.read_text()):
                r.setdefault("handed", list(handed(ROOT / "specs" / f"{r['spec']}.yaml")))
                merged[(r["spec"], r["mode"])] = r
        print(table([merged[k] for k in sorted(merged)]))
        return 0
    names = args.only or [n for n in specs_with_truth() if not n.endswith("_large")]  # *_large: issue 15's races
    todo = []
    for name in names:
        modes = ["auto", "own"] if args.mode == "both" and name in HARD else ["auto" if args.mode == "both" else args.mode]
        budget = args.max_time or (600.0 if name in HARD else 180.0)
        todo += [(name, mode, budget) for mode in modes]
    todo.sort(key=lambda t: -t[2])  # long runs first: the two cores stay busy
    args.out.mkdir(parents=True, exist_ok=True)
    rows = run_all(todo, args.jobs, lambda name, mode, budget, core: run_one(name, mode, budget, core, args.out, args.threads),
                   args.first_core)
    for r in rows:
        r["handed"] = list(handed(ROOT / "specs" / f"{r['spec']}.yaml"))  # once per spec (cached), not per row
    rows.sort(key=lambda r: (r["spec"], r["mode"]))
    (args.out / "hard.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
