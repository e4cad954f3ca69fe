"""YAML text → a validated `Spec`, with a located error for anything wrong.

Each section has a small reader method; the checks they share (types,
ranges, names, unknown keys with "did you mean", numbers written as
expressions of constants) live in `values.ValueReader`, and `--set`
overrides in `overrides`.
"""

from __future__ import annotations

import math
import re
from dataclasses import fields
from collections.abc import Sequence
from pathlib import Path


from ..errors import Loc, SpecError, did_you_mean
from ..lang.parse import parse_expr
from ..lang.scope import Scope, symbol
from . import schema
from .schema import (
    Condition,
    Constant,
    Equation,
    ModelConfig,
    OutputSettings,
    Parameter,
    Points,
    Reference,
    Spec,
    Text,
    TimeInterval,
    TrainingSettings,
)
from .overrides import apply_override
from .defines import DefineReader
from .values import _article
from .yamlnodes import MAX_SPEC_BYTES, YMap, YNode, YScalar, parse_yaml

TOP_KEYS = (
    "name", "description", "domain", "time", "unknowns", "constants", "define", "parameters",
    "equations", "conditions", "exact", "reference", "model", "training", "output",
)  # fmt: skip
CONSTANT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_POINTS = 10_000_000


def load_spec(
    path: str | Path, overrides: Sequence[str] = (), *, allow_outside_data: bool = False, files: bool = True
) -> Spec:
    """Read and validate the spec file at ``path``.

    ``overrides`` are ``key.path=value`` settings (``training.steps=500``)
    applied to the YAML before validation, so they are checked like the file.
    `data:` and `reference:` files must lie under the spec's directory unless
    ``allow_outside_data``; ``files=False`` drops data conditions and the
    reference without looking for their files (loading a trained run).
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_SPEC_BYTES + 1)  # never more: `pdec check /dev/zero` must not fill the memory
    except OSError as exc:
        raise SpecError(f"cannot read spec: {exc.strerror or exc}", Loc(str(path), 1, 1)) from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(f"spec is larger than {MAX_SPEC_BYTES} bytes", Loc(str(path), 1, 1))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec is not UTF-8 text (byte {exc.start}): is this a binary file?", Loc(str(path), 1, 1)) from None
    return load_spec_text(
        text, str(path), base_dir=path.parent, default_name=path.stem, overrides=overrides,
        allow_outside_data=allow_outside_data, files=files,
    )  # fmt: skip


def load_spec_text(
    text: str,
    file: str = "<spec>",
    base_dir: Path | None = None,
    default_name: str = "problem",
    overrides: Sequence[str] = (),
    *,
    allow_outside_data: bool = False,
    files: bool = True,
) -> Spec:
    """Validate spec ``text`` as if read from ``file`` (for tests and tools); see `load_spec`."""
    root = parse_yaml(text, file)
    if root is None:
        raise SpecError("spec is empty: expected a mapping with `domain`, `unknowns` and `equations`", Loc(file, 1, 1))
    for override in overrides:
        root = apply_override(root, override)
    reader = _Reader(file, base_dir or Path("."), allow_outside_data=allow_outside_data, files=files)
    return reader.spec(root, default_name)


_TRAINING_CHOICES = {
    "optimizer": ("auto", *schema.OPTIMIZER_NAMES),
    "weighting": schema.WEIGHTING_NAMES,
    "dtype": schema.DTYPES,
    "device": schema.DEVICES,
    "sampler": schema.SAMPLERS,
    "kfac_flavour": schema.KFAC_FLAVOURS,
    "coarse_space": schema.COARSE_SPACES,
    "coarse_correction": schema.COARSE_CORRECTIONS,
}
"""`training` keys whose value is one of a fixed set of names."""


class _Reader(DefineReader):
    """One reader method per spec section."""

    def spec(self, root: YNode, default_name: str) -> Spec:
        root = self.mapping(root, "spec", TOP_KEYS, required=("domain", "unknowns", "equations"))
        e = root.entries
        constants = self.constants(e["constants"], e) if "constants" in e else ()
        domain = self.domain(e["domain"])
        time = self.time(e["time"]) if "time" in e else None
        unknowns, unknown_locs = self.unknowns(e["unknowns"])
        parameters = self.parameters(e["parameters"]) if "parameters" in e else ()
        self.check_clashes(domain, time, unknowns, unknown_locs, constants, parameters, e)
        defines = self.defines(e["define"], domain, time, unknowns, parameters) if "define" in e else ()
        name = self.run_name(e["name"]) if "name" in e else _run_name(default_name)
        return Spec(
            name=name,
            path=None if self.file.startswith("<") else Path(self.file),
            description=self.string(e["description"], "description") if "description" in e else "",
            domain=domain,
            time=time,
            unknowns=unknowns,
            unknown_locs=unknown_locs,
            constants=constants,
            defines=defines,
            parameters=parameters,
            equations=self.equations(e["equations"]),
            conditions=self.conditions(e["conditions"], time.name if time else None) if "conditions" in e else (),
            exact=self.exact(e["exact"], unknowns) if "exact" in e else (),
            reference=self.reference(e["reference"]) if "reference" in e and self.files else None,
            model=self.model(e["model"]) if "model" in e else ModelConfig(),
            training=self.training(e["training"], time) if "training" in e else TrainingSettings(),
            output=self.output(e["output"]) if "output" in e else OutputSettings(),
        )

    def run_name(self, node: YNode) -> str:
        """The run's name: it names files, not math, so a built-in name (`sin`, `d`) is fine."""
        value = self.string(node, "name")
        if not RUN_NAME.fullmatch(value):
            raise SpecError(
                f"invalid run name `{value}`: use letters, digits, `_`, `.` and `-`, starting with a letter or digit "
                "(at most 64)",
                node.loc,
            )
        return value

    def constants(self, node: YNode, entries: dict[str, YNode]) -> tuple[Constant, ...]:
        node = self.mapping(node, "constants", tuple(node.entries) if isinstance(node, YMap) else ())
        result = []
        for key, value in node.entries.items():
            self.check_name(key, "constant", node.key_locs[key], CONSTANT_NAME)
            text = self.text(value, f"constants.{key}")
            scope = Scope(constants=tuple(self.constant_values), allow_unknowns=False, context=f"constant `{key}`")
            try:
                expr = parse_expr(text.text, scope, text.loc)
            except SpecError as exc:
                if exc.message.startswith("undefined name"):
                    self.refuse_spatial_constant(key, text, scope, entries)
                raise
            self._evaluate(expr, f"constants.{key}", text.loc)
            self.constant_values[key] = _substitute(expr, self.constant_values)
            result.append(Constant(key, text, node.key_locs[key], self.constant_values[key]))
        return tuple(result)

    def time(self, node: YNode) -> TimeInterval:
        if not isinstance(node, YMap) or len(node.entries) != 1:
            raise SpecError("`time` must name one variable with its interval, e.g. `t: [0, 1]`", node.loc)
        (key, value), = node.entries.items()
        self.check_name(key, "variable", node.key_locs[key])
        start, end = self.interval(value, f"time.{key}")
        return TimeInterval(key, start, end, node.key_locs[key])

    def unknowns(self, node: YNode) -> tuple[tuple[str, ...], tuple[Loc, ...]]:
        items = self.sequence(node, "unknowns")
        if not items:
            raise SpecError("`unknowns` is empty: name at least one, e.g. `[u]`", node.loc)
        names = tuple(self.name(item, "unknown") for item in items)
        self._unique(list(names), "unknown", node.loc)
        return names, tuple(item.loc for item in items)

    def parameters(self, node: YNode) -> tuple[Parameter, ...]:
        if not isinstance(node, YMap):
            raise SpecError("`parameters` must map names to starting values, e.g. `nu: 0.1`", node.loc)
        result = []
        for key, value in node.entries.items():
            self.check_name(key, "parameter", node.key_locs[key], CONSTANT_NAME)
            if isinstance(value, YMap):
                value = self.mapping(value, f"parameters.{key}", ("initial", "true"), required=("initial",))
                initial = self.number(value.entries["initial"], f"parameters.{key}.initial")
                true = self.number(value.entries["true"], f"parameters.{key}.true") if "true" in value.entries else None
            else:
                initial, true = self.number(value, f"parameters.{key}"), None
            result.append(Parameter(key, initial, true, node.key_locs[key]))
        return tuple(result)

    def check_clashes(self, domain, time, unknowns, unknown_locs, constants, parameters, entries) -> None:
        """Names are unique across variables, unknowns, constants, parameters and defines."""
        seen: dict[str, str] = {}
        groups = [
            ("variable", [(v, domain.loc) for v in domain.variables] + ([(time.name, time.loc)] if time else [])),
            ("unknown", list(zip(unknowns, unknown_locs))),
            ("constant", [(c.name, c.loc) for c in constants]),
            ("parameter", [(p.name, p.loc) for p in parameters]),
        ]
        if getattr(domain, "indexed", None):
            groups.append(("indexed variable", [(domain.indexed, domain.loc)]))
        if isinstance(entries.get("define"), YMap):
            groups.append(("define", list(entries["define"].key_locs.items())))
        for kind, names in groups:
            for n, loc in names:
                if n in seen:
                    raise SpecError(f"`{n}` is both {_article(seen[n])} and {_article(kind)}: names must be unique", loc)
                seen[n] = kind

    def equations(self, node: YNode) -> tuple[Equation, ...]:
        items = self.sequence(node, "equations")
        if not items:
            raise SpecError("`equations` is empty: give at least one, e.g. `- u_xx = 0`", node.loc)
        result = []
        for i, item in enumerate(items, 1):
            default = "pde" if len(items) == 1 else f"pde{i}"
            if isinstance(item, YMap):
                item = self.mapping(item, "equations[]", ("name", "equation", "weight"), required=("equation",))
                name = self.name(item.entries["name"], "equation", CONSTANT_NAME) if "name" in item.entries else default
                weight = self.weight(item)
                result.append(Equation(name, self.text(item.entries["equation"], "equation"), weight))
            else:
                result.append(Equation(default, self.text(item, "equations[]")))
        self._unique([r.name for r in result], "equation", node.loc)
        return tuple(result)

    def weight(self, node: YMap) -> float:
        if "weight" not in node.entries:
            return 1.0
        value = self.number(node.entries["weight"], "weight")
        if value < 0:
            raise SpecError(f"`weight` must be non-negative, got {value:g}", node.entries["weight"].loc)
        return value

    def conditions(self, node: YNode, time: str | None) -> tuple[Condition, ...]:
        items = self.sequence(node, "conditions")
        keys = ("name", "on", "impose", "periodic", "data", "columns", "weight", "points", "hard")
        result = []
        counters: dict[str, int] = {}
        for item in items:
            item = self.mapping(item, "conditions[]", keys)
            e = item.entries
            kinds = [k for k in ("impose", "periodic", "data") if k in e]
            if len(kinds) != 1:
                raise SpecError("a condition needs exactly one of `impose` (with `on`), `periodic` or `data`", item.loc)
            kind = kinds[0]
            if kind == "impose" and "on" not in e:
                raise SpecError("`impose` needs `on:` saying where (e.g. `on: x = 0` or `on: boundary`)", item.loc)
            if kind != "impose" and "on" in e:
                raise SpecError(f"`on` belongs to `impose`, not to `{kind}`", item.key_locs["on"])
            for key, owners in (("columns", ("data",)), ("hard", ("impose", "periodic"))):
                if key in e and kind not in owners:
                    raise SpecError(f"`{key}` belongs to `{'` or `'.join(owners)}`", item.key_locs[key])
            prefix = {"impose": "bc", "periodic": "periodic", "data": "data"}[kind]
            if kind == "impose" and time and _mentions_initial(e["on"], time):
                prefix = "ic"
            counters[prefix] = counters.get(prefix, 0) + 1
            default = f"{prefix}{counters[prefix]}"
            name = self.name(e["name"], "condition", CONSTANT_NAME) if "name" in e else default
            columns = ()
            if "columns" in e:
                cols = self.mapping(e["columns"], "columns", tuple(e["columns"].entries) if isinstance(e["columns"], YMap) else ())
                columns = tuple((k, self.string(v, f"columns.{k}")) for k, v in cols.entries.items())
            result.append(
                Condition(
                    name=name,
                    loc=item.loc,
                    on=self.text(e["on"], "on") if "on" in e else None,
                    impose=self.text(e["impose"], "impose") if "impose" in e else None,
                    periodic=self.name(e["periodic"], "variable") if "periodic" in e else None,
                    data=self.data_path(e["data"]) if "data" in e else None,
                    columns=columns,
                    weight=self.weight(item),
                    points=self.integer(e["points"], "points", 1, MAX_POINTS) if "points" in e else None,
                    hard=self.boolean(e["hard"], "hard") if "hard" in e else False,
                )
            )
        self._unique([r.name for r in result], "condition", node.loc)
        return tuple(r for r in result if self.files or r.data is None)

    def data_path(self, node: YNode) -> Path:
        path = self.path(node, "data")
        if path.suffix.lower() not in (".csv", ".npz"):
            raise SpecError(f"`data` must be a .csv or .npz file, got `{path.name}`", node.loc)
        return path

    def exact(self, node: YNode, unknowns: tuple[str, ...]) -> tuple[tuple[str, Text], ...]:
        node = self.mapping(node, "exact", unknowns)
        return tuple((k, self.text(v, f"exact.{k}")) for k, v in node.entries.items())

    def reference(self, node: YNode) -> Reference:
        path = self.path(node, "reference")
        if path.suffix.lower() != ".npz":
            raise SpecError(f"`reference` must be an .npz file, got `{path.name}`", node.loc)
        return Reference(path, node.loc)

    def model(self, node: YNode) -> ModelConfig:
        node = self.mapping(node, "model", ("hidden", "activation", "fourier"))
        e = node.entries
        hidden = ModelConfig.hidden
        if "hidden" in e:
            hidden = tuple(self.integer(h, "model.hidden", 1, 100_000) for h in self.sequence(e["hidden"], "model.hidden"))
            if not hidden:
                raise SpecError("`model.hidden` needs at least one layer width", e["hidden"].loc)
        activation, loc, expr = ModelConfig.activation, None, None
        if "activation" in e:
            text = self.text(e["activation"], "model.activation")
            activation, loc = text.text.strip(), text.loc
            if activation not in schema.ACTIVATION_NAMES:
                scope = Scope(variables=("z",), spatial=("z",), allow_unknowns=False, context="`model.activation`")
                try:
                    expr = parse_expr(activation, scope, loc)
                except SpecError as exc:
                    if re.fullmatch(r"[A-Za-z]+", activation):
                        raise SpecError(
                            f"invalid `model.activation` `{activation}`. Supported: "
                            f"{', '.join(schema.ACTIVATION_NAMES)}, or an expression in `z`."
                            f"{did_you_mean(activation, schema.ACTIVATION_NAMES)}".rstrip("."),
                            loc,
                        ) from None
                    raise exc
                if symbol("z") not in expr.free_symbols:
                    raise SpecError("`model.activation` must depend on `z`", loc)
        fourier = self.fourier(e["fourier"]) if "fourier" in e else None
        return ModelConfig(hidden, activation, loc, expr, fourier)

    def fourier(self, node: YNode) -> tuple[int, float] | None:
        """``model.fourier: {features: m, scale: σ}`` (σ defaults to 1), or ``null``/``false`` for none."""
        if isinstance(node, YScalar) and (node.is_null or node.text.strip() == "false"):
            return None
        node = self.mapping(node, "model.fourier", ("features", "scale"), required=("features",))
        e = node.entries
        m = self.integer(e["features"], "model.fourier.features", 1, 4096)
        scale = self.number(e["scale"], "model.fourier.scale") if "scale" in e else 1.0
        if scale <= 0:
            raise SpecError(f"`model.fourier.scale` must be positive, got {scale:g}", e["scale"].loc)
        return m, scale

    def training(self, node: YNode, time=None) -> TrainingSettings:
        names = tuple(f.name for f in fields(TrainingSettings))
        node = self.mapping(node, "training", names)
        values = {}
        for key, value in node.entries.items():
            what = f"training.{key}"
            if key in _TRAINING_CHOICES:
                values[key] = self.choice(value, what, _TRAINING_CHOICES[key])
            elif key == "points":
                values[key] = self.points(value)
            elif key in ("lr", "lr_decay"):
                values[key] = self.number(value, what)
                if values[key] <= 0:
                    raise SpecError(f"`{what}` must be positive, got {values[key]:g}", value.loc)
            elif key in ("damping", "ema", "momentum", "weighting_alpha", "causal"):
                values[key] = self.number(value, what)
                if key == "causal" and values[key] and time is None:
                    raise SpecError("`training.causal` weighs the residual by time slabs: the spec has no `time`", value.loc)
                low, high = {"ema": (0, 1), "momentum": (0, 1), "weighting_alpha": (0, 1)}.get(key, (0, math.inf))
                if not (low <= values[key] < high or (key == "weighting_alpha" and values[key] == 1)):
                    raise SpecError(f"`{what}` must be in [{low:g}, {high:g}), got {values[key]:g}", value.loc)
            elif key == "adaptive_damping":
                values[key] = self.boolean(value, what)
            elif key in ("steps", "resample", "laplacian_samples", "seed", "patience"):
                values[key] = self.integer(value, what, 0, 2**31 - 1)
            elif key == "sketch":  # null: the exact solve
                is_null = isinstance(value, YScalar) and value.is_null
                values[key] = None if is_null else self.integer(value, what, 1, MAX_SKETCH)
            else:  # lr_decay_every, log_every
                values[key] = self.integer(value, what, 1, 2**31 - 1)
        optimizer = values.get("optimizer", TrainingSettings.optimizer)
        if values.get("sketch") is not None and optimizer != "engd":
            raise SpecError(
                f"`training.sketch` is the rank of ENGD's randomized Gauss–Newton solve: it needs "
                f"`optimizer: engd`, not `{optimizer}`", node.entries["sketch"].loc,
            )  # fmt: skip
        return TrainingSettings(**values)

    def points(self, node: YNode) -> Points:
        names = tuple(f.name for f in fields(Points))
        node = self.mapping(node, "training.points", names)
        return Points(**{k: self.integer(v, f"training.points.{k}", 1, MAX_POINTS) for k, v in node.entries.items()})

    def output(self, node: YNode) -> OutputSettings:
        names = tuple(f.name for f in fields(OutputSettings))
        node = self.mapping(node, "output", names)
        values = {}
        for key, value in node.entries.items():
            if key == "dir":
                values[key] = self.string(value, "output.dir")
            elif key == "plots":
                values[key] = self.boolean(value, "output.plots")
            else:
                values[key] = self.integer(value, f"output.{key}", 2 if key == "grid" else 1, 10_000_000)
        return OutputSettings(**values)


MAX_SKETCH = 100_000
"""A bound on `training.sketch`: a sketch of rank min(N, D) or more is the exact matrix (ENGD caps D at 10⁴)."""


def _substitute(expr, values: dict):
    """``expr`` with the constants it mentions replaced by their values: only those it mentions, so
    that 4,000 constants take linear time, not a rebuild of every earlier one per constant."""
    return expr.xreplace({s: values[s.name] for s in expr.free_symbols if s.name in values})


def _mentions_initial(node: YNode, time: str) -> bool:
    """Whether a selector fixes the time variable (to name the condition `ic…`)."""
    return isinstance(node, YScalar) and bool(re.search(rf"\b{time}\s*=", node.text))


def _run_name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", stem).lstrip("._-") or "problem"
    return name[:64]
