"""The run directory: metrics, summary, solution and checkpoints, written so
that a crash at any moment leaves the previous state readable, and so that
nothing planted in the directory is run or written through.

Every file is written to a temporary name in the same directory and renamed
over the target (`os.replace` is atomic on POSIX, and replaces a symbolic
link instead of following it); checkpoints are fsynced before the rename.
`metrics.jsonl` is appended to without following links. A run holds an
exclusive lock on ``.lock`` in the directory while it trains, so a second
process cannot train into the same directory. Checkpoints hold tensors and
plain values only and are read with ``torch.load(weights_only=True)``: a
planted ``checkpoint-*.pt`` with a pickle payload is refused, never run.
"""

from __future__ import annotations

import dataclasses
import errno
import io
import json
import math
import os
import pickle
import re
import stat
import tempfile
import weakref
from pathlib import Path

import numpy as np
import torch

from pdec.errors import PdecError
from pdec.runtime.sampling import Batch

try:
    import fcntl
except ImportError:  # not POSIX: no lock (the other checks still hold)
    fcntl = None

CHECKPOINT = re.compile(r"checkpoint-(\d{9})\.pt")
LOCK_FILE = ".lock"
RUN_FILES = ("resolved.json", "metrics.jsonl", "summary.json")
"""Files that show a directory holds a run (besides checkpoints); `spec.yaml` alone does not."""
WRITTEN = (*RUN_FILES, "spec.yaml", "solution.npz", "ntk.npz", "*.png", "checkpoint-*.pt", LOCK_FILE)
"""Names pdec writes in a run directory: none of them may be a symbolic link."""
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BATCH_TAG = "__pdec_batch__"


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _open_regular(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that refuses a symbolic link (and a FIFO or device) at ``path``."""
    try:
        fd = os.open(path, flags | _NOFOLLOW | os.O_NONBLOCK, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            raise PdecError(f"{path} is a symbolic link: pdec does not read or write through links in a run directory") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PdecError(f"{path} is not a regular file")
    return fd


def jsonable(value):
    """Non-finite floats become null: JSON has no NaN, and a reader must find a number or null, never
    the string "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def checkpoint_step(path: Path) -> int | None:
    """The step of a checkpoint file name ``checkpoint-000000123.pt``, else None."""
    match = CHECKPOINT.fullmatch(path.name)
    return int(match.group(1)) if match else None


def list_checkpoints(directory: Path) -> list[Path]:
    """The checkpoints in ``directory``, oldest first."""
    found = [p for p in Path(directory).glob("checkpoint-*.pt") if checkpoint_step(p) is not None]
    return sorted(found, key=checkpoint_step)


def _plain(value):
    """``value`` with every sampler `Batch` turned into a tagged dict of its fields (tensors, names)."""
    if isinstance(value, Batch):
        return {_BATCH_TAG: True, **{f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_plain(v) for v in value)
    return value


def _unplain(value):
    """The inverse of `_plain`."""
    if isinstance(value, dict):
        if value.get(_BATCH_TAG) is True:
            return Batch(**{k: _unplain(v) for k, v in value.items() if k != _BATCH_TAG})
        return {k: _unplain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unplain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_unplain(v) for v in value)
    return value


def save_checkpoint_file(path: Path, state: dict) -> None:
    """Write ``state`` (tensors, plain values, sampler batches) to ``path`` atomically."""
    buffer = io.BytesIO()
    torch.save(_plain(state), buffer)
    write_atomic(path, buffer.getvalue())


class CheckpointRefused(PdecError):
    """A checkpoint file that holds more than tensors and plain values: refused unread."""


def load_checkpoint(path: Path) -> dict:
    """A checkpoint's state, read with ``weights_only=True``: no code in the file runs.

    Raises `CheckpointRefused` for a file that holds other objects (planted,
    altered, or written by another program) and ordinary errors (``EOFError``,
    ``RuntimeError``, ``OSError``) for a truncated or unreadable one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "Unsupported global" in str(exc) or "Weights only" in str(exc):
            raise CheckpointRefused(
                f"refusing to load the checkpoint {path}: it holds objects other than tensors and plain values, "
                "so it was not written by this version of pdec or has been altered; delete it"
            ) from None
        raise
    if not isinstance(state, dict):
        raise CheckpointRefused(f"refusing to load the checkpoint {path}: it does not hold a training state; delete it")
    return _unplain(state)


# -- the lock ------------------------------------------------------------------
_HELD: dict[str, int | None] = {}
"""Run directories this process has locked: real path → the lock file's descriptor."""


def _lock(directory: Path) -> str | None:
    """Lock ``directory`` for this process; the key for `_unlock`, or None when this process holds it already
    (`pdec.api.solve` locks before it writes `spec.yaml`, then `run` asks again: the first holder releases)."""
    key = os.path.realpath(directory)
    if key in _HELD:
        return None
    fd = None
    if fcntl is not None:
        path = Path(key) / LOCK_FILE
        try:
            fd = _open_regular(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as exc:
            raise PdecError(f"cannot write the run directory {directory}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                who = f"process {holder}" if holder.isdigit() else "another process"
                raise PdecError(
                    f"{who} is training in the run directory {directory} (it holds {LOCK_FILE} there); "
                    "wait for it to finish, or pass --out to train into another directory"
                ) from None
            raise PdecError(f"cannot lock the run directory {directory}: {exc.strerror or exc}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD[key] = fd
    return key


def _unlock(key: str) -> None:
    fd = _HELD.pop(key, None)
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the lock


def holds_run(directory: Path) -> bool:
    """Whether ``directory`` holds (part of) a run: a checkpoint, metrics, a summary or resolved settings."""
    directory = Path(directory)
    return any(os.path.lexists(directory / name) for name in RUN_FILES) or bool(list_checkpoints(directory))


def _flatten(resolved: dict) -> dict:
    """`resolved.json` as ``{"model.hidden": …, "training.dtype": …, "variables": …}``."""
    out = {}
    for key, value in resolved.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PdecError(f"cannot write the run directory {self.path}: {exc.strerror or exc}") from None
        if not os.access(self.path, os.W_OK):
            raise PdecError(f"cannot write to the run directory {self.path}")
        self._release = None

    @classmethod
    def for_training(
        cls, path: str | Path, *, resume: bool, source_hash: str = "", fixed: dict | None = None
    ) -> "RunDir":
        """The run directory, locked for this process and checked before anything is written in it.

        Refused (`PdecError`): a directory another process trains in; a link
        where pdec writes a file; a fresh run where a run already is (without
        ``resume``); ``resume`` with no checkpoint, or with a checkpoint of
        another problem (``source_hash``, when given), naming each of the
        ``fixed`` settings (`run.fixed_settings`) that differs from the run's
        `resolved.json`. Temporary files left by a crash are removed. The checks
        run once, when this process takes the lock (`pdec.api.solve` before it
        writes `spec.yaml`; `run` asks again and finds the lock held). `release`
        (or the end of the process) unlocks."""
        if resume and not Path(path).is_dir():
            raise PdecError(f"--resume: there is no run directory {path}; drop --resume to start a fresh run")
        run_dir = cls(path)
        key = _lock(run_dir.path)
        if key is None:  # this process locked and checked it already
            return run_dir
        run_dir._release = weakref.finalize(run_dir, _unlock, key)
        try:
            run_dir._check(resume, source_hash, fixed or {})
            run_dir.remove_orphans()
        except BaseException:
            run_dir.release()
            raise
        return run_dir

    def release(self) -> None:
        """Unlock, if this object took the lock (idempotent)."""
        if self._release is not None:
            self._release()

    def _check(self, resume: bool, source_hash: str, fixed: dict) -> None:
        links = sorted({p.name for pattern in WRITTEN for p in self.path.glob(pattern) if p.is_symlink()})
        if links:
            raise PdecError(
                f"the run directory {self.path} holds symbolic links where pdec writes ({', '.join(links)}); "
                "pdec does not write through links: remove them"
            )
        if not resume:
            if holds_run(self.path):
                raise PdecError(
                    f"{self.path} already holds a run; pass --resume to continue it, "
                    "or --out DIR to start a new run in another directory"
                )
            return
        if not self.checkpoints():
            stopped = " (its run stopped before writing one)" if holds_run(self.path) else ""
            raise PdecError(
                f"--resume: {self.path} holds no checkpoint to resume from{stopped}; "
                "drop --resume to start a fresh run, or pass --out DIR to train into another directory"
            )
        if not source_hash:
            return
        try:
            before = _flatten(json.loads((self.path / "resolved.json").read_text(encoding="utf-8")))
        except (OSError, ValueError):
            before = {}
        differ = [f"{k} is {before[k]} in the run and {v} now" for k, v in fixed.items() if k in before and before[k] != v]
        if self.load_latest_checkpoint().get("source_hash") == source_hash and not differ:
            return
        what = "; ".join(differ) if differ else "the equations, conditions, domain, constants or pdec's version changed"
        raise PdecError(
            f"cannot resume {self.path}: the checkpoint was written for a different version of this problem ({what}); "
            "resume with the settings it was trained with, or start a fresh run with --out DIR"
        )

    def remove_orphans(self) -> list[str]:
        """Delete the temporary files (``.NAME.*.tmp``) a crash left behind; return their names."""
        removed = []
        for tmp in self.path.glob(".*.tmp"):
            try:
                tmp.unlink()
                removed.append(tmp.name)
            except OSError:
                pass
        return removed

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def write_json(self, name: str, data: dict) -> None:
        write_atomic(self.path / name, (json.dumps(jsonable(data), indent=2) + "\n").encode())

    def write_text(self, name: str, text: str) -> None:
        write_atomic(self.path / name, text.encode())

    def append_metrics(self, record: dict) -> None:
        fd = _open_regular(self.metrics_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(jsonable(record)) + "\n")
            fh.flush()

    def truncate_metrics(self, after_step: int) -> None:
        """Drop records past ``after_step`` (a resumed run rewrites them)."""
        if not os.path.lexists(self.metrics_path):
            return
        with os.fdopen(_open_regular(self.metrics_path, os.O_RDONLY), encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
        kept = []
        for line in lines:
            try:
                if json.loads(line)["step"] <= after_step:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash
        write_atomic(self.metrics_path, ("\n".join(kept) + "\n" if kept else "").encode())

    def save_npz(self, name: str, **arrays: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        write_atomic(self.path / name, buffer.getvalue())

    # -- checkpoints -----------------------------------------------------------
    def checkpoints(self) -> list[Path]:
        return list_checkpoints(self.path)

    def save_checkpoint(self, step: int, state: dict, keep: int = 3) -> Path:
        path = self.path / f"checkpoint-{step:09d}.pt"
        save_checkpoint_file(path, state)
        for old in self.checkpoints()[:-keep]:
            old.unlink(missing_ok=True)
        return path

    def load_latest_checkpoint(self) -> dict | None:
        """The newest checkpoint that loads (a damaged newest one falls back to the one before).

        A checkpoint that holds anything but tensors and plain values is an
        error (`CheckpointRefused`), not a fallback: it did not come from a
        crash. None when there is no checkpoint; an error when none loads."""
        paths = self.checkpoints()
        for path in reversed(paths):
            try:
                return load_checkpoint(path)
            except CheckpointRefused:
                raise
            except Exception:  # noqa: BLE001 - a truncated file from a crash: try the previous one
                continue
        if paths:
            raise PdecError(f"none of the checkpoints in {self.path} can be read (truncated or damaged files)")
        return None


class FollowerRunDir(RunDir):
    """The run directory as a rank other than 0 of a distributed run sees it: it reads
    checkpoints (to resume) and writes nothing, since rank 0 writes the run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._release = None

    def write_json(self, name: str, data: dict) -> None:
        pass

    def write_text(self, name: str, text: str) -> None:
        pass

    def append_metrics(self, record: dict) -> None:
        pass

    def truncate_metrics(self, after_step: int) -> None:
        pass

    def save_npz(self, name: str, **arrays: np.ndarray) -> None:
        pass

    def save_checkpoint(self, step: int, state: dict, keep: int = 3) -> Path | None:
        return None
