"""The run directory: metrics, summary, solution and checkpoints, written so
that a crash at any moment leaves the previous state readable.

Every file is written to a temporary name in the same directory and renamed
over the target (`os.replace` is atomic on POSIX); checkpoints are fsynced
before the rename.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import torch

from pdec.errors import PdecError

CHECKPOINT = re.compile(r"checkpoint-(\d{9})\.pt")


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


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def checkpoint_step(path: Path) -> int | None:
    """The step of a checkpoint file name ``checkpoint-000000123.pt``, else None."""
    match = CHECKPOINT.fullmatch(path.name)
    return int(match.group(1)) if match else None


def list_checkpoints(directory: Path) -> list[Path]:
    """The checkpoints in ``directory``, oldest first."""
    found = [p for p in Path(directory).glob("checkpoint-*.pt") if checkpoint_step(p) is not None]
    return sorted(found, key=checkpoint_step)


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PdecError(f"cannot create the run directory {self.path}: {exc.strerror or exc}") from None
        if not os.access(self.path, os.W_OK):
            raise PdecError(f"cannot write to the run directory {self.path}")

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def write_json(self, name: str, data: dict) -> None:
        write_atomic(self.path / name, (json.dumps(_jsonable(data), indent=2) + "\n").encode())

    def write_text(self, name: str, text: str) -> None:
        write_atomic(self.path / name, text.encode())

    def append_metrics(self, record: dict) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(_jsonable(record)) + "\n")
            fh.flush()

    def truncate_metrics(self, after_step: int) -> None:
        """Drop records past ``after_step`` (a resumed run rewrites them)."""
        if not self.metrics_path.exists():
            return
        kept = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["step"] <= after_step:
                    kept.append(line)
            except (ValueError, KeyError):
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
        buffer = io.BytesIO()
        torch.save(state, buffer)
        path = self.path / f"checkpoint-{step:09d}.pt"
        write_atomic(path, buffer.getvalue())
        for old in self.checkpoints()[:-keep]:
            old.unlink(missing_ok=True)
        return path

    def load_latest_checkpoint(self) -> dict | None:
        """The newest checkpoint that loads (a damaged newest one falls back to the one before)."""
        for path in reversed(self.checkpoints()):
            try:
                return load_checkpoint(path)
            except Exception:  # noqa: BLE001 - a truncated file from a crash: try the previous one
                continue
        return None
