"""Loss weighting benchmark: fixed, inverse-Dirichlet and NTK weights (REFERENCES §5–6).

Multiscale Poisson (`benchmarks/specs/poisson_multiscale_weighted.yaml`: soft data, ω = kπ): relative L2
against k for each weighting, Adam, the same seed; 1D wave
(`specs/wave1d.yaml`, a smaller network and budget than the paper's).
Everything runs through `pdec.solve`, the product path; each row reports the
load average (`os.getloadavg`) before and after its run, since wall times on
a shared machine mean little without it.

    python benchmarks/weighting.py --k 4 --steps 6000          # the target
    python benchmarks/weighting.py --k 1 2 3 4 5 6 --steps 6000  # error against k
    python benchmarks/weighting.py --wave --steps 2000
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

import pdec  # noqa: E402


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def one(spec: str, weighting: str, steps: int, settings: list[str], out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)  # a fresh run each time (pdec refuses to train into an old run)
    t0 = time.perf_counter()
    result = pdec.solve(
        spec,
        steps=steps,
        out=out,
        settings=[f"training.weighting={weighting}", "output.plots=false", *settings],
    )
    summary = result.summary
    return {
        "spec": Path(spec).stem,
        "weighting": weighting,
        "steps": summary["steps"],
        "rel_l2": summary.get("rel_l2", {}),
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="*", default=[4], help="ω = kπ values for the multiscale Poisson")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--weightings", nargs="*", default=["fixed", "inverse-dirichlet", "ntk"])
    parser.add_argument("--wave", action="store_true", help="run the 1D wave instead")
    parser.add_argument("--out", default="runs/bench-weighting")
    parser.add_argument("--json", default=None, help="append result rows to this JSON-lines file")
    args = parser.parse_args(argv)
    rows = []
    cases = (
        [("specs/wave1d.yaml", "wave", [])]
        if args.wave
        else [("benchmarks/specs/poisson_multiscale_weighted.yaml", f"k{k}", [f"constants.omega={k}*pi"]) for k in args.k]
    )
    for spec, tag, settings in cases:
        for weighting in args.weightings:
            before = load()
            row = one(spec, weighting, args.steps, settings, Path(args.out) / f"{tag}-{weighting}")
            row["case"], row["load_before"], row["load_after"] = tag, before, load()
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.json:
                with open(args.json, "a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
