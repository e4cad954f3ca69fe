"""A corpus of broken specs, as data, each with the error it must raise.

One table, one test (STYLE #6, #12): every case is `HEAT` (see
`spec_templates.py`) with one thing wrong, or hostile input. Each must raise
`SpecError` — never another exception, never a hang — with a pinned message
fragment (STYLE #10) at the pinned line (and column, where it is meaningful),
within `TIME_LIMIT` seconds, and without executing anything (every case runs
in an empty working directory that must stay free of the sentinel file the
injection payloads try to create).

Cases marked ``xfail`` document bugs found while writing the corpus: the test
says how pdec *should* behave, so a fix turns them into strict-xfail failures
that ask for the mark to be removed. Cases marked ``isolate`` hang inside
SymPy/mpmath or in C (big-integer arithmetic) where no signal can stop them;
they run in child processes with a hard limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from pdec.errors import Loc, SpecError
from pdec.symbolic.problem import build_problem
from pdec.spec.load import load_spec, load_spec_text
from spec_templates import HEAT, HEAT_NO_TIME, edit, equation

ROOT = Path(__file__).resolve().parents[2]
FILE = "spec.yaml"
SENTINEL = "PWNED"
TIME_LIMIT = 1.0
"""Seconds an error may take: a guard against hangs, far above the usual few ms."""
HARD_LIMIT = 10.0
"""Wall-clock seconds an isolated case may run (after its imports) before it is killed.

