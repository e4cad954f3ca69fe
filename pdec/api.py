"""The Python API and the one place the pipeline is assembled.

    spec file ─load─▶ Spec ─build_problem, make_exact, make_periodic─▶ SymbolicProblem ─plan─▶ OperatorGraph
              ─emit─▶ problem source ─import─▶ ProblemDef ─bind─▶ Problem ─run─▶ summary

`compile_spec` runs the front end (no torch: `pdec check` and `pdec show`
use it); `compile` adds the emitted module and a network; `solve` trains it
like `pdec solve`. The CLI, `pdec ntk` and the benchmarks call these.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .errors import PdecError
from .plan.auto import choose
from .plan.graph import OperatorGraph, plan
from .spec.load import load_spec
from .spec.schema import Spec
from .symbolic.hard import make_exact
from .symbolic.periodic import make_periodic
from .symbolic.problem import SymbolicProblem, build_problem

if TYPE_CHECKING:  # torch is imported by `compile` and `solve` only
    import torch

    from .runtime.problem import Problem
    from .runtime.reporting import Reporter


@dataclass(frozen=True)
class Compiled:
    """A spec through the front end: checked SymPy problem and operator graph, before any torch."""

    spec: Spec
    problem: SymbolicProblem
    graph: OperatorGraph

    @cached_property
    def source(self) -> str:
        """The emitted problem module (`pdec.codegen.emit`)."""
        from .codegen.emit import emit_module

        return emit_module(self.problem, self.graph)


def compile_spec(spec: str | Path | Spec, overrides: Sequence[str] = (), *, allow_outside_data: bool = False) -> Compiled:
    """Load (if given a path, with ``key.path=value`` overrides), check and plan a spec. Raises `SpecError`.

    ``allow_outside_data``: `data:` and `reference:` files may lie outside the spec's directory."""
    if not isinstance(spec, Spec):
        spec = load_spec(spec, overrides, allow_outside_data=allow_outside_data)
    elif overrides:
        raise TypeError("overrides apply to a spec file, not to a loaded `Spec`")
    problem = choose(make_periodic(make_exact(build_problem(spec))))
    return Compiled(spec, problem, plan(problem))


def compile(
    spec: str | Path | Spec | Compiled,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    overrides: Sequence[str] = (),
    allow_outside_data: bool = False,
) -> Problem:
    """Compile a spec to a torch `Problem` without training.

    The network is initialised from ``seed`` (float64 unless ``dtype`` says
    otherwise). ``problem.derivatives(X)`` and ``problem.residuals(X)`` run
    the emitted code, the same code that `pdec solve` trains and
    `pdec codegen` writes out.

    >>> import pdec, torch
    >>> problem = pdec.compile("specs/heat.yaml")
    >>> problem.variables, problem.unknowns
    (['x', 't'], ['u'])
    >>> sorted(problem.residuals(torch.rand(5, 2, dtype=torch.float64)))
    ['pde']
    """
    import torch

    from .codegen.load import load_problem
    from .runtime.problem import Problem

    compiled = spec if isinstance(spec, Compiled) else compile_spec(spec, overrides, allow_outside_data=allow_outside_data)
    definition = load_problem(compiled.source, compiled.spec.name)
    problem = Problem(definition, dtype=dtype or torch.float64, device=device, seed=seed)
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
    allow_outside_data: bool = False,
) -> Result:
    """Train the PINN of ``spec`` and write its run directory.

    Returns the summary (the fields of ``summary.json``), the trained
    `Problem` and the run directory. Before anything is written the run
    directory is locked and checked: a directory that holds a run needs
    ``resume=True`` (else `PdecError`); ``resume`` needs a checkpoint of the
    same problem and network (else `PdecError` naming what differs); other
    settings may change on resume (more ``steps`` continue the run).
    """
    from .codegen.emit import problem_hash
    from .codegen.load import load_problem
    from .runtime.run import fixed_settings, join_world, run
    from .runtime.rundir import RunDir, write_atomic

    overrides = spec_overrides(steps=steps, optimizer=optimizer, device=device, dtype=dtype, seed=seed, settings=settings)
    compiled = compile_spec(spec, overrides, allow_outside_data=allow_outside_data)
    loaded = compiled.spec
    definition = load_problem(compiled.source, loaded.name)
    key = problem_hash(compiled.source)
    out_dir = Path(out or loaded.output.dir or Path("runs") / loaded.name)
    world = join_world(definition.training)  # under torchrun: rank 0 alone writes the run directory
    run_dir = None
    with world.agreement():
        if world.is_root:
            run_dir = RunDir.for_training(
                out_dir, resume=resume, source_hash=key, fixed=fixed_settings(definition, definition.training)
            )
    try:
        if loaded.path is not None and world.is_root:
            try:
                write_atomic(out_dir / "spec.yaml", Path(loaded.path).read_bytes())
            except OSError as exc:
                raise PdecError(f"cannot write the run directory {out_dir}: {exc.strerror or exc}") from None
        summary, problem = run(
            definition,
            out=out_dir,
            max_time=max_time,
            resume=resume,
            reporter=reporter,
            source_hash=key,
            extra_resolved={"overrides": list(overrides)},
        )
    finally:
        if run_dir is not None:
            run_dir.release()
    problem.compiled = compiled
    if loaded.output.plots and world.is_root:
        from .report.plots import plot_run

        plot_run(out_dir)
    return Result(summary, problem, out_dir)
