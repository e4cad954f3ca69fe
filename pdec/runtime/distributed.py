"""Data parallelism over collocation points (`torchrun --nproc-per-node N -m pdec solve SPEC`).

Why this shape. Every rank draws the SAME full point sets (same seed, same
sampler state), so checkpoints, resume and the points themselves do not depend
on the number of ranks; each rank then evaluates only its contiguous shard of
every point set (`shard_batches`). The loss is the mean over the union: a
term's mean square ``w/M Σ_n r_n²`` is a sum over points, so each rank
computes its part and the ranks sum. That part is obtained without touching
the loss code: a rank's residuals are multiplied by ``√(n_local/n)`` (the
point set's share), so the local ``w · mean(r̃²) = w/M Σ_local r²`` is exactly
its share of the global term (a set with fewer points than ranks is
evaluated whole on every rank with share ``1/size``). Then everything that
is a sum over points is all-reduced: the loss values and gradients
(`sum_many_`), ENGD's ``J̃ᵀJ̃`` and ``J̃ᵀr̃``, KFAC's Kronecker factors,
weighting gradients and causal slab losses, while vectors over residual
rows (``J̃v``) are all-gathered, so every rank computes the same numbers and
takes the same step. Rank 0 alone writes the run directory.

A single-process `World` does nothing at all, so a plain run is the code it
was, bit for bit. A `ProcessWorld` is made from torchrun's environment
(``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``…): gloo on the CPU, NCCL on CUDA,
with a collective timeout (``PDEC_COLLECTIVE_TIMEOUT`` seconds, default
`TIMEOUT_S`), so a rank that dies ends the others with `RankLost` (a clear
message and a non-zero exit), never a hang.
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime
import math
import os
import signal
from contextlib import contextmanager

import torch

from pdec.errors import PdecError

_LOST = [False]
"""Set once a collective failed: another rank is gone (`_leave` then waits for no one)."""
TIMEOUT_S = 300.0
"""Collective timeout: a rank that neither answers nor closes its connection ends the run after this."""


class RankLost(PdecError):
    """Another rank of a distributed run stopped (killed, crashed) or stopped answering."""

    exit_code = 1
    """Not the spec's fault (exit 2 is): the command exits 1."""


