"""The Python API: `pdec.compile` (no training) and `pdec.solve` (the CLI's `solve`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .codegen.emit import emit_module, source_hash
from .codegen.load import import_source
from .frontend import Compiled, compile_spec
from .runtime.problem import Problem
from .runtime.run import run
from .runtime.rundir import write_atomic
from .runtime.trainer import Reporter
from .spec.load import load_spec
from .spec.schema import Spec


def compile(
    spec: str | Path | Spec,
    *,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device | None = None,
    seed: int = 0,
) -> Problem:
    """Compile a spec to a torch `Problem` without training.

    The network is initialised from ``seed``. ``problem.derivatives(X)`` and
    ``problem.residuals(X)`` run the emitted code, the same code that
    `pdec solve` trains and `pdec codegen` writes out.

    >>> import pdec, torch
    >>> problem = pdec.compile("specs/heat.yaml")
    >>> problem.variables, problem.unknowns
    (['x', 't'], ['u'])
    >>> sorted(problem.residuals(torch.rand(5, 2, dtype=torch.float64)))
    ['pde']
    """
    compiled = spec if isinstance(spec, Compiled) else compile_spec(spec)
    module = import_source(emit_module(compiled), compiled.spec.name)
    problem = Problem(module, dtype=dtype, device=device, seed=seed)
    problem.compiled = compiled
    return problem


@dataclass
class Result:
    summary: dict
    problem: Problem
    run_dir: Path


def spec_overrides(
    *, steps=None, optimizer=None, device=None, dtype=None, seed=None, settings=()
) -> list[str]:
    """Command-line options as ``key.path=value`` spec overrides (validated with the spec)."""
    out = []
    for key, value in (("steps", steps), ("optimizer", optimizer), ("device", device), ("dtype", dtype), ("seed", seed)):
        if value is not None:
            out.append(f"training.{key}={value}")
    return out + list(settings)


def solve(
    spec: str | Path,
    *,
    steps: int | None = None,
    max_time: float | None = None,
    optimizer: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    settings: tuple[str, ...] | list[str] = (),
    reporter: Reporter | None = None,
) -> Result:
    """Train the PINN of ``spec`` and write its run directory.

    Returns the summary (the fields of ``summary.json``), the trained
    `Problem` and the run directory.
    """
    overrides = spec_overrides(steps=steps, optimizer=optimizer, device=device, dtype=dtype, seed=seed, settings=settings)
    loaded = load_spec(spec, overrides)
    compiled = compile_spec(loaded)
    source = emit_module(compiled)
    module = import_source(source, loaded.name)
    out_dir = Path(out or loaded.output.dir or Path("runs") / loaded.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    if loaded.path is not None:
        write_atomic(out_dir / "spec.yaml", Path(loaded.path).read_bytes())
    summary, problem = run(
        module, out=out_dir, max_time=max_time, resume=resume, reporter=reporter, source_hash=source_hash(source)
    )
    problem.compiled = compiled
    if loaded.output.plots:
        from .report.plots import plot_run

        plot_run(out_dir)
    return Result(summary, problem, out_dir)
