"""Which mechanism does each hard problem need? One mechanism switched at a time against the spec
as shipped, trained by `auto` (no training section), one thread, pinned, `--max-time` each.

Variants of a spec (each a row): `shipped` (as in specs/, training left to `auto`), `soft`
(every `hard: true` removed: conditions in the loss), `fixed-points` (`resample: 0`), `rar-d`
(`sampler: rar-d`, redrawn every step), `causal` (`causal: 1`, time-dependent specs only), `hard` (every `impose:`
made exact, for a spec shipped without it), `fourier` (`model.fourier`: FOURIER random Fourier features).

    python benchmarks/ablation.py                              # burgers, allen_cahn, wave1d, helmholtz
    python benchmarks/ablation.py --only wave1d --variants shipped soft --max-time 120
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from hard import PUBLISHED, ROOT, run_all, run_spec

PROBLEMS = ("burgers", "allen_cahn", "wave1d", "helmholtz")
VARIANTS = ("shipped", "soft", "hard", "fixed-points", "rar-d", "causal", "fourier")
FOURIER = "{features: 16, scale: 1}"
"""m = 16 features (a [32, 32] network's first layer grows from 3 to 32 inputs), σ = 1 per unit of input."""


def variant_spec(name: str, variant: str, out: Path) -> tuple[Path, list[str]] | None:
    """The spec file and extra arguments of one variant, or None where it does not apply."""
    source = ROOT / "specs" / f"{name}.yaml"
    text = source.read_text(encoding="utf-8")
    exact = "hard: true" in text
    extra = ["--set", "training={}", "--allow-outside-data"]
    if variant == "soft" and exact:
        text = re.sub(r"\n\s*hard: true", "", text)
    elif variant == "hard" and not exact:
        text = re.sub(r"(\n(\s*)impose: [^\n]*)", r"\1\n\2hard: true", text)
    elif variant == "fixed-points" and exact:  # (soft specs keep one fixed set under `auto` anyway)
        extra += ["--set", "training.resample=0"]
    elif variant == "rar-d":
        extra += ["--set", "training.sampler=rar-d", "--set", "training.resample=1"]
    elif variant == "causal" and "\ntime:" in text:
        extra += ["--set", "training.causal=1"]
    elif variant == "fourier":
        extra += ["--set", f"model.fourier={FOURIER}"]
    elif variant != "shipped":
        return None
    text = text.replace("reference: data/", f"reference: {ROOT / 'specs' / 'data'}/")
    path = out / f"{name}-{variant}.yaml"
    path.write_text(text, encoding="utf-8")
    return path, extra


def table(rows: list[dict]) -> str:
    lines = ["| spec | variant | rel. L2 | steps | time (s) | status | best published |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['spec']} | {r['mode']} | error: {r['error']} | | | | |")
            continue
        errors = ", ".join(f"{u} {e:.1e}" for u, e in r["rel_l2"].items())
        lines.append(
            f"| {r['spec']} | {r['mode']} | {errors} | {r['steps']} | {r['time_s']:.0f} | {r['status']} "
            f"| {PUBLISHED.get(r['spec'], '')} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", metavar="NAME", default=list(PROBLEMS))
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--max-time", type=float, default=300.0, help="budget per run in seconds")
    p.add_argument("--jobs", type=int, default=2, help="runs at once, each pinned to its own core")
    p.add_argument("--first-core", type=int, default=0, help="the runs use cores first-core … first-core + jobs - 1")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-ablation")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    todo = [(name, v, *made) for name in args.only for v in args.variants if (made := variant_spec(name, v, args.out))]
    rows = run_all(
        todo, args.jobs, lambda name, variant, spec, extra, core: run_spec(spec, name, variant, extra, args.max_time, core, args.out, args.threads),
        args.first_core,
    )
    (args.out / "ablation.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
