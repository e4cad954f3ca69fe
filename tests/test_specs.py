"""Every example spec compiles, plans, and emits valid Python."""

from __future__ import annotations

import ast

from pdec.api import compile_spec


def test_spec_compiles_without_warnings(spec_path):
    compiled = compile_spec(spec_path)
    assert compiled.problem.warnings == ()
    assert compiled.graph.terms
    # every unknown is needed by some equation
    needed = {n.unknown for t in compiled.graph.terms if t.kind == "equation" for n in t.needs}
    assert needed == set(compiled.spec.unknowns)


def test_spec_emits_valid_python(spec_path):
    source = compile_spec(spec_path).source
    tree = ast.parse(source)
    imports = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])
    }
    assert imports <= {"torch", "pdec"}
    assert not any(isinstance(n, ast.Call) and getattr(n.func, "id", None) in {"eval", "exec"} for n in ast.walk(tree))
