"""The contract between the compiler and the runtime: one frozen object per problem.

The compiler emits a problem module whose last statement builds one
`ProblemDef`; the runtime (trainer, samplers, optimizers, evaluation) takes
that object and nothing else from the module. Every setting a spec can leave
out has its default here, once, and the name tables below are the only lists
of valid choices (a test asserts that each equals its registry).

Standard library only: standalone scripts carry this file inlined, and
`pdec check` reads the settings types without importing torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

OPTIMIZER_NAMES = ("adam", "lbfgs", "adam+lbfgs", "bfgs", "ssbroyden", "engd", "kfac", "kfac*", "kfac2l")
WEIGHTING_NAMES = ("fixed", "inverse-dirichlet", "ntk", "lra")
ACTIVATION_NAMES = ("tanh", "sin", "cos", "softplus", "sigmoid", "gelu", "swish", "silu")
KFAC_FLAVOURS = ("expand", "reduce")
COARSE_SPACES = ("nicolaides", "residual")
COARSE_CORRECTIONS = ("multiplicative", "additive")
DTYPES = ("float32", "float64")
DEVICES = ("auto", "cpu", "cuda")
SAMPLERS = ("uniform", "sobol", "rar-d")
TERM_KINDS = ("equation", "boundary", "initial", "periodic", "data")
"""`equation`: the PDE on interior points; `boundary`/`initial`: an imposed
condition on sampled support points; `periodic`: values and first
derivatives matched across an axis; `data`: observations from a file."""


# ---------------------------------------------------------------------------
# settings (the `training:` and `output:` sections, with their defaults)


@dataclass(frozen=True)
class Points:
    """Collocation points per set; a condition may override its own (`Term.points`)."""

    interior: int = 2000
    boundary: int = 500
    initial: int = 500


@dataclass(frozen=True)
class TrainingSettings:
    """The `training:` section. ``None`` (and the optimizer `auto`) leave the choice to
    `pdec.plan.auto`, which the compiler runs before emitting: the runtime only ever
    sees concrete values."""

    optimizer: str = "auto"
    steps: int | None = None
    """Optimizer steps; None: until the loss stops falling (`patience`) or the time budget."""
    lr: float = 1e-3
    lr_decay: float = 1.0
    """Multiply the learning rate by this every `lr_decay_every` steps (Adam)."""
    lr_decay_every: int = 1000
    points: Points | None = None
    sampler: str | None = None
    """How interior points are drawn (`SAMPLERS`); None: `auto` chooses (`rar-d` where it
    redraws every step, else `uniform`)."""
    resample: int | None = None
    """Draw new collocation points every this many steps; 0 keeps one fixed set; None: `auto`
    chooses (`pdec.plan.auto`: every step for ENGD with exact conditions, else 0)."""
    weighting: str = "fixed"
    dtype: str = "float64"
    device: str = "auto"
    seed: int = 0
    laplacian_samples: int = 0
    """0: exact Laplacian; S > 0: randomized (Hutchinson) with S directions."""
    log_every: int = 100
    damping: float | None = None
    """Gauss–Newton optimizers: the damping λ added to the Gramian or to each Kronecker factor
    (for KFAC the starting value when `adaptive_damping` is on); None: the optimizer's tuned
    default (`Optimizer.defaults`: 1e-10 for `kfac`, `kfac2l`; 1e-8 for the others)."""
    sketch: int | None = None
    """`engd` only: the rank s of the randomized Nyström approximation of the Gauss–Newton
    kernel (Guzmán-Cordero et al. 2025; `pdec.runtime.nystrom`); None: the exact solve."""
    adaptive_damping: bool | None = None
    """Adapt λ every step: KFAC by the Levenberg–Marquardt rule (Martens & Grosse 2015, §6.5),
    ENGD by the line search's step; None: the optimizer's default (off for `kfac`, `kfac2l`)."""
    ema: float = 0.95
    """KFAC: exponential moving-average factor β of the Kronecker factors."""
    momentum: float | None = None
    """`kfac`, `kfac2l`: momentum μ of the update (a heavy-ball buffer searched as a whole;
    `kfac*` chooses its own); None: the optimizer's default (0.6)."""
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
    patience: int | None = None
    """Stop when the loss has not fallen by 1% in this many steps (0: never); None: chosen with the optimizer."""
    causal: float = 0.0
    """Causal training (time-dependent problems): the starting ε of the time-slab weights
    ``w_i = exp(−ε Σ_{k<i} L_k)`` (`pdec.runtime.causal`); 0: off."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class OutputSettings:
    dir: str | None = None
    """Run directory; default ``runs/<name>``."""
    grid: int = 101
    """Evaluation points per axis for problems with at most 3 variables."""
    eval_points: int = 10000
    """Random evaluation points for problems with more variables."""
    checkpoint_every: int = 500
    plots: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------
# the domain


@dataclass(frozen=True)
class BoxDomain:
    """``[lo_0, hi_0] × … × [lo_d, hi_d]`` over the spatial variables."""

    lo: tuple[float, ...]
    hi: tuple[float, ...]

    @property
    def dim(self) -> int:
        return len(self.lo)


@dataclass(frozen=True)
class BallDomain:
    """``{x : |x − center| ≤ radius}``."""

    center: tuple[float, ...]
    radius: float

    @property
    def dim(self) -> int:
        return len(self.center)


@dataclass(frozen=True)
class PolygonDomain:
    """A simple polygon in the plane, its vertices in either orientation."""

    vertices: tuple[tuple[float, float], ...]

    dim = 2


@dataclass(frozen=True)
class HalfspaceDomain:
    """``{x : normal·x ≤ offset}``: an operand of a bounded `CSGDomain`."""

    normal: tuple[float, ...]
    offset: float

    @property
    def dim(self) -> int:
        return len(self.normal)


@dataclass(frozen=True)
class CSGDomain:
    """``union``, ``intersection`` or ``difference`` (the first operand minus the rest)."""

    op: str
    operands: tuple["Domain", ...]

    @property
    def dim(self) -> int:
        return self.operands[0].dim


Domain = BoxDomain | BallDomain | PolygonDomain | HalfspaceDomain | CSGDomain


# ---------------------------------------------------------------------------
# loss terms


@dataclass(frozen=True)
class Support:
    """One `or` clause of a condition's `on:` selector: where its points are drawn.

    ``region`` is `face` (``axis``, ``side`` 0 low / 1 high), `boundary` (the
    whole spatial boundary), `initial` (the slice at the start time) or `point`;
    ``keep`` filters drawn points (``X -> bool mask``) for clauses such as
    ``x = 0 and y > 0.5``, or is None.
    """

    region: str
    axis: int | None = None
    side: int | None = None
    keep: Callable | None = None
    point: tuple[float, ...] | None = None
    """`point` regions: the spatial coordinates (at every time, for time-dependent problems)."""


@dataclass(frozen=True)
class Data:
    """Observations: a CSV or NPZ file and the column of each variable and observed unknown."""

    path: str
    columns: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Term:
    """One loss term: ``weight × mean(residual²)`` over the points of ``point_set``.

    ``residual(X, D, P, normals)`` maps the points, the derivatives by
    canonical name, the learnable parameters and the outward normals to one
    value per point; periodic and data terms have none (the runtime forms
    them from values).
    """

    name: str
    kind: str
    point_set: str
    residual: Callable | None = None
    weight: float = 1.0
    supports: tuple[Support, ...] = ()
    periodic_axis: int | None = None
    """Periodic terms: the spatial axis whose faces are matched."""
    data: Data | None = None
    points: int | None = None
    """This term's number of points, overriding `training.points`."""

    def __post_init__(self) -> None:
        if self.kind not in TERM_KINDS:
            raise ValueError(f"term `{self.name}`: kind `{self.kind}` is not one of {', '.join(TERM_KINDS)}")


