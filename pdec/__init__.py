"""pdec: a declarative PDE-spec compiler for physics-informed neural networks.

>>> import pdec
>>> problem = pdec.compile("specs/heat.yaml")   # parse, check, emit, import
>>> problem.derivatives(X)                      # every derivative, one Taylor pass
>>> run = pdec.load("runs/heat1d")              # a trained run: run.predict(X)["u"]
"""

__version__ = "0.1.0"

from .errors import PdecError, SpecError, SpecWarning  # noqa: E402


def load_spec(path, overrides=()):
    """Read and validate a spec file (see `pdec.spec.load.load_spec`).

    Imported on first use, so that `import pdec.taylor` (the torch runtime)
    does not pull in SymPy, lark and YAML.
    """
    from .spec.load import load_spec as _load_spec

    return _load_spec(path, overrides)


def compile(spec, **kwargs):
    """Compile a spec to a torch `Problem` (see `pdec.api.compile`)."""
    from .api import compile as _compile

    return _compile(spec, **kwargs)


def solve(spec, **kwargs):
    """Train a spec like `pdec solve`; returns summary, problem and run directory (see `pdec.api.solve`)."""
    from .api import solve as _solve

    return _solve(spec, **kwargs)


def load(run, **kwargs):
    """A trained run directory, ready to evaluate: ``run.predict(X)`` and more (see `pdec.trained.load`)."""
    from .trained import load as _load

    return _load(run, **kwargs)


__all__ = ["compile", "solve", "load", "load_spec", "PdecError", "SpecError", "SpecWarning", "__version__"]
