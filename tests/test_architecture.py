"""The shape of the package: one-way stages, no import cycles, small modules, one name table each.

Stages, earliest first: spec → symbolic → plan → codegen → runtime (→ report,
api, cli). `contract`, `errors`, `geometry`, `lang` (the expression language)
and the torch-free Taylor vocabulary (`taylor.operators`, `taylor.streams`)
are shared by several stages; none of them imports a stage.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pdec.contract as contract

PACKAGE = Path(contract.__file__).resolve().parent
MAX_LINES = 450

# module prefix → prefixes it must never import
FORBIDDEN = {
    "pdec.contract": ("pdec.",),
    "pdec.errors": ("pdec.",),
    "pdec.lang": ("pdec.spec", "pdec.symbolic", "pdec.plan", "pdec.codegen", "pdec.runtime", "pdec.api", "pdec.cli"),
    "pdec.spec": ("pdec.symbolic", "pdec.plan", "pdec.codegen", "pdec.runtime", "pdec.api", "pdec.cli", "pdec.taylor"),
    "pdec.symbolic": ("pdec.plan", "pdec.codegen", "pdec.runtime", "pdec.api", "pdec.cli"),
    "pdec.plan": ("pdec.codegen", "pdec.runtime", "pdec.api", "pdec.cli", "pdec.taylor.mlp"),
    "pdec.codegen": ("pdec.runtime", "pdec.api", "pdec.cli", "pdec.report"),
    "pdec.taylor": ("pdec.spec", "pdec.lang", "pdec.symbolic", "pdec.plan", "pdec.codegen", "pdec.runtime", "pdec.api"),
    "pdec.runtime": ("pdec.spec", "pdec.lang", "pdec.symbolic", "pdec.plan", "pdec.codegen", "pdec.api", "pdec.report", "pdec.cli"),
    "pdec.report": ("pdec.api", "pdec.cli"),
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """The pdec modules ``name`` imports (at any depth of the file, lazily too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("pdec")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("pdec"):
                found.add(module)
                found |= {f"{module}.{a.name}" for a in node.names}
    return found


MODULES = _modules()
GRAPH = {name: {m for m in _imports(name, path) if m in MODULES and m != name} for name, path in MODULES.items()}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_from_a_later_stage(name):
    for prefix, banned in FORBIDDEN.items():
        if name == prefix or name.startswith(prefix + "."):
            bad = sorted(m for m in GRAPH[name] if any(m == b.rstrip(".") or m.startswith(b) for b in banned))
            assert not bad, f"{name} imports {bad}"


def test_no_import_cycle():
    # packages import their own submodules lazily (pdec.taylor's __getattr__); cycles through
    # a package's __init__ are not real, so only module-to-module edges count
    graph = {n: {m for m in deps if not MODULES[m].name == "__init__.py"} for n, deps in GRAPH.items()}
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for dep in graph[node]:
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :] + [dep]
                raise AssertionError(" -> ".join(cycle))
            if dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_are_small(name):
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines"


def test_docstrings_cite_papers_not_absent_files():
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        assert "REFERENCES §" not in text and "DESIGN.md" not in text, name


def test_name_tables_equal_their_registries():
    from pdec.runtime.weighting import WEIGHTINGS
    from pdec.taylor.activations import ACTIVATIONS

    assert set(contract.ACTIVATION_NAMES) == set(ACTIVATIONS)
    assert set(contract.WEIGHTING_NAMES) == set(WEIGHTINGS)


def test_settings_defaults_live_in_the_contract_only():
    from pdec.spec import schema

    assert schema.TrainingSettings is contract.TrainingSettings
    assert schema.OutputSettings is contract.OutputSettings
