"""The training loop: losses per term, logging, checkpoints, and clean stops.

State lives here and in the optimizer. A step is deterministic given the
checkpointed state (parameters, optimizer, sampler RNG, current points), so
a resumed run ends bit-identical to an uninterrupted one on the CPU.
Stops: the step budget (`completed`), ``max_time`` (`time-limit`), SIGINT or SIGTERM
(`interrupted`, after a checkpoint), or repeated non-finite losses
(`diverged`, after restoring the last good state and halving the step each
time).
"""

from __future__ import annotations

import copy
import signal
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from pdec.contract import TrainingSettings
from pdec.errors import PdecError
from pdec.runtime.evaluate import Evaluator
from pdec.runtime.causal import Causal
from pdec.runtime.distributed import current_world, shard_batches, shard_counts
from pdec.runtime.losses import sharded_residuals, term_losses, term_residuals
from pdec.runtime.optimizers import make_optimizer
from pdec.runtime.plateau import Plateau
from pdec.runtime.problem import Problem
from pdec.runtime.reporting import Reporter
from pdec.runtime.protocol import Optimizer
from pdec.runtime.rundir import RunDir, jsonable
from pdec.runtime.sampling import Sampler
from pdec.runtime.weighting import make_weighting

MAX_RECOVERIES = 5
LOG_SECONDS = 5.0
"""A full record (errors evaluated, progress shown) at least this often, whatever `log_every` says."""


@dataclass
class RunSettings:
    steps: int
    max_time: float | None = None
    resume: bool = False
    checkpoint_every: int = 500
    checkpoint_seconds: float = 60.0
    """A checkpoint at least this often: a run killed early loses at most a minute."""
    keep_checkpoints: int = 3
    log_every: int = 100
    source_hash: str = ""
    extra_summary: dict = field(default_factory=dict)


