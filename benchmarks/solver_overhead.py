"""Time per training step of `pdec solve` against DeepXDE (PyTorch backend).

The issue-5 setup: 2d Poisson -Δu = 2π² sin(πx) sin(πy) on [0, 1]², network
[2, 64, 64, 64, 1] tanh, 1000 interior + 200 boundary points, float32, Adam.
Both sides run the same number of steps in fresh subprocesses, alternating,
and the per-step time is taken between two logged steps (start-up, the first
steps and compilation are excluded). Prints a table with medians and the
median of the per-round ratios.

    python benchmarks/solver_overhead.py [--steps 600] [--rounds 5] [--threads 2] [--json]

DeepXDE is an optional benchmark dependency (`pip install deepxde==1.15.0`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

SPEC = """
name: poisson_overhead
domain: {x: [0, 1], y: [0, 1]}
unknowns: [u]
equations:
  - -laplacian(u) = 2*pi^2*sin(pi*x)*sin(pi*y)
conditions:
  - {on: boundary, impose: u = 0}
exact: {u: sin(pi*x)*sin(pi*y)}
model: {hidden: [64, 64, 64], activation: tanh}
training:
  optimizer: adam
  lr: 1e-3
  steps: STEPS
  points: {interior: 1000, boundary: 200}
  dtype: float32
  device: cpu
  log_every: WARMUP
output: {grid: 11, checkpoint_every: 1000000, plots: false}
"""

PDEC = """
import json, sys, torch
torch.set_num_threads({threads})
import pdec
result = pdec.solve({spec!r}, out={out!r})
records = [json.loads(l) for l in open({out!r} + "/metrics.jsonl")]
(a, b) = records[0], records[-1]
print(json.dumps({{"per_step_s": (b["time_s"] - a["time_s"]) / (b["step"] - a["step"])}}))
"""

DEEPXDE = """
import os, json, time
os.environ["DDE_BACKEND"] = "pytorch"
import numpy as np, torch
torch.set_num_threads({threads})
import deepxde as dde
dde.config.set_random_seed(0)
geom = dde.geometry.Rectangle([0, 0], [1, 1])
def pde(x, u):
    return -dde.grad.hessian(u, x, i=0, j=0) - dde.grad.hessian(u, x, i=1, j=1) - 2 * np.pi**2 * torch.sin(np.pi * x[:, 0:1]) * torch.sin(np.pi * x[:, 1:2])
bc = dde.icbc.DirichletBC(geom, lambda x: 0, lambda x, on: on)
data = dde.data.PDE(geom, pde, bc, num_domain=1000, num_boundary=200)
net = dde.nn.FNN([2, 64, 64, 64, 1], "tanh", "Glorot normal")
model = dde.Model(data, net)
model.compile("adam", lr=1e-3)
model.train(iterations={warmup}, display_every=10**9, verbose=0)
t = time.perf_counter()
model.train(iterations={steps} - {warmup}, display_every=10**9, verbose=0)
print(json.dumps({{"per_step_s": (time.perf_counter() - t) / ({steps} - {warmup})}}))
"""


def _run(code: str) -> float:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])["per_step_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "poisson_overhead.yaml"
        spec.write_text(SPEC.replace("STEPS", str(args.steps)).replace("WARMUP", str(args.warmup)))
        rows = []
        for r in range(args.rounds):
            out = str(Path(tmp) / f"run{r}")
            pdec_s = _run(textwrap.dedent(PDEC).format(threads=args.threads, spec=str(spec), out=out))
            dde_s = _run(textwrap.dedent(DEEPXDE).format(threads=args.threads, steps=args.steps, warmup=args.warmup))
            rows.append({"pdec_ms": pdec_s * 1e3, "deepxde_ms": dde_s * 1e3, "ratio": dde_s / pdec_s})
    summary = {
        "pdec_ms": statistics.median(r["pdec_ms"] for r in rows),
        "deepxde_ms": statistics.median(r["deepxde_ms"] for r in rows),
        "ratio_median": statistics.median(r["ratio"] for r in rows),
        "rounds": rows,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"2d Poisson, [2, 64, 64, 64, 1] tanh, 1000 + 200 points, float32, Adam, {args.threads} threads")
    print(f"{'round':>5} {'pdec ms/step':>13} {'DeepXDE ms/step':>16} {'DeepXDE / pdec':>15}")
    for i, r in enumerate(rows):
        print(f"{i:>5} {r['pdec_ms']:>13.2f} {r['deepxde_ms']:>16.2f} {r['ratio']:>15.2f}")
    print(f"{'median':>5} {summary['pdec_ms']:>13.2f} {summary['deepxde_ms']:>16.2f} {summary['ratio_median']:>15.2f}")


if __name__ == "__main__":
    main()