Generous on purpose: the 1 s budget is asserted on CPU time (`time.process_time`),
which a loaded machine does not inflate; this limit only stops real hangs."""
MAX_MESSAGE = 1000
"""An error message fits in a terminal."""


@dataclass(frozen=True)
class Case:
    id: str
    text: str | bytes
    fragment: str
    line: int
    col: int | None = None
    xfail: str | None = None
    isolate: bool = False


LAUGHS = (
    'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
    "domain: *e\n"
)

CASES = [
    # -- YAML itself ---------------------------------------------------------
    Case("yaml-unclosed-list", edit("unknowns: [u]", "unknowns: [u"), "invalid YAML: expected ',' or ']'", 7, 10),
    Case("yaml-colon-in-value", edit("kappa: 0.5", "kappa: 0.5: 3"), "invalid YAML: mapping values are not allowed here", 8, 13),
    Case("yaml-tab-indent", edit("  x: [0, 1]", "\tx: [0, 1]"), "invalid YAML: found character '\\t' that cannot start any token", 3, 1),
    Case("yaml-bad-indent", edit("  t: [0, 1]", "  t: [0, 1]\n t2: 3"), "invalid YAML: expected <block end>", 6, 2),
    Case("yaml-duplicate-key", edit("  kappa: 0.5", "  kappa: 0.5\n  kappa: 0.6"), "duplicate key `kappa`", 9, 3),
    Case("yaml-merge-key", edit("model:\n", "model:\n  <<: {hidden: [8]}\n"), "YAML merge keys (`<<`) are not supported", 19, 3),
    Case("yaml-billion-laughs", LAUGHS, "YAML aliases (`*name`) are not supported in specs", 2, 8),
    Case("yaml-alias-in-spec", edit("  u: exp", "  u: &sol exp") + "description: *sol\n", "YAML aliases (`*name`) are not supported", 26, 14),
    Case("yaml-python-tag", edit("name: heat1d", "name: !!python/object/apply:os.system ['touch PWNED']"), "`name` must be text (a list given)", 1, 7),
    Case(
        "yaml-control-character",
        equation("u_t = kappa * u_xx\x07"),
        "invalid YAML: unacceptable character #x0007",
        10,
    ),
    # -- empty and binary files ----------------------------------------------
    Case("empty-file", "", "spec is empty: expected a mapping with `domain`, `unknowns` and `equations`", 1, 1),
    Case("only-comments", "# a spec\n# to be written\n", "spec is empty", 1, 1),
    Case("binary-garbage", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00", "spec is not UTF-8 text (byte 0): is this a binary file?", 1, 1),
    Case("invalid-utf8", b"name: caf\xe9\ndomain: {x: [0, 1]}\n", "spec is not UTF-8 text (byte 9)", 1, 1),
    Case("nul-byte", b"name: heat1d\x00\x00\x00\n", "spec contains a NUL byte: is this a binary file?", 1, 1),
    Case("yaml-nested-500-deep", edit("model:\n", "description: " + "[" * 500 + "]" * 500 + "\nmodel:\n"), "lists and mappings nested more than 50 levels deep", 18, 63),
    Case("larger-than-1MB", HEAT + "description: " + "a" * 1_000_001 + "\n", "spec is larger than 1000000 bytes", 1, 1),
    # -- structure and types -------------------------------------------------
    Case("top-level-list", "- domain\n- unknowns\n", "`spec` must be a mapping (a list given)", 1, 1),
    Case("missing-equations", edit("equations:\n  - u_t = kappa * u_xx\n", ""), "`spec` needs `equations`", 1, 1),
    Case("missing-domain", edit("domain:\n  x: [0, 1]\n", ""), "`spec` needs `domain`", 1, 1),
    Case("domain-is-list", edit("domain:\n  x: [0, 1]", "domain:\n  - x\n  - [0, 1]"), "`domain` must map each spatial variable to an interval", 3, 3),
    Case("model-is-list", edit("model:\n  hidden: [32, 32]\n  activation: tanh", "model: [32, 32]"), "`model` must be a mapping (a list given)", 18, 8),
    Case("impose-is-list", edit("impose: u = 0", "impose: [u, 0]"), "`impose` must be text (a list given)", 13, 13),
    Case("steps-is-text", edit("steps: 2000", "steps: many"), "`training.steps` must be a whole number (`many` given)", 23, 10),
    Case("steps-is-fraction", edit("steps: 2000", "steps: 2000.5"), "`training.steps` must be a whole number (`2000.5` given)", 23, 10),
    Case("hidden-is-text", edit("hidden: [32, 32]", "hidden: 32x32"), "`model.hidden` must be a whole number (`32x32` given)", 19, 11),
    Case("lr-is-text", edit("lr: 0.001", "lr: fast"), "undefined name `fast`", 24, 7),
    Case("equations-empty", edit("equations:\n  - u_t = kappa * u_xx", "equations: []"), "`equations` is empty", 9, 12),
    Case("unknowns-empty", edit("unknowns: [u]", "unknowns: []"), "`unknowns` is empty: name at least one", 6, 11),
    Case("equation-without-text", edit("- u_t = kappa * u_xx", "- name: a\n    weight: 1"), "`equations[]` needs `equation`", 10, 5),
    Case("impose-without-on", edit("  - on: t = 0\n    impose", "  - impose"), "`impose` needs `on:` saying where", 14, 5),
    # -- unknown keys and invalid choices, with suggestions ------------------
    Case("typo-equatoins", edit("equations:", "equatoins:"), "unknown key `equatoins` in the spec. Did you mean `equations`?", 9, 1),
    Case("typo-optimzer", edit("optimizer: kfac", "optimzer: kfac"), "unknown key `optimzer` in `training`. Did you mean `optimizer`?", 22, 3),
    Case("typo-points-bondary", edit("boundary: 500", "bondary: 500"), "unknown key `bondary` in `training.points`. Did you mean `boundary`?", 25, 28),
    Case(
        "optimizer-kfca",
        edit("optimizer: kfac", "optimizer: kfca"),
        "invalid `training.optimizer` `kfca`. Supported: auto, adam, lbfgs, adam+lbfgs, bfgs, ssbroyden, engd, kfac, kfac*, kfac2l. Did you mean `kfac`?",
        22,
        14,
    ),
    Case("activation-tahn", edit("activation: tanh", "activation: tahn"), "invalid `model.activation` `tahn`. Supported: tanh, sin,", 20, 15),
    Case("activation-no-z", edit("activation: tanh", "activation: 2"), "`model.activation` must depend on `z`", 20, 15),
    Case("shape-sphere", edit("domain:\n  x: [0, 1]", "domain: {shape: sphere}"), "invalid `domain.shape` `sphere`. Supported: box, ball, cube", 2, 17),
    # -- intervals and numbers -----------------------------------------------
    Case("interval-reversed", edit("x: [0, 1]", "x: [1, 0]"), "`domain.x` is empty or reversed: [1, 0] needs lo < hi", 3, 6),
    Case("interval-empty", edit("t: [0, 1]", "t: [0.5, 0.5]"), "`time.t` is empty or reversed: [0.5, 0.5] needs lo < hi", 5, 6),
    Case("interval-three-ends", edit("x: [0, 1]", "x: [0, 1, 2]"), "`domain.x` must be an interval `[lo, hi]`", 3, 6),
    Case("steps-negative", edit("steps: 2000", "steps: -5"), "`training.steps` must be between 0 and 2147483647, got -5", 23, 10),
    Case("lr-zero", edit("lr: 0.001", "lr: 0"), "`training.lr` must be positive, got 0", 24, 7),
    Case("lr-overflows", edit("lr: 0.001", "lr: 1e400"), "`training.lr` must be finite, got 1e400", 24, 7),
    Case("hidden-zero-width", edit("hidden: [32, 32]", "hidden: [32, 0]"), "`model.hidden` must be between 1 and 100000, got 0", 19, 16),
    Case("weight-negative", edit("- u_t = kappa * u_xx", "- equation: u_t = kappa * u_xx\n    weight: -1"), "`weight` must be non-negative, got -1", 11, 13),
    Case("digit-not-ascii", equation("u_t = kappa * u_xx + 1\u0660"), "unexpected character '\u0660' in expression: numbers are written with the digits 0-9", 10, 27),
    Case("digit-not-ascii-in-number", edit("x: [0, 1]", "x: [0, 1\u0660]"), "numbers are written with the digits 0-9", 3, 11),
    Case("digit-not-ascii-in-steps", edit("steps: 2000", "steps: \u0662\u0660"), "`training.steps` must be a whole number", 23, 10),
    Case("constant-sqrt-negative", edit("kappa: 0.5", "kappa: sqrt(-1)"), "`sqrt(-1)` is not real: the language has real numbers only", 8, 10),
    Case(
        "constant-log-zero",
        edit("kappa: 0.5", "kappa: log(0)"),
        "`log(0)` is not finite",
        8,
        10,
    ),
    Case("impose-infinite-on-boundary", edit("impose: u = 0", "impose: u = log(x)"), "the imposed value is not finite at (x=0, t=", 13, 13),
    Case("impose-normal-derivative-infinite", edit("impose: u = 0", "impose: dn(u) = 1/x"), "the imposed value is not finite at (x=0", 13, 13),
    Case("impose-overflows", edit("impose: u = sin(pi*x)", "impose: u = exp(1000)"), "the imposed value is not finite", 15, 13),
    # -- names ---------------------------------------------------------------
    Case("undefined-kapa", equation("u_t = kapa * u_xx"), "undefined name `kapa`. Did you mean `kappa`?", 10, 11),
    Case("unknown-function-sinn", equation("u_t = sinn(x) + u_xx"), "unknown function `sinn`. Did you mean `sin`?", 10, 11),
    Case("function-without-call", equation("u_t = sin + u_xx"), "`sin` is a function: call it as `sin(...)`", 10, 11),
    Case("unknown-called", equation("u_t = u(x)"), "`u` is an unknown, not a function: write `u`", 10, 11),
    Case("sin-as-unknown", edit("unknowns: [u]", "unknowns: [sin]"), "`sin` is a built-in name and cannot be used as", 6, 12),
    Case("unknown-given-twice", edit("unknowns: [u]", "unknowns: [u, u]"), "unknown `u` is given twice", 6, 11),
    Case(
        "constant-named-like-variable",
        edit("  kappa: 0.5", "  x: 0.5"),
        "`x` is both a variable and a constant: names must be unique",
        8,
        3,
    ),
    Case("unknown-in-no-equation", edit("unknowns: [u]", "unknowns: [u, v]"), "unknown `v` appears in no equation", 6, 15),
    Case(
        "parameter-in-exact",
        edit("  kappa: 0.5\n", "  kappa: 0.5\nparameters: {nu: 0.1}\n").replace("exp(-kappa*", "exp(-nu*"),
        "parameter `nu`",
        18,
        11,
    ),
    Case("i-is-not-a-typo-of-pi", equation("u_t = kappa * u_xx * exp(i*x)"), "undefined name `i`: the language has real numbers only (no imaginary unit)", 10, 30),
    Case("domain-short-form-stray-key", edit("  x: [0, 1]", "  x: [0, 1]\n  radius: [0, 1]"), "`radius` belongs to `shape: ball`; without `shape:` every key", 4, 3),
    # -- derivatives and operators -------------------------------------------
    Case("u_yy-in-1d", equation("u_t = kappa * u_yy"), "`u_yy`: `yy` is not a list of variables. Variables are x, t.", 10, 19),
    Case("u_t-without-time", HEAT_NO_TIME, "`u_t`: `t` is not a list of variables. This problem has no time variable: add a `time:` section.", 8, 5),
    Case("dn-in-equation", equation("u_t = kappa * dn(u)"), "`dn` (the outward normal derivative) is only allowed in conditions, not in an equation", 10, 19),
    Case("dn-at-initial-time", edit("impose: u = sin(pi*x)", "impose: dn(u) = 0"), "`dn` is the normal derivative on the spatial boundary, not at the initial time", 15, 13),
    Case("derivative-order-5", equation("u_t = u_xxxxx"), "derivatives above order 4 are not supported", 10, 11),
    Case("d-count-5", equation("u_t = d(u, x, 5)"), "in `d(...)`, a count follows a variable and is 1..4", 10, 11),
    Case("laplacian-cubed", equation("u_t = laplacian(laplacian(laplacian(u)))"), "derivatives above order 4 are not supported", 10, 11),
    Case("equation-without-unknown", equation("x = 1"), "equation `pde` involves no unknown (u)", 10, 5),
    Case("imaginary-coefficient", equation("u_t = sqrt(-1) * u_xx"), "real", 10),
    Case("d-count-not-whole", equation("u_t = d(u, x, 0.5)"), "in `d(...)`, a count is a whole number 1..4 (derivatives of order 1/2", 10, 11),
    # -- equation syntax -----------------------------------------------------
    Case("two-equals", equation("u_t = kappa * u_xx = 0"), "unexpected `=`: an equation has exactly one `=`", 10, 24),
    Case("no-equals", equation("u_t - kappa * u_xx"), "expression ends too early: expected", 10, 23),
    Case("trailing-operator", equation("u_t = kappa * u_xx +"), "expression ends too early: expected `(`, `+`, `-`, a name or a number", 10, 25),
    Case("unclosed-call", edit("sin(pi*x)\nexact", "sin(pi*x\nexact"), "expression ends too early: expected `)`", 15, 25),
    Case("division-by-zero", equation("u_t = kappa * u_xx / 0"), "division by zero", 10),
    Case(
        "derivative-gives-nan",
        equation("u_t = d(0^x, x)"),
        "not finite",
        10,
    ),
    Case(
        "multiline-plain-scalar",
        edit("- u_t = kappa * u_xx", "- u_t =\n    kappa * kapa"),
        "undefined name `kapa`",
        11,
        13,
        xfail="a name on the 2nd line of a multi-line plain scalar is located on the 1st line (10:19, past its end)",
    ),
    Case(
        "literal-block-scalar",
        edit("- u_t = kappa * u_xx", "- |\n    u_t = kappa\n      * kapa"),
        "undefined name `kapa`",
        12,
        9,
        xfail="positions inside a `|` block scalar are counted from the `|` line and the text column (11:3)",
    ),
    # -- selectors -----------------------------------------------------------
    Case("selector-inside-domain", edit("on: x = 0 or x = 1", "on: x = 0.5"), "is not on the boundary: x ranges over [0, 1]", 12),
    Case("selector-region", edit("on: x = 0 or x = 1", "on: x < 0.5"), "this selector describes a region, not a part of the boundary", 12),
    Case("selector-final-time", edit("on: t = 0", "on: t = 1"), "conditions hold at the initial time t = 0; `t = 1` is not supported", 14),
    Case("selector-picks-nothing", edit("on: x = 0 or x = 1", "on: x = 0 and x = 1"), "this selector picks no part of the boundary", 12),
    Case("selector-mixes-initial", edit("on: x = 0 or x = 1", "on: x = 0 or t = 0"), "a selector cannot mix the initial slice and the boundary", 12, 9),
    Case("selector-boundary-at-time", edit("on: x = 0 or x = 1", "on: boundary and t = 0"), "`boundary` is the spatial boundary; do not fix the time there", 12, 9),
    Case("selector-with-if", edit("on: x = 0 or x = 1", "on: if x = 0"), "a selector has no `if`: it says where the condition holds", 12, 9),
    Case("impose-with-if", edit("impose: u = 0", "impose: u = 0 if x = 0"), "expressions have no `if`", 13, 19),
    Case("selector-with-unknown", edit("on: x = 0 or x = 1", "on: u = 0"), "the unknown `u` cannot appear in a selector", 12, 9),
    Case("selector-empty", edit("on: x = 0 or x = 1", "on: ''"), "`on` is empty", 12, 10),
    Case(
        "selector-imaginary",
        edit("on: x = 0 or x = 1", "on: x = sqrt(-1)"),
        "real",
        12,
    ),
    Case(
        "selector-parameter",
        edit("  kappa: 0.5\n", "  kappa: 0.5\nparameters: {nu: 0.1}\n").replace("on: x = 0 or x = 1", "on: x = nu"),
        "parameter `nu`",
        13,
    ),
    # -- code injection: nothing may run ---------------------------------------
    Case("inject-import", equation("u_t = __import__('os').system('touch PWNED')"), "unexpected character '_' in expression", 10, 11),
    Case("inject-exec", equation("u_t = exec(\"open('PWNED', 'w')\")"), "unexpected character '\"' in expression", 10, 16),
    Case("inject-eval-call", equation("u_t = eval(u_xx)"), "unknown function `eval`", 10, 11),
    Case("inject-lambda", edit("- u_t = kappa * u_xx", "- \"u_t = (lambda: open('PWNED', 'w'))()\""), "unexpected character ':' in expression", 10, 19),
    Case("inject-backticks", equation("u_t = `touch PWNED`"), "unexpected character '`' in expression", 10, 11),
    Case("inject-attribute", equation("u_t = u.__class__"), "unexpected character '.' in expression", 10, 12),
    Case("inject-constant", edit("kappa: 0.5", "kappa: __import__('os').system('touch PWNED')"), "unexpected character '_' in expression", 8, 10),
    Case("inject-unknown-dunder", edit("unknowns: [u]", "unknowns: [__class__]"), "invalid unknown name `__class__`: use letters and digits", 6, 12),
    Case("inject-unknown-dotted", edit("unknowns: [u]", "unknowns: [os.system]"), "invalid unknown name `os.system`", 6, 12),
    Case("inject-constant-name", edit("  kappa: 0.5", "  __import__: 0.5"), "invalid constant name `__import__`", 8, 3),
    # -- resource exhaustion -------------------------------------------------
    Case("parens-5000-deep", equation("u_t = " + "(" * 5000 + "u_xx" + ")" * 5000), "expression is longer than 10000 characters", 10, 5),
    Case("unary-minus-5000", equation("u_t = " + "-" * 5000 + "u_xx"), "expression is nested more than 200 levels deep", 10, 5),
    Case("calls-300-deep", equation("u_t = u_xx + " + "sin(" * 300 + "x" + ")" * 300), "expression is nested more than 200 levels deep", 10, 5),
    Case("power-tower", equation("u_t = u_xx + 9^9^9^9"), "power too large for float64 (beyond 1e300)", 10, 21),
    Case("number-1e999999", equation("u_t = u_xx + 1e999999"), "number `1e999999` is too large (beyond 1e300) for float64", 10, 18),
    Case("number-1e-999", equation("u_t = u_xx + 1e-999"), "number `1e-999` is too small (below 1e-300) for float64", 10, 18),
    Case("number-5000-digits", equation("u_t = u_xx + " + "1" * 5000), "number `11111111111111111111…11111111 (5000 characters)` is too large", 10, 18),
    Case("steps-5000-digits", edit("steps: 2000", "steps: " + "1" * 5000), "`training.steps` must be between 0 and 2147483647, got 1111", 23, 10),
    Case("bound-5000-digits", edit("x: [0, 1]", "x: [0, 1" + "0" * 5000 + "]"), "`domain.x` must be finite, got 1000", 3, 10),
    Case("exponent-1001", equation("u_t = u_xx + x^1001"), "exponent 1001 is too large (at most 1000)", 10, 19),
    Case("sum-20000-terms-written", equation("u_t = u_xx + " + "+".join(["x"] * 20_000)), "expression is longer than 10000 characters", 10, 5),
    Case("sum-20000-terms", equation("u_t = u_xx + sum(i, 1, 20000, x)"), "`sum` over 20000 terms; at most 1000", 10, 18),
    Case("expression-100KB", equation("u_t = u_xx + " + "x*" * 50_000 + "x"), "expression is longer than 10000 characters", 10, 5),
    Case(
        "sum-index-exponent",
        equation("u_t = u_xx + sum(i, 1, 2, x^(1000*i))"),
        "exponent 2000 is too large",
        10,
    ),
    Case(
        "sum-index-magnitude",
        equation("u_t = u_xx + sum(i, 1, 1, 10^(400*i))"),
        "too large for float64",
        10,
    ),
    Case(
        "sum-index-power-tower",
        equation("u_t = u_xx + sum(i, 1, 1, 9^9^(9*i))"),
        "too large",
        10,
        isolate=True,
    ),
    Case(
        "nested-sums",
        equation("u_t = u_xx + sum(i, 1, 300, sum(j, 1, 300, sin(i*j)))"),
        "terms",
        10,
        isolate=True,
    ),
    Case(
        "max-sum-then-typo",
        equation("u_t = u_xx + sum(i, 1, 1000, sin(i*x)) + kapa"),
        "undefined name `kapa`",
        10,
        isolate=True,
    ),
    Case(
        "constant-sin-of-tower",
        edit("kappa: 0.5", "kappa: sin(e^e^e^e)"),
        "`constants.kappa`",
        8,
        isolate=True,
    ),
    Case(
        "cube-10000-typo",
        edit("domain:\n  x: [0, 1]", "domain: {shape: cube, dim: 10000}"),
        "`u_xx`: `xx` is not a list of variables",
        9,
        19,
    ),
]


@pytest.fixture(scope="module", autouse=True)
def warm_up() -> None:
    """Build the parser and SymPy's caches once, so that `TIME_LIMIT` measures the case alone."""
    build_problem(load_spec_text(HEAT, FILE))