class Trainer:
    def __init__(
        self,
        problem: Problem,
        sampler: Sampler,
        evaluator: Evaluator,
        run_dir: RunDir,
        settings: RunSettings,
        training: TrainingSettings,
        reporter: Reporter | None = None,
    ) -> None:
        self.problem, self.sampler, self.evaluator = problem, sampler, evaluator
        self.run_dir, self.settings = run_dir, settings
        self.reporter = reporter or Reporter()
        self.training = training
        self.name = self.training.optimizer
        self.weights = {t.name: float(t.weight) for t in problem.definition.terms}
        self.weighting = make_weighting(training.weighting, problem, training, self.weights)
        self.plateau = Plateau(training.patience or 0)
        d = problem.definition
        self.causal = Causal(training.causal, d.time_interval, d.variables.index(d.time)) if training.causal else None
        self.step = 0
        self.elapsed_before = 0.0
        self.recoveries = 0
        self.resumed_from: int | None = None
        self.batches = None
        self.optimizer: Optimizer | None = None
        self._stop_signal = False
        self._last: tuple[torch.Tensor, dict[str, torch.Tensor]] | None = None
        self.world = current_world()
        """Distributed runs (`distributed.py`): every rank holds all of ``batches`` (the
        checkpointed points) and evaluates its shard; rank 0 alone evaluates errors."""
        self._shard: tuple | None = None  # (batches it was cut from, local batches, scales)

    # -- optimizer -------------------------------------------------------------
    def _ensure_optimizer(self) -> None:
        if self.optimizer is None:
            self.optimizer = make_optimizer(self.problem, self.training)

    @torch.no_grad()
    def _equation_residual(self, X: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """``Σ_equations r²`` at ``X``, for the `rar-d` sampler (in chunks: it sees many candidates;
        distributed, each rank scores its shard of them and the scores are gathered)."""
        world = self.world
        if world.size > 1 and len(X) >= world.size:
            counts = shard_counts(len(X), world)
            lo = sum(counts[: world.rank])
            return world.gather_rows(self._equation_residual_local(X[lo : lo + counts[world.rank]], chunk), counts)
        return self._equation_residual_local(X, chunk)

    def _equation_residual_local(self, X: torch.Tensor, chunk: int) -> torch.Tensor:
        parts = [sum(r.square() for r in self.problem.residuals(X[i : i + chunk]).values()) for i in range(0, len(X), chunk)]
        return torch.cat(parts)

    def _optimizer_step(self, wall: float | None = None) -> None:
        if self.settings.max_time:  # per invocation, as the time limit itself (distributed: rank 0's clock)
            used = time.perf_counter() - self._t0 if wall is None else wall
            self.optimizer.budget_used = used / self.settings.max_time
        self._last = self.optimizer.step(self._residuals, self.weights)
        if self.causal is not None:
            self.causal.update()

    def _residuals(self) -> dict[str, torch.Tensor]:
        if self.world.size == 1:
            return term_residuals(self.problem, self.batches, causal=self.causal)
        if self._shard is None or self._shard[0] is not self.batches:  # new points: cut this rank's shard
            self._shard = (self.batches, *shard_batches(self.batches, self.world))
        return sharded_residuals(self.problem, self._shard[1], self._shard[2], self.world, causal=self.causal)

    def _full_residuals(self) -> dict[str, torch.Tensor]:
        """Every point on every rank (the NTK weights choose entries by position)."""
        return term_residuals(self.problem, self.batches, causal=self.causal)

    def _agree(self, wall: float) -> float:
        """Distributed: every rank stops at the same step, so the stop is decided together:
        rank 0's clock for the time limit, and a signal to any rank stops all of them."""
        if self.world.size == 1:
            return wall
        flags = [wall if self.world.is_root else 0.0, float(self._stop_signal)]
        flags = self.world.sum_(torch.tensor(flags, dtype=torch.float64, device=self.world.device))
        self._stop_signal = bool(flags[1] > 0)
        return float(flags[0])

    # -- state -----------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "elapsed": self.elapsed_before + (time.perf_counter() - self._t0),
            "model": self.problem.model.state_dict(),
            "parameters": self.problem.parameters.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "sampler": self.sampler.state_dict(),
            "batches": self.batches,
            "torch_rng": torch.get_rng_state(),
            "recoveries": self.recoveries,
            "weights": dict(self.weights),
            "weighting": self.weighting.state_dict(),
            "plateau": self.plateau.state_dict(),
            "causal": None if self.causal is None else self.causal.state_dict(),
            "source_hash": self.settings.source_hash,
            "last_loss": None if self._last is None else _floats(self._last),
        }

    def load_state_dict(self, state: dict) -> None:
        if self.settings.source_hash and state.get("source_hash") != self.settings.source_hash:
            raise PdecError(
                "the checkpoint was written for a different version of this problem (spec or pdec changed); "
                "start a fresh run in another directory"
            )
        self.step = state["step"]
        self.elapsed_before = state["elapsed"]
        self.problem.model.load_state_dict(state["model"])
        self.problem.parameters.load_state_dict(state["parameters"])
        self.sampler.load_state_dict(state["sampler"])
        self.batches = state["batches"]
        torch.set_rng_state(state["torch_rng"])
        self.recoveries = state["recoveries"]
        self.weights = dict(state["weights"])
        self.weighting.load_state_dict(state["weighting"])
        self.plateau.load_state_dict(state["plateau"])
        if self.causal is not None and state.get("causal"):
            self.causal.load_state_dict(state["causal"])
        if state.get("last_loss") is not None:  # the loss the run ended with: a no-op resume reports it unchanged
            total, losses = state["last_loss"]
            self._last = (torch.tensor(total, dtype=torch.float64), {k: torch.tensor(v, dtype=torch.float64) for k, v in losses.items()})
        self._ensure_optimizer()
        self.optimizer.load_state_dict(state["optimizer"])

    def _snapshot(self) -> dict:
        return copy.deepcopy(
            {
                "model": self.problem.model.state_dict(),
                "parameters": self.problem.parameters.state_dict(),
                "step": self.step,
            }
        )

    # -- the loop ---------------------------------------------------------------
    def _checkpoint(self) -> None:
        self.run_dir.save_checkpoint(self.step, self.state_dict(), self.settings.keep_checkpoints)
        self._last_checkpoint = time.perf_counter()

    def _on_signal(self, signum, frame) -> None:
        """SIGINT (Ctrl-C) or SIGTERM (a scheduler, `kill`): stop after this step, with a checkpoint."""
        self._stop_signal = True

    def _log(self, full: bool) -> None:
        now = time.perf_counter()
        record = self._record(now - self._t0 + self.elapsed_before, evaluate=full)
        self.run_dir.append_metrics(record)
        self._logged_step = self.step
        if full:
            self.reporter.log(record)
            self._last_log = now

    def _evaluate(self) -> tuple[dict[str, float], np.ndarray | None]:
        if not self.evaluator.has_truth or not self.world.is_root:  # distributed: rank 0 reports
            return {}, None
        prediction = self.evaluator.predict(self.problem.solution)
        return self.evaluator.rel_l2(prediction), prediction

    def _record(self, wall: float, evaluate: bool = True) -> dict:
        """A metrics record; ``evaluate=False`` leaves out the errors (a cheap point of the loss curve)."""
        total, losses = self._last
        errors, _ = self._evaluate() if evaluate else ({}, None)
        record = {
            "step": self.step,
            "time_s": round(wall, 4),
            "loss": float(total),
            "losses": {k: float(v) for k, v in losses.items()},
            "weights": dict(self.weights),
            "optimizer": self.optimizer.current,
        }
        if self.causal is not None:
            record["causal"] = {"epsilon": self.causal.epsilon, "min_weight": self.causal.last_min_weight}
        if self.optimizer.info:
            record["optimizer_info"] = {k: float(v) for k, v in self.optimizer.info.items()}
        if errors:
            record["rel_l2"] = errors
        if len(self.problem.parameters):
            record["parameters"] = {k: float(v.detach()) for k, v in self.problem.parameters.items()}
        return record

    def run(self) -> dict:
        """Train until a stop; return the summary (also written to ``summary.json``)."""
        settings = self.settings
        self._t0 = time.perf_counter()
        if settings.resume:
            state = self.run_dir.load_latest_checkpoint()
            if not self.world.same(-1 if state is None else state["step"]):
                raise PdecError("--resume: the ranks read different checkpoints (is the run directory shared by all nodes?)")
            if state is not None:
                self.load_state_dict(state)
                self.resumed_from = self.step
                self.run_dir.truncate_metrics(self.step)
        if self.batches is None:
            self.batches = self.sampler.draw()
        self._ensure_optimizer()
        self._last_checkpoint = time.perf_counter()
        good = self._snapshot()
        status, message = "completed", ""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        self.reporter.start(self.step, settings.steps)
        self._last_log = time.perf_counter()
        self._logged_step = self.step
        curve_every = max(1, settings.steps // 100)  # the loss curve gets at least 100 points
        try:
            while self.step < settings.steps:
                wall = self._agree(time.perf_counter() - self._t0)
                if self._stop_signal:
                    status = "interrupted"
                    break
                if settings.max_time is not None and wall >= settings.max_time:
                    status = "time-limit"
                    break
                resample = self.training.resample
                if resample and self.step > 0 and self.step % resample == 0:
                    self.batches = self.sampler.draw(self._equation_residual)
                if self.step % self.training.weighting_every == 0:
                    self.weights = self.weighting.update(
                        self.step, self._residuals if getattr(self.weighting, "sharded", True) else self._full_residuals
                    )
                self._optimizer_step(None if self.world.size == 1 else wall)
                total, losses = self._last
                if not torch.isfinite(total):
                    bad = [k for k, v in losses.items() if not torch.isfinite(v)] or ["the total"]
                    self.recoveries += 1
                    if self.recoveries > MAX_RECOVERIES:
                        status = "diverged"
                        message = (
                            f"loss of {', '.join(bad)} became non-finite at step {self.step + 1}; "
                            f"restored the last good state {MAX_RECOVERIES} times with halved steps"
                        )
                        break
                    self.problem.model.load_state_dict(good["model"])
                    self.problem.parameters.load_state_dict(good["parameters"])
                    self.step = good["step"]
                    self.optimizer.recover(self.step)
                    continue
                self.step += 1
                scheduled = self.step % settings.log_every == 0 or self.step == settings.steps
                full = scheduled or time.perf_counter() - self._last_log >= LOG_SECONDS
                if full or self.step % curve_every == 0:
                    self._log(full)
                if scheduled:
                    good = self._snapshot()
                if (
                    self.step % settings.checkpoint_every == 0
                    or time.perf_counter() - self._last_checkpoint >= settings.checkpoint_seconds
                ):
                    self._checkpoint()
                if self.plateau.patience and self.plateau.update(self.step, float(total)):  # no host sync without a plateau rule
                    message = f"stopped at step {self.step}: the loss fell by less than 1% in {self.plateau.patience} steps"
                    if not scheduled:
                        self._log(full=True)  # the last step is always a full record
                    break
        finally:
            self.reporter.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if status in ("time-limit", "interrupted") and self._logged_step != self.step:
            self._log(full=True)  # the last step is always in the record
        if status == "diverged":
            self.problem.model.load_state_dict(good["model"])
            self.problem.parameters.load_state_dict(good["parameters"])
            self.step = good["step"]
        if self._last is None:  # no step ran (resumed at the end, or stopped at once): measure the loss
            losses = self.world.sum_dict(term_losses(self._residuals(), self.weights))
            self._last = (sum(losses.values()).detach(), {k: v.detach() for k, v in losses.items()})
        self._checkpoint()
        return self._finish(status, message)

    def _finish(self, status: str, message: str) -> dict:
        wall = self.elapsed_before + (time.perf_counter() - self._t0)
        total, losses = self._last
        errors, prediction = self._evaluate()
        summary = {
            "name": self.problem.name,
            "optimizer": self.name,
            "steps": self.step,
            "wall_time_s": round(wall, 3),
            "final_loss": float(total),
            "status": status,
            "losses": {k: float(v) for k, v in losses.items()},
        }
        if message:
            summary["message"] = message
        if self.resumed_from is not None:
            summary["resumed_from"] = self.resumed_from
        if errors:
            summary["rel_l2"] = errors
        if len(self.problem.parameters):
            learned = {k: float(v.detach()) for k, v in self.problem.parameters.items()}
            summary["parameters"] = learned
            truth = self.problem.definition.parameters_true
            if truth:
                summary["parameter_rel_error"] = {
                    k: abs(learned[k] - v) / max(abs(v), 1e-300) for k, v in truth.items()
                }
        summary.update(self.settings.extra_summary)
        summary = jsonable(summary)  # what summary.json holds: numbers or null, never NaN
        if not self.world.is_root:  # the run directory is rank 0's
            self.reporter.finish(summary)
            return summary
        if prediction is None:
            prediction = self.evaluator.predict(self.problem.solution)
        arrays = {"X": self.evaluator.X_np, "prediction": prediction, "variables": np.array(self.problem.variables)}
        arrays["unknowns"] = np.array(self.problem.unknowns)
        for u, values in self.evaluator.truth.items():
            arrays[f"exact_{u}"] = values
        arrays.update(self.evaluator.outline())
        self.run_dir.save_npz("solution.npz", **arrays)
        self.run_dir.write_json("summary.json", summary)
        self.reporter.finish(summary)
        return summary



def _floats(last: tuple[torch.Tensor, dict[str, torch.Tensor]]) -> tuple[float, dict[str, float]]:
    """The last loss as plain floats: a checkpoint loads with ``weights_only=True``."""
    total, losses = last
    return float(total), {k: float(v) for k, v in losses.items()}
