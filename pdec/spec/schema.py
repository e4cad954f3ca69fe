"""The typed, immutable form of a spec, and every default in one place.

Expressions stay text here (`Text`, with their position in the file): the
`pdec.lang` stage parses them. A field's default is the value a spec gets when
it leaves the key out; docs/spec-language.md lists the same table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Loc

from ..contract import (  # noqa: F401 (re-exported: the settings types and name tables of a spec)
    ACTIVATION_NAMES,
    COARSE_CORRECTIONS,
    COARSE_SPACES,
    DEVICES,
    DTYPES,
    KFAC_FLAVOURS,
    OPTIMIZER_NAMES,
    SAMPLERS,
    WEIGHTING_NAMES,
    OutputSettings,
    Points,
    TrainingSettings,
)


@dataclass(frozen=True)
class Text:
    """A piece of expression text and where it starts in the spec file."""

    text: str
    loc: Loc

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Box:
    """A product of intervals; a `cube` is a box whose variables are ``x1 … xd``."""

    variables: tuple[str, ...]
    bounds: tuple[tuple[float, float], ...]
    indexed: str | None = None
    loc: Loc | None = None

    @property
    def shape(self) -> str:
        return "cube" if self.indexed else "box"


@dataclass(frozen=True)
class Ball:
    """``{x : |x - center| <= radius}`` (a disk in 2d)."""

    variables: tuple[str, ...]
    center: tuple[float, ...]
    radius: float
    loc: Loc | None = None

    shape = "ball"


@dataclass(frozen=True)
class Polygon:
    """A simple polygon in the plane of ``variables`` (two), vertices in either orientation."""

    variables: tuple[str, ...]
    vertices: tuple[tuple[float, float], ...]
    loc: Loc | None = None

    shape = "polygon"


@dataclass(frozen=True)
class Halfspace:
    """``{x : normal·x ≤ offset}``; only as an operand of a bounded composite."""

    variables: tuple[str, ...]
    normal: tuple[float, ...]
    offset: float
    loc: Loc | None = None

    shape = "halfspace"


@dataclass(frozen=True)
class Composite:
    """``union``, ``intersection`` or ``difference`` (the first operand minus the rest).

    Its variables are its first operand's; every operand has the same set."""

    shape: str
    operands: tuple["Domain", ...]
    loc: Loc | None = None

    @property
    def variables(self) -> tuple[str, ...]:
        return self.operands[0].variables

    @property
    def indexed(self) -> str | None:
        return getattr(self.operands[0], "indexed", None)


Domain = Box | Ball | Polygon | Halfspace | Composite


@dataclass(frozen=True)
class TimeInterval:
    name: str
    start: float
    end: float
    loc: Loc | None = None


@dataclass(frozen=True)
class Constant:
    """A named number; ``value`` may be an expression of earlier constants."""

    name: str
    value: Text
    loc: Loc | None = None
    expr: Any = None
    """The value parsed (a SymPy expression), earlier constants substituted: parsed once, here."""


@dataclass(frozen=True)
class Define:
    """A named expression of the variables (``r2: x^2 + y^2``): an abbreviation, not a value.

    Expressions that mention it get ``expr`` in its place when they are parsed, so
    no later stage knows it was there."""

    name: str
    value: Text
    loc: Loc | None = None
    expr: Any = None
    """The value parsed (a SymPy expression), earlier defines substituted."""


@dataclass(frozen=True)
class Parameter:
    """A learnable scalar (inverse problems): its starting value and, if known, the truth."""

    name: str
    initial: float
    true: float | None = None
    loc: Loc | None = None


@dataclass(frozen=True)
class Equation:
    name: str
    text: Text
    weight: float = 1.0


@dataclass(frozen=True)
class Condition:
    """One boundary/initial condition, periodicity, or set of observations.

    Exactly one of ``impose`` (with ``on``), ``periodic`` or ``data`` is set.
    """

    name: str
    loc: Loc
    on: Text | None = None
    impose: Text | None = None
    periodic: str | None = None
    data: Path | None = None
    columns: tuple[tuple[str, str], ...] = ()
    weight: float = 1.0
    points: int | None = None
    hard: bool = False
    """Satisfy the condition exactly by construction instead of penalizing it in the loss:
    `impose` through ``u = G + φ·N`` (`pdec.symbolic.hard`), `periodic` through the network's
    inputs (`pdec.symbolic.periodic`)."""

    @property
    def kind(self) -> str:
        if self.periodic is not None:
            return "periodic"
        if self.data is not None:
            return "data"
        return "impose"


@dataclass(frozen=True)
class Reference:
    """Reference values on a grid or at points (an ``.npz``), for problems with no closed form."""

    path: Path
    loc: Loc | None = None


@dataclass(frozen=True)
class ModelConfig:
    hidden: tuple[int, ...] | None = None
    """Layer widths; None: chosen with the optimizer (`pdec.plan.auto`)."""
    activation: str = "tanh"
    """A built-in name (`ACTIVATION_NAMES`) or an expression in `z`."""
    activation_loc: Loc | None = None
    activation_expr: Any = None
    """The activation parsed (a SymPy expression in `z`) when it is not a built-in name."""
    fourier: tuple[int, float] | None = None
    """Random Fourier features ``(m, σ)`` in front of the network (`pdec.taylor.mlp.FourierFeatures`), or None."""


@dataclass(frozen=True)
class Spec:
    """A validated spec. Expressions are still text; see `pdec.lang`."""

    name: str
    path: Path | None
    domain: Domain
    unknowns: tuple[str, ...]
    equations: tuple[Equation, ...]
    description: str = ""
    time: TimeInterval | None = None
    constants: tuple[Constant, ...] = ()
    defines: tuple[Define, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    conditions: tuple[Condition, ...] = ()
    exact: tuple[tuple[str, Text], ...] = ()
    reference: Reference | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    unknown_locs: tuple[Loc | None, ...] = ()

    @property
    def spatial(self) -> tuple[str, ...]:
        return self.domain.variables

    @property
    def variables(self) -> tuple[str, ...]:
        """Network input columns: the spatial variables, then time."""
        return self.spatial + ((self.time.name,) if self.time else ())