def _marks(case: Case):
    return [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []


@dataclass(frozen=True)
class Outcome:
    """What loading (and building) a case did: ``error`` or ``crash`` or neither."""

    error: SpecError | None
    crash: str | None
    elapsed: float


def _run_here(case: Case, tmp_path: Path) -> Outcome:
    if isinstance(case.text, bytes):
        (tmp_path / FILE).write_bytes(case.text)
    start = time.process_time()
    try:
        if isinstance(case.text, bytes):
            spec = load_spec(FILE)
        else:
            spec = load_spec_text(case.text, FILE)
        build_problem(spec)
    except SpecError as exc:
        return Outcome(exc, None, time.process_time() - start)
    except Exception as exc:  # noqa: BLE001 - the test reports what it was
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:500], time.process_time() - start)
    return Outcome(None, None, time.process_time() - start)


CHILD = r"""
import json, sys, time
from pdec.errors import SpecError
from pdec.symbolic.problem import build_problem
from pdec.spec.load import load_spec_text
text = open(sys.argv[1], encoding="utf-8").read()
print("ready", flush=True)
start = time.process_time()
try:
    build_problem(load_spec_text(text, "spec.yaml"))
    out = {}
except SpecError as exc:
    loc = exc.loc
    out = {"message": exc.message, "loc": [loc.file, loc.line, loc.col, loc.source_line] if loc else None}
except Exception as exc:
    out = {"crash": f"{type(exc).__name__}: {exc}"[:500]}
out["elapsed"] = time.process_time() - start
print(json.dumps(out), flush=True)
"""


