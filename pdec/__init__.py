"""pdec: a declarative PDE-spec compiler for physics-informed neural networks."""

__version__ = "0.1.0"
