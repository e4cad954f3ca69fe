"""A problem definition bound to a network: derivatives and residuals on points.

Torch only: standalone scripts carry this file. The `ProblemDef` (emitted by
`pdec.codegen`) says which operators each point set needs, with their Taylor
plans, and how each residual combines them; this class owns the network and
the learnable parameters and evaluates both.
"""

from __future__ import annotations

import torch

from pdec.contract import ProblemDef
from pdec.taylor import StreamPlan, TaylorMLP, canonical_name


def solution_of(definition: ProblemDef, net, parameters, X: torch.Tensor) -> torch.Tensor:
    """The unknowns at ``X`` from the network ``net``: its inputs embedded and its outputs
    mapped through `ProblemDef.solution` where the problem says so (also what `pdec export`
    traces)."""
    raw = net(definition.embed(X) if definition.embed else X)
    if not definition.solution:
        return raw
    D = {u: raw[:, k] for k, u in enumerate(definition.unknowns)}
    return torch.stack([definition.solution[u](X, D, parameters) for u in definition.unknowns], dim=1)


class Problem:
    """A compiled spec: ``model``, ``derivatives(X)``, ``residuals(X)``.

    ``X`` is ``[N, len(variables)]`` with columns in ``variables`` order.
    """

    def __init__(self, definition: ProblemDef, *, dtype: torch.dtype = torch.float64, device=None, seed: int = 0) -> None:
        self.definition = definition
        self.name: str = definition.name
        self.variables: list[str] = list(definition.variables)
        self.spatial: list[str] = list(definition.spatial)
        self.unknowns: list[str] = list(definition.unknowns)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = TaylorMLP(
                len(definition.network_inputs),
                definition.hidden,
                len(self.unknowns),
                definition.activation,
                fourier=definition.fourier,
                dtype=dtype,
                device=device,
            )
        self.parameters = torch.nn.ParameterDict(
            {k: torch.nn.Parameter(torch.tensor(v, dtype=dtype, device=device)) for k, v in definition.parameters.items()}
        )

    def _named(self, X: torch.Tensor, plan: StreamPlan, generator) -> dict[str, torch.Tensor]:
        embed = self.definition.embed
        values = self.model.taylor(embed(X) if embed else X, plan, generator)
        inputs = self.definition.network_inputs
        return {
            canonical_name(u, op, inputs): values[op][:, k]
            for op in plan.operators
            for k, u in enumerate(self.unknowns)
        }

    def derivatives(self, X: torch.Tensor, point_set: str | None = None, generator=None) -> dict[str, torch.Tensor]:
        """The network's derivatives the spec (or one point set) uses, by canonical name over its
        inputs. With exact conditions or embedded inputs these are N's, not the unknowns':
        `values` gives the unknowns'."""
        d = self.definition
        return self._named(X, d.everything if point_set is None else d.point_sets[point_set], generator)

    def fields(self, X: torch.Tensor, D: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The unknowns and their derivatives from the network's ``D``: ``D`` itself, or with
        exact conditions or embedded inputs `ProblemDef.solution` — those that ``D`` feeds."""
        d = self.definition
        if not d.solution:
            return D
        return {k: fn(X, D, self.parameters) for k, fn in d.solution.items() if all(n in D for n in d.solution_needs[k])}

    def values(self, X: torch.Tensor, point_set: str | None = None, generator=None) -> dict[str, torch.Tensor]:
        """`derivatives` of the unknowns themselves (through `fields`)."""
        return self.fields(X, self.derivatives(X, point_set, generator))

    def solution(self, X: torch.Tensor) -> torch.Tensor:
        """The unknowns at ``X``, ``[N, len(unknowns)]`` (one plain forward pass)."""
        return solution_of(self.definition, self.model, self.parameters, X)

    def residual(self, name: str, X: torch.Tensor, normals: torch.Tensor | None = None, derivatives=None) -> torch.Tensor:
        """The residual of one equation or condition at the points ``X``."""
        term = self.definition.term(name)
        if term.residual is None:
            raise ValueError(f"term `{name}` ({term.kind}) has no pointwise residual")
        D = derivatives if derivatives is not None else self.derivatives(X, term.point_set)
        return term.residual(X, D, self.parameters, normals)

    def residuals(self, X: torch.Tensor, generator=None) -> dict[str, torch.Tensor]:
        """Every equation's residual at the interior points ``X`` (one Taylor pass)."""
        D = self.derivatives(X, "interior", generator)
        return {t.name: t.residual(X, D, self.parameters, None) for t in self.definition.terms_of("equation")}

    def exact(self, X: torch.Tensor) -> dict[str, torch.Tensor]:
        """The exact solution of each unknown that has one."""
        return {u: fn(X) for u, fn in self.definition.exact.items()}