# ---------------------------------------------------------------------------
# the problem


@dataclass(frozen=True)
class ProblemDef:
    """Everything the runtime needs to train one problem, and nothing it must derive again."""

    name: str
    variables: tuple[str, ...]
    """Network input columns: the spatial variables, then time."""
    spatial: tuple[str, ...]
    unknowns: tuple[str, ...]
    domain: Domain
    point_sets: Mapping[str, Any]
    """Per point set, the `pdec.taylor.streams.StreamPlan` of the operators its terms
    need (one Taylor pass), made once by the compiler."""
    everything: Any
    """The `StreamPlan` of every operator any term needs (`Problem.derivatives(X)`)."""
    terms: tuple[Term, ...]
    hidden: tuple[int, ...]
    activation: str | Callable
    """A name from `ACTIVATION_NAMES`, or a function ``(z, order) -> [σ, σ', …]``."""
    fourier: tuple[int, float] | None = None
    """Random Fourier features ``(m, σ)`` between the network's inputs and its first layer, or None."""
    time: str | None = None
    time_interval: tuple[float, float] | None = None
    parameters: Mapping[str, float] = field(default_factory=dict)
    """Learnable PDE coefficients and their starting values."""
    parameters_true: Mapping[str, float] = field(default_factory=dict)
    exact: Mapping[str, Callable] = field(default_factory=dict)
    """Closed-form solutions ``X -> values`` by unknown."""
    reference: str | None = None
    """An ``.npz`` of reference values, for problems with no closed form."""
    training: TrainingSettings = field(default_factory=TrainingSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    choice: str = ""
    """What `auto` chose and why, in one line (empty when the spec chose everything)."""
    solution: Mapping[str, Callable] = field(default_factory=dict)
    """When the network's output is not the unknowns themselves — exact conditions
    (``u = G + φ·N``) or embedded inputs (exact periodicity), `hard: true` — per canonical
    name over ``variables`` of every unknown and derivative the spec uses, ``(X, D, P) ->
    values`` from the network's derivatives ``D``. Residuals are already written in the
    network's terms; everything that reports ``u`` (values, data and periodic terms, metrics,
    predictions) goes through these. Empty: ``D`` is the unknowns' own."""
    solution_needs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """The names in ``D`` each `solution` function reads (a point set feeds only those its terms need)."""
    inputs: tuple[str, ...] = ()
    """The network's input names when ``embed`` is set, else empty (the inputs are ``variables``)."""
    embed: Callable | None = None
    """``X -> network inputs`` (e.g. ``cos``/``sin`` of a periodic variable), or None."""

    @property
    def network_inputs(self) -> tuple[str, ...]:
        return self.inputs or self.variables

    def term(self, name: str) -> Term:
        for t in self.terms:
            if t.name == name:
                return t
        raise KeyError(name)

    def terms_of(self, *kinds: str) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.kind in kinds)

    @property
    def activation_name(self) -> str:
        return self.activation if isinstance(self.activation, str) else "custom"
