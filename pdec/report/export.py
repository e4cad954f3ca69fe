"""`pdec export`: a trained network as a TorchScript file that needs torch alone.

The module maps points ``[N, len(variables)]`` (any float dtype; cast to the
network's) to the unknowns ``[N, len(unknowns)]``, on the CPU; move it with
``.to(device)``. It is the value pass of the network traced once (the same
operations as `TrainedRun.predict`, so the outputs agree to rounding) inside
a scripted wrapper that checks the input's shape. ``module.variables`` and
``module.unknowns`` name the columns; the extra file ``pdec.json`` holds the
names, the problem and the checkpoint step.
"""


import copy
import io
import json
import warnings
from pathlib import Path
from typing import List

import torch

from .. import __version__
from ..errors import PdecError


class ExportedNetwork(torch.nn.Module):
    """Points → unknowns, with the input checked and cast (scripted around the traced network)."""

    variables: List[str]
    unknowns: List[str]

    def __init__(self, net: torch.nn.Module, variables: List[str], unknowns: List[str], dtype: torch.dtype) -> None:
        super().__init__()
        self.net = net
        self.n_in = len(variables)
        self.variables = list(variables)
        self.unknowns = list(unknowns)
        self.register_buffer("dtype_probe", torch.zeros((), dtype=dtype))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if X.dim() != 2 or X.size(1) != self.n_in:
            raise RuntimeError(
                "expected points of shape [N, " + str(self.n_in) + "] with columns " + ", ".join(self.variables)
            )
        return self.net(X.to(self.dtype_probe.dtype))


class _Solution(torch.nn.Module):
    """The network and around it the embedding of its inputs and the unknowns from its outputs
    (exact conditions, exact periodicity; traced)."""

    def __init__(self, net: torch.nn.Module, problem) -> None:
        super().__init__()
        self.net, self.definition = net, problem.definition
        self.parameters_ = {k: v.detach().cpu() for k, v in problem.parameters.items()}

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        from ..runtime.problem import solution_of

        return solution_of(self.definition, self.net, self.parameters_, X)


def export_torchscript(problem, path: str | Path, *, step: int | None = None) -> Path:
    """Write ``problem``'s network (a `pdec.runtime.problem.Problem`) to ``path`` as TorchScript."""
    from ..runtime.rundir import write_atomic

    net = copy.deepcopy(problem.model).cpu()
    net.release_workspace()
    net.requires_grad_(False)
    param = next(net.parameters())
    example = torch.rand(4, len(problem.variables), dtype=param.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.9+ calls TorchScript deprecated; torch.jit.load still reads it
        traced = torch.jit.trace(_Solution(net, problem) if problem.definition.solution else net, example)
        module = torch.jit.script(ExportedNetwork(traced, problem.variables, problem.unknowns, param.dtype))
        buffer = io.BytesIO()
        torch.jit.save(module, buffer, _extra_files={"pdec.json": json.dumps(_meta(problem, param.dtype, step))})
    path = Path(path)
    try:
        write_atomic(path, buffer.getvalue())
    except OSError as exc:
        raise PdecError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def _meta(problem, dtype: torch.dtype, step: int | None) -> dict:
    return {
        "name": problem.name,
        "variables": list(problem.variables),
        "unknowns": list(problem.unknowns),
        "dtype": str(dtype).removeprefix("torch."),
        "step": step,
        "pdec": __version__,
    }
