"""The typed, immutable form of a spec, and every default in one place.

Expressions stay text here (`Text`, with their position in the file): the
`pdec.lang` stage parses them. A field's default is the value a spec gets when
it leaves the key out; docs/spec-language.md lists the same table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Loc

OPTIMIZERS = ("adam", "lbfgs", "adam+lbfgs", "engd", "kfac", "kfac*", "kfac2l")
KFAC_FLAVOURS = ("expand", "reduce")
COARSE_SPACES = ("nicolaides", "residual")
COARSE_CORRECTIONS = ("multiplicative", "additive")
WEIGHTINGS = ("fixed", "inverse-dirichlet", "ntk", "lra")
DTYPES = ("float32", "float64")
DEVICES = ("auto", "cpu", "cuda")
SAMPLERS = ("uniform", "sobol")
ACTIVATION_NAMES = ("tanh", "sin", "cos", "softplus", "sigmoid", "gelu", "swish")


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


Domain = Box | Ball


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
    hidden: tuple[int, ...] = (64, 64, 64)
    activation: str = "tanh"
    """A built-in name (`ACTIVATION_NAMES`) or an expression in `z`."""
    activation_loc: Loc | None = None


@dataclass(frozen=True)
class Points:
    """Collocation points per set; conditions may override theirs."""

    interior: int = 2000
    boundary: int = 500
    initial: int = 500


@dataclass(frozen=True)
class TrainingConfig:
    optimizer: str = "adam"
    steps: int = 2000
    lr: float = 1e-3
    lr_decay: float = 1.0
    """Multiply the learning rate by this every `lr_decay_every` steps (Adam)."""
    lr_decay_every: int = 1000
    points: Points = field(default_factory=Points)
    sampler: str = "uniform"
    resample: int = 0
    """Draw new collocation points every this many steps; 0 keeps one fixed set."""
    weighting: str = "fixed"
    dtype: str = "float64"
    device: str = "auto"
    seed: int = 0
    laplacian_samples: int = 0
    """0: exact Laplacian; S > 0: randomized (Hutchinson) with S directions."""
    log_every: int = 100
    damping: float = 1e-8
    """Gauss–Newton optimizers: the damping λ added to the Gramian or to each Kronecker factor
    (for KFAC the starting value when `adaptive_damping` is on)."""
    adaptive_damping: bool = True
    """KFAC: adapt λ every step by the Levenberg–Marquardt rule (Martens & Grosse 2015, §6.5)."""
    ema: float = 0.95
    """KFAC: exponential moving-average factor β of the Kronecker factors."""
    momentum: float = 0.0
    """KFAC: momentum μ of the update (`kfac*` chooses its own)."""
    kfac_flavour: str = "expand"
    """KFAC for weight-shared layers: `expand` or `reduce` (Eschenhagen et al. 2023)."""
    update_every: int = 1
    """Gauss–Newton optimizers: refresh curvature (factors, inverses) every this many steps."""
    coarse_space: str = "nicolaides"
    """Two-level KFAC: `nicolaides` or `residual` (Koroko et al. 2023)."""
    coarse_correction: str = "multiplicative"
    """Two-level KFAC: `multiplicative` (Galerkin, never increases the solve error) or `additive` (the paper's)."""
    weighting_every: int = 100
    """Adaptive loss weights: recompute every this many steps."""
    weighting_alpha: float = 0.5
    """Adaptive loss weights: moving-average factor α of λ ← (1 − α) λ + α λ̂."""
    weighting_points: int = 256
    """NTK weights: points per term for the per-point gradient norms."""


@dataclass(frozen=True)
class OutputConfig:
    dir: str | None = None
    """Run directory; default ``runs/<name>``."""
    grid: int = 101
    """Evaluation points per axis for problems with at most 3 variables."""
    eval_points: int = 10000
    """Random evaluation points for problems with more variables."""
    checkpoint_every: int = 500
    plots: bool = True


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
    parameters: tuple[Parameter, ...] = ()
    conditions: tuple[Condition, ...] = ()
    exact: tuple[tuple[str, Text], ...] = ()
    reference: Reference | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    unknown_locs: tuple[Loc | None, ...] = ()

    @property
    def spatial(self) -> tuple[str, ...]:
        return self.domain.variables

    @property
    def variables(self) -> tuple[str, ...]:
        """Network input columns: the spatial variables, then time."""
        return self.spatial + ((self.time.name,) if self.time else ())