@pytest.fixture(scope="module")
def isolated(tmp_path_factory) -> dict[str, Outcome]:
    """Run every isolated case at once, each in a child killed after `HARD_LIMIT` s."""
    folder = tmp_path_factory.mktemp("isolated")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    children: dict[str, subprocess.Popen] = {}
    results: dict[str, Outcome] = {}
    try:
        for case in CASES:
            if case.isolate:
                path = folder / f"{case.id}.yaml"
                path.write_text(case.text, encoding="utf-8")
                children[case.id] = subprocess.Popen(
                    [sys.executable, "-c", CHILD, str(path)],
                    cwd=folder,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
        readiness = {name: child.stdout.readline().strip() for name, child in children.items()}  # through the imports
        deadline = time.monotonic() + HARD_LIMIT  # by then every child has run HARD_LIMIT s past its imports
        for name, child in children.items():
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.01))
                # Read through the same text wrapper as `readline` above: it may
                # already hold the result line (communicate() would miss it).
                out, err = child.stdout.read(), child.stderr.read()
            except subprocess.TimeoutExpired:
                results[name] = Outcome(None, f"still running after {HARD_LIMIT} s: killed", float("inf"))
                continue
            if readiness[name] != "ready" or not out.strip():
                detail = (err or "").strip().splitlines()[-3:]
                results[name] = Outcome(None, f"child failed (exit {child.returncode}): {detail}", float("inf"))
                continue
            data = json.loads(out)
            error = None
            if "message" in data:
                error = SpecError(data["message"], Loc(*data["loc"]) if data["loc"] else None)
            results[name] = Outcome(error, data.get("crash"), data["elapsed"])
    finally:
        for child in children.values():  # only the children started here
            if child.poll() is None:
                child.kill()
            child.wait()
            child.stdout.close()
            child.stderr.close()
    assert not list(folder.glob(SENTINEL))
    return results


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=_marks(c)) for c in CASES])
def test_broken_spec(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    monkeypatch.chdir(tmp_path)
    if case.isolate:
        outcome = request.getfixturevalue("isolated")[case.id]
    else:
        outcome = _run_here(case, tmp_path)

    assert not (tmp_path / SENTINEL).exists(), "an expression was executed"
    assert outcome.crash is None, f"crashed instead of SpecError: {outcome.crash}"
    assert outcome.error is not None, "the broken spec was accepted"
    error = outcome.error
    assert case.fragment in error.message
    assert len(error.message) <= MAX_MESSAGE, f"message of {len(error.message)} characters"
    assert error.loc is not None
    assert error.loc.file == FILE
    assert (error.loc.line, error.loc.col if case.col else None) == (case.line, case.col)
    assert outcome.elapsed < TIME_LIMIT, f"took {outcome.elapsed:.2f} s"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES if not c.xfail and not c.isolate])