def shard_range(n: int, size: int, rank: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous block ``[lo, hi)`` of ``n`` items (the first ``n % size`` get one more)."""
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


class World:
    """One process: rank 0 of 1, and every collective is a no-op (a plain run is unchanged)."""

    rank = 0
    size = 1
    device = torch.device("cpu")

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """All-reduce ``tensor`` in place (sum over ranks); returns it."""
        return tensor

    def sum_many_(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        """`sum_` of several tensors in one collective (flattened, float64 where one is)."""
        return tensors

    def sum_scalar(self, value: float) -> float:
        return value

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """``[size, *shape]``: every rank's ``tensor`` (same shape on every rank), in rank order."""
        return tensor.unsqueeze(0)

    def gather_rows(self, local: torch.Tensor, counts: list[int]) -> torch.Tensor:
        """The concatenation over ranks of ``local`` (``counts[r]`` rows on rank ``r``)."""
        return local

    def barrier(self) -> None:
        pass

    def same(self, value: float) -> bool:
        """Whether every rank holds the same ``value``."""
        return True

    def sum_dict(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{k: scalar}`` summed over ranks (the loss per term)."""
        return values

    @contextmanager
    def agreement(self):
        """Run a setup block that may fail on some ranks; all ranks leave it together."""
        yield


class ProcessWorld(World):
    """A rank of a ``torch.distributed`` process group (made by `init_world`)."""

    def __init__(self, device: torch.device) -> None:
        import torch.distributed as dist

        self.dist = dist
        self.rank, self.size = dist.get_rank(), dist.get_world_size()
        self.device = device

    def _run(self, fn, *args):
        try:
            return fn(*args)
        except RankLost:
            _LOST[0] = True
            raise
        except Exception as exc:  # gloo: "Connection closed by peer", timeouts; NCCL: DistBackendError
            _LOST[0] = True
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RankLost(
                f"rank {self.rank}: another rank of this distributed run stopped or stopped answering ({detail}); "
                "the run directory keeps its last checkpoint: continue with --resume"
            ) from None

    def sum_(self, tensor):
        self._run(self.dist.all_reduce, tensor)
        return tensor

    def sum_many_(self, tensors):
        if not tensors:
            return tensors
        dtype = torch.float64 if any(t.dtype == torch.float64 for t in tensors) else tensors[0].dtype
        flat = torch.cat([t.detach().reshape(-1).to(dtype) for t in tensors])
        self.sum_(flat)
        start = 0
        for t in tensors:
            k = t.numel()
            with torch.no_grad():
                t.copy_(flat[start : start + k].view_as(t))
            start += k
        return tensors

    def sum_scalar(self, value):
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        return float(self.sum_(t)[0])

    def gather(self, tensor):
        parts = [torch.empty_like(tensor) for _ in range(self.size)]
        self._run(self.dist.all_gather, parts, tensor.contiguous())
        return torch.stack(parts)

    def gather_rows(self, local, counts):
        top = max(counts)
        padded = local.new_zeros((top, *local.shape[1:]))
        padded[: local.shape[0]] = local
        every = self.gather(padded)
        return torch.cat([every[r, : counts[r]] for r in range(self.size)])

    def barrier(self):
        self._run(self.dist.barrier)

    def same(self, value):
        every = self.gather(torch.tensor([float(value)], dtype=torch.float64, device=self.device))
        return bool((every == every[0]).all())

    def sum_dict(self, values):
        keys = list(values)
        flat = torch.stack([values[k].detach().to(torch.float64) for k in keys]) if keys else None
        if flat is None:
            return values
        self.sum_(flat)
        return {k: flat[i].to(values[k].dtype) for i, k in enumerate(keys)}

    @contextmanager
    def agreement(self):
        failed = 0.0
        try:
            yield
        except BaseException:
            failed = 1.0
            self.sum_scalar(failed)
            raise
        if self.sum_scalar(failed) > 0:
            raise PdecError(f"rank {self.rank}: another rank failed before training started (its error is above)")


_CURRENT: list[World] = [World()]


def current_world() -> World:
    """The world of this process: `World()` unless `init_world` joined a process group."""
    return _CURRENT[0]


def launched() -> bool:
    """Whether this process was started by torchrun (or `pdec solve --nproc`) as one of several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_world(device: str | torch.device = "cpu") -> World:
    """Join the process group torchrun describes in the environment (once; later calls return it).

    ``device``: the resolved device name; CUDA uses NCCL and the rank's local GPU, the CPU gloo.
    Without torchrun's environment (or with one rank) this is the no-op `World`."""
    if _CURRENT[0].size > 1 or not launched():
        return _CURRENT[0]
    import torch.distributed as dist

    device = torch.device(device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    timeout = datetime.timedelta(seconds=float(os.environ.get("PDEC_COLLECTIVE_TIMEOUT", TIMEOUT_S)))
    if not dist.is_initialized():
        try:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timeout)
        except Exception as exc:  # the rendezvous failed: a rank never came, a port in use
            raise RankLost(f"could not join the distributed run: {exc}") from None
    _CURRENT[0] = ProcessWorld(device)
    atexit.register(_leave, dist)  # a process group left to the interpreter's exit aborts the process (gloo)
    _outlive_sigterm()
    return _CURRENT[0]


def _outlive_sigterm() -> None:
    """When a rank dies, torchrun sends SIGTERM to the others at once; the default action would
    kill a survivor before it says why it stops (`RankLost`) or while it unwinds. A rank ends by
    itself instead: while training the trainer's own handler stops it after the step (with a
    checkpoint), otherwise its next collective fails; torchrun sends SIGKILL to one that doesn't."""
    try:
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
    except ValueError:  # not the main thread: leave signals alone
        pass


LEAVE_TIMEOUT_S = 30.0
"""How long a rank waits at exit for the others to reach the same point."""


def _leave(dist) -> None:
    """Leave together, then tear down. A rank that destroys its group while a peer's gloo
    connection is still open makes the peer's background thread throw, and the process aborts
    ("terminate called without an active exception", SIGABRT) after a run that succeeded —
    seen in about one launch in three of tests/distributed. After `RankLost` there is no one
    to wait for."""
    try:
        if dist.is_initialized():
            if not _LOST[0]:
                if dist.get_backend() == "gloo":
                    dist.monitored_barrier(timeout=datetime.timedelta(seconds=LEAVE_TIMEOUT_S))
                else:
                    dist.barrier()
            dist.destroy_process_group()
    except Exception:  # noqa: BLE001 - exiting anyway (another rank gone)
        pass


def shard_batches(batches: dict, world: World) -> tuple[dict, dict[str, float]]:
    """``(local batches, {point set: residual scale})``: each rank's contiguous block of every
    point set, and ``√(n_local/n)``, the scale that makes a rank's local mean square its share of
    the global one. A set with fewer points than ranks is kept whole on every rank, scale
    ``√(1/size)`` (the ranks' copies sum to one)."""
    local, scales = {}, {}
    for name, batch in batches.items():
        n = batch.X.shape[0]
        if n < world.size:
            local[name], scales[name] = batch, math.sqrt(1.0 / world.size)
            continue
        lo, hi = shard_range(n, world.size, world.rank)
        fields = {
            f.name: getattr(batch, f.name)[lo:hi]
            for f in dataclasses.fields(batch)
            if isinstance(getattr(batch, f.name), torch.Tensor)
        }
        local[name], scales[name] = dataclasses.replace(batch, **fields), math.sqrt((hi - lo) / n)
    return local, scales


def shard_counts(n: int, world: World) -> list[int]:
    """Rows per rank of a sharded set of ``n`` (`shard_range`)."""
    return [hi - lo for lo, hi in (shard_range(n, world.size, r) for r in range(world.size))]
