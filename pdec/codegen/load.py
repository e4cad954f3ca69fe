"""Import emitted source through a cache keyed by its hash.

The cache makes `pdec solve` import exactly the file `pdec codegen` would
write, and lets a user open it (`PDEC_CACHE_DIR`, default
``~/.cache/pdec``). Files are written atomically.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from .emit import source_hash


def cache_dir() -> Path:
    root = os.environ.get("PDEC_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pdec"
    return Path(root)


def import_source(source: str, stem: str = "problem") -> ModuleType:
    """Write ``source`` to the cache (once) and import it as a fresh module."""
    digest = source_hash(source)
    name = f"pdec_generated_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    if not path.exists() or path.read_text(encoding="utf-8") != source:
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