def test_error_format_points_at_the_source_line(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``FILE:LINE:COL: error: message``, then the line as written and a caret under COL."""
    monkeypatch.chdir(tmp_path)
    error = _run_here(case, tmp_path).error
    loc = error.loc
    lines = error.format().split("\n")
    assert lines[0] == f"{FILE}:{loc.line}:{loc.col}: error: {error.message.splitlines()[0]}"
    if loc.source_line:
        text = case.text.decode("utf-8", "replace") if isinstance(case.text, bytes) else case.text
        assert loc.source_line.rstrip("\r\n") == text.splitlines()[loc.line - 1]
        source, caret = lines[-2], lines[-1]
        assert source == "    " + loc.source_line.rstrip("\n").expandtabs(1)
        assert caret == " " * (4 + loc.col - 1) + "^"


def test_base_spec_is_valid() -> None:
    """Every case is one edit away from a spec that compiles cleanly."""
    problem = build_problem(load_spec_text(HEAT, FILE))
    assert problem.warnings == ()
    assert [t.name for t in problem.terms] == ["pde", "bc1", "ic1"]


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 30


def test_endless_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    """`/dev/zero` (or any file over the limit) is refused after reading 1 MB, not after filling the memory."""
    start = time.monotonic()
    with pytest.raises(SpecError, match="spec is larger than 1000000 bytes"):
        load_spec("/dev/zero")
    assert time.monotonic() - start < 5


def test_many_constants_take_linear_time() -> None:
    """Each constant substitutes only the constants it names (4,000 took minutes when each rebuilt all)."""
    chain = "".join(f"  c{i}: c{i - 1} + 1\n" for i in range(1, 4000))
    start = time.process_time()
    spec = load_spec_text(edit("  kappa: 0.5\n", "  kappa: 0.5\n  c0: 1\n" + chain), FILE)
    assert float(spec.constants[-1].expr) == 4000
    assert time.process_time() - start < 15


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read spec: No such file or directory") as info:
        load_spec(tmp_path / "nowhere.yaml")
    assert info.value.loc.line == 1


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(edit("  u: exp(-kappa*pi^2*t) * sin(pi*x)", "  u: log(x - 5)"), id="exact-undefined-everywhere"),
        pytest.param(equation("u_t = kappa * u_xx + sqrt(x - 2)"), id="residual-undefined-everywhere"),
    ],
)
def test_exact_check_undefined_everywhere_is_reported(text: str) -> None:
    """An `exact` (or a residual) that is NaN at every check point: an error or a warning, not a crash."""
    try:
        problem = build_problem(load_spec_text(text, FILE))
    except SpecError as exc:
        assert exc.loc is not None
        return
    assert any("exact" in w.message for w in problem.warnings)
