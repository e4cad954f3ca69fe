"""The Python API: `pdec.compile`."""

from __future__ import annotations

from pathlib import Path

import torch

from .codegen.emit import emit_module
from .codegen.load import import_source
from .frontend import Compiled, compile_spec
from .runtime.problem import Problem
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
