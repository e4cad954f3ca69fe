"""A problem module bound to a network: derivatives and residuals on points.

Torch only: standalone scripts carry this file. The problem module (emitted
by `pdec.codegen`) says which operators each point set needs and how each
residual combines them; this class owns the network and the learnable
parameters and evaluates both.
"""

from __future__ import annotations

from types import ModuleType

import torch

from pdec.taylor import TaylorMLP, canonical_name, plan_streams


class Problem:
    """A compiled spec: ``model``, ``derivatives(X)``, ``residuals(X)``.

    ``X`` is ``[N, len(variables)]`` with columns in ``variables`` order.
    """

    def __init__(self, module: ModuleType, *, dtype: torch.dtype = torch.float64, device=None, seed: int = 0) -> None:
        self.module = module
        self.name: str = module.NAME
        self.variables: list[str] = list(module.VARIABLES)
        self.spatial: list[str] = list(module.SPATIAL)
        self.unknowns: list[str] = list(module.UNKNOWNS)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = TaylorMLP(
                len(self.variables), module.HIDDEN, len(self.unknowns), module.ACTIVATION, dtype=dtype, device=device
            )
        self.parameters = torch.nn.ParameterDict(
            {k: torch.nn.Parameter(torch.tensor(v, dtype=dtype, device=device)) for k, v in module.PARAMETERS.items()}
        )
        n_in = len(self.variables)
        self.plans = {name: plan_streams(ops, n_in) for name, ops in module.POINT_SETS.items()}
        self._operators = tuple(sorted({op for ops in module.POINT_SETS.values() for op in ops}, key=str))
        self._all = plan_streams(self._operators, n_in)

    def _named(self, values: dict, operators) -> dict[str, torch.Tensor]:
        return {
            canonical_name(u, op, self.variables): values[op][:, k]
            for op in operators
            for k, u in enumerate(self.unknowns)
        }

    def derivatives(self, X: torch.Tensor, point_set: str | None = None, generator=None) -> dict[str, torch.Tensor]:
        """Every derivative of every unknown the spec (or one point set) uses, by canonical name."""
        if point_set is None:
            return self._named(self.model.taylor(X, self._all, generator), self._operators)
        ops = self.module.POINT_SETS[point_set]
        return self._named(self.model.taylor(X, self.plans[point_set], generator), ops)

    def residual(self, name: str, X: torch.Tensor, normals: torch.Tensor | None = None, derivatives=None) -> torch.Tensor:
        """The residual of one equation or condition at the points ``X``."""
        kind, point_set, fn, _ = self.module.TERMS[name]
        if fn is None:
            raise ValueError(f"term `{name}` ({kind}) has no pointwise residual")
        D = derivatives if derivatives is not None else self.derivatives(X, point_set)
        return fn(X, D, self.parameters, normals)

    def residuals(self, X: torch.Tensor, generator=None) -> dict[str, torch.Tensor]:
        """Every equation's residual at the interior points ``X`` (one Taylor pass)."""
        D = self.derivatives(X, "interior", generator)
        return {
            name: fn(X, D, self.parameters, None)
            for name, (kind, _, fn, _) in self.module.TERMS.items()
            if kind == "equation"
        }

    def exact(self, X: torch.Tensor) -> dict[str, torch.Tensor]:
        """The exact solution of each unknown that has one."""
        return {u: fn(X) for u, fn in self.module.EXACT.items()}
