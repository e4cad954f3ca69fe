"""A trained run, loaded for use: `pdec.load`, `pdec predict` and `pdec export`.

>>> run = pdec.load("runs/heat")                 # the newest checkpoint, on the CPU
>>> run.predict(X)["u"]                           # X: [N, len(run.variables)]
>>> run.derivatives(X)["d(u,x)"], run.residuals(X)["pde"]
>>> run.export("heat.pt")                         # TorchScript: torch.jit.load alone runs it

The problem is rebuilt from the run directory's ``spec.yaml`` with the
settings ``resolved.json`` recorded (the `--set`/option overrides the run was
made with, the network, the dtype); `data:` and `reference:` files are not
needed (the rebuilt problem has no data conditions). The network and the
learnable parameters come from a checkpoint, read with
``weights_only=True``. Randomized (Hutchinson) Laplacians are evaluated
exactly here. Runs of standalone scripts have no ``spec.yaml`` and cannot be
loaded this way.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from .errors import PdecError
from .runtime.problem import Problem
from .runtime.rundir import checkpoint_step, list_checkpoints, load_checkpoint
from .spec.schema import Spec
from .taylor import Laplacian, canonical_name, plan_streams

CHECKPOINTS = ("latest", "best")
"""The checkpoints `load` picks by name (besides a step number)."""
BATCH = 65536


def load(run: str | Path, *, checkpoint: str | int = "latest", device: str | torch.device = "cpu") -> TrainedRun:
    """The trained run in directory ``run``, ready to evaluate.

    ``checkpoint``: ``"latest"`` (the newest that loads), ``"best"`` (of the
    kept checkpoints, the one whose step has the lowest loss in
    ``metrics.jsonl``; refused when the loss weights changed during the run,
    which makes losses incomparable) or a step number. ``device``: ``"cpu"``,
    ``"cuda"``, ``"auto"`` or a `torch.device`.
    """
    from .api import compile as compile_problem
    from .api import compile_spec
    from .runtime.run import TORCH_DTYPES, resolve_device
    from .spec.load import load_spec

    path = Path(run)
    if not path.is_dir():
        raise PdecError(f"{path} is not a run directory")
    for name in ("spec.yaml", "resolved.json"):
        if not (path / name).is_file():
            raise PdecError(f"{path} has no {name}: not a run directory written by `pdec solve`")
    try:
        resolved = json.loads((path / "resolved.json").read_text(encoding="utf-8"))
        hidden, dtype = list(resolved["model"]["hidden"]), resolved["training"]["dtype"]
        overrides = [str(o) for o in resolved.get("overrides", [])]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise PdecError(f"{path / 'resolved.json'} is damaged: it does not say the network and dtype of the run") from None
    if dtype not in TORCH_DTYPES:
        raise PdecError(f"{path / 'resolved.json'}: unknown dtype `{dtype}`")
    overrides += [f"model.hidden={hidden}", f"training.dtype={dtype}"]
    fourier = resolved["model"].get("fourier")  # absent in runs written before Fourier features
    if isinstance(fourier, dict):
        overrides.append(f"model.fourier={{features: {int(fourier['features'])}, scale: {float(fourier['scale'])!r}}}")
    spec = load_spec(path / "spec.yaml", overrides, files=False)
    compiled = compile_spec(spec)
    device = device if isinstance(device, torch.device) else resolve_device(str(device))
    problem = compile_problem(compiled, dtype=TORCH_DTYPES[dtype], device=device)
    problem.definition = _exact(problem.definition)
    chosen, state = _checkpoint(path, checkpoint)
    try:
        problem.model.load_state_dict(state["model"])
        problem.parameters.load_state_dict(state["parameters"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise PdecError(
            f"{chosen} does not fit the network rebuilt from {path / 'spec.yaml'} and resolved.json "
            f"({str(exc).splitlines()[0][:200]})"
        ) from None
    problem.model.release_workspace()
    return TrainedRun(path, spec, problem, chosen, int(state.get("step", checkpoint_step(chosen) or 0)))


def _exact(definition):
    """``definition`` with every randomized Laplacian planned exactly."""

    def exact(plan):
        if not plan.random_groups:
            return plan
        ops = [dataclasses.replace(op, samples=0) if isinstance(op, Laplacian) else op for op in plan.operators]
        return plan_streams(dict.fromkeys(ops), plan.n_inputs)

    return dataclasses.replace(
        definition,
        everything=exact(definition.everything),
        point_sets={k: exact(v) for k, v in definition.point_sets.items()},
    )


def _checkpoint(path: Path, which: str | int) -> tuple[Path, dict]:
    paths = list_checkpoints(path)
    if not paths:
        raise PdecError(f"{path} holds no checkpoint (the run stopped before writing one)")
    if isinstance(which, int) and not isinstance(which, bool):
        chosen = [p for p in paths if checkpoint_step(p) == which]
        if not chosen:
            kept = ", ".join(str(checkpoint_step(p)) for p in paths)
            raise PdecError(f"{path} holds no checkpoint of step {which} (kept: {kept})")
        return chosen[0], load_checkpoint(chosen[0])
    if which == "best":
        best = _best(path, paths)
        return best, load_checkpoint(best)
    if which not in CHECKPOINTS:
        raise PdecError(f"checkpoint must be `latest`, `best` or a step number, not `{which}`")
    for candidate in reversed(paths):
        try:
            return candidate, load_checkpoint(candidate)
        except PdecError:
            raise
        except Exception:  # noqa: BLE001 - truncated by a crash: the one before
            continue
    raise PdecError(f"none of the checkpoints in {path} can be read (truncated or damaged files)")


def _best(path: Path, paths: list[Path]) -> Path:
    """The kept checkpoint whose step has the lowest logged loss, under one set of loss weights."""
    logged = {}
    metrics = path / "metrics.jsonl"
    if metrics.is_file():
        for line in metrics.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
                logged[int(record["step"])] = (float(record["loss"]), json.dumps(record.get("weights"), sort_keys=True))
            except (ValueError, KeyError, TypeError):
                continue
    found = [(logged[s][0], logged[s][1], p) for p in paths if (s := checkpoint_step(p)) in logged and math.isfinite(logged[s][0])]
    if not found:
        raise PdecError(f"checkpoint `best`: no kept checkpoint of {path} has a logged loss; use `latest`")
    if len({weights for _, weights, _ in found}) > 1:
        raise PdecError(
            "checkpoint `best`: the loss weights changed between the kept checkpoints (adaptive weighting), "
            "so their losses do not compare; use `latest` or a step number"
        )
    return min(found, key=lambda f: f[0])[2]


@dataclass
class TrainedRun:
    """A run directory's network and problem: evaluate it at any points."""

    path: Path
    spec: Spec
    problem: Problem
    checkpoint: Path
    step: int

    @property
    def variables(self) -> list[str]:
        return list(self.problem.variables)

    @property
    def unknowns(self) -> list[str]:
        return list(self.problem.unknowns)

    @cached_property
    def summary(self) -> dict | None:
        """``summary.json`` (None while the run has not finished)."""
        try:
            return json.loads((self.path / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def points(self, X) -> torch.Tensor:
        """``X`` (array, tensor or nested list ``[N, len(variables)]``) as the network's dtype and device."""
        p = next(self.problem.model.parameters())
        X = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X)
        if X.dim() == 1 and len(self.variables) == 1:
            X = X[:, None]
        if X.dim() != 2 or X.shape[1] != len(self.variables):
            raise PdecError(f"expected points of shape [N, {len(self.variables)}] ({', '.join(self.variables)}), got {list(X.shape)}")
        return X.to(dtype=p.dtype, device=p.device)

    def _batched(self, X, fn) -> dict[str, torch.Tensor]:
        X = self.points(X)
        parts = [fn(X[i : i + BATCH]) for i in range(0, len(X), BATCH)] or [fn(X)]
        return {k: torch.cat([part[k].detach() for part in parts]) for k in parts[0]}

    @torch.no_grad()
    def predict(self, X) -> dict[str, torch.Tensor]:
        """Each unknown at the points ``X``: ``{unknown: [N]}``."""
        solution = self.problem.solution
        return self._batched(X, lambda x: {u: v for u, v in zip(self.unknowns, solution(x).unbind(1))})

    @torch.no_grad()
    def derivatives(self, X) -> dict[str, torch.Tensor]:
        """Every derivative of every unknown the spec uses, by canonical name (``d(u,x)``, ``laplacian(u)``)."""
        return self._batched(X, self.problem.values)

    @torch.no_grad()
    def residuals(self, X) -> dict[str, torch.Tensor]:
        """Each equation's residual at the points ``X``."""
        return self._batched(X, self.problem.residuals)

    def export(self, path: str | Path) -> Path:
        """Write a TorchScript module: points ``[N, len(variables)]`` → unknowns ``[N, len(unknowns)]``."""
        from .report.export import export_torchscript

        return export_torchscript(self.problem, path, step=self.step)


def derivative_names(run: TrainedRun) -> list[str]:
    """The derivative columns `pdec predict --derivatives` writes: every canonical name but the plain values."""
    d = run.problem.definition
    names = list(d.solution) or [canonical_name(u, op, run.variables) for op in d.everything.operators for u in run.unknowns]
    return [n for n in dict.fromkeys(names) if n not in run.unknowns]

