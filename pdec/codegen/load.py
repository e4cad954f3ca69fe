"""Run emitted source as a module, and keep a copy where a user can open it.

`pdec solve` runs exactly the text `pdec codegen` would write. The module is
compiled from the source held in memory — never from a file or a cached
bytecode file that another process could have planted — and the copy in the
cache directory (`PDEC_CACHE_DIR`, default ``~/.cache/pdec``, created
private) is for reading only.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import types
from pathlib import Path

from ..contract import ProblemDef
from ..errors import PdecError
from .emit import source_hash


def cache_dir() -> Path:
    root = os.environ.get("PDEC_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pdec"
    return Path(root)


def _private_cache() -> Path | None:
    """The cache directory, created 0700; None when it cannot be written (the copy is optional).

    A directory that other users can write is refused: they could swap the
    copy a user reads for something else."""
    directory = cache_dir()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = directory.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PdecError(
            f"the pdec cache directory {directory} can be written by other users; "
            f"make it private (chmod 700) or set PDEC_CACHE_DIR"
        )
    return directory


def _keep_copy(source: str, name: str) -> None:
    directory = _private_cache()
    if directory is None:
        return
    path = directory / f"{name}.py"
    try:
        if path.is_file() and not path.is_symlink() and path.read_text(encoding="utf-8") == source:
            return
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(source)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache costs the copy, not the run


def import_source(source: str, stem: str = "problem") -> types.ModuleType:
    """``source`` as a fresh module (one per distinct source), compiled from memory."""
    digest = source_hash(source)
    name = f"pdec_generated_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    _keep_copy(source, name)
    module = types.ModuleType(name)
    module.__file__ = str(cache_dir() / f"{name}.py")
    code = compile(source, module.__file__, "exec", dont_inherit=True)
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 - pdec's own emitted source, built from validated identifiers
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_problem(source: str, stem: str = "problem") -> ProblemDef:
    """The `ProblemDef` that an emitted module's source builds."""
    return import_source(source, stem).PROBLEM
