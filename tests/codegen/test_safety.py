"""Hostile names produce valid, harmless generated code."""

from __future__ import annotations

import ast
import keyword

import pytest

from pdec.api import compile_spec
from pdec.spec.load import load_spec_text

HOSTILE = """
domain: {x: [0, 1], y: [0, 1]}
unknowns: [lambda, class]
constants: {print: 2, exec_: 3}
parameters: {import_: 0.3}
equations:
  - laplacian(lambda) + lambda*lambda_x + sin(class)^2 = print*import_*exec_
  - class_xy + d(class, x, 3) = lambda
conditions:
  - {on: x = 0 or x = 1, impose: dn(lambda) + lambda = 0}
  - {on: y = 0, impose: class = sin(pi*x)}
  - {on: y = 1, impose: class = 0}
model: {activation: "sin(z)*z + log(1 + exp(z))"}
"""


@pytest.fixture
def hostile_source() -> str:
    return compile_spec(load_spec_text(HOSTILE, "hostile.yaml")).source


def test_hostile_names_give_valid_code(hostile_source):
    tree = ast.parse(hostile_source)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not any(keyword.iskeyword(n) for n in names)
    assert "lambda_" in names and "class_" in names
    # constants are folded to numbers, never bound under the user's name
    assert "print" not in names and "exec_" not in names
    assert not any(isinstance(n, ast.Call) and getattr(n.func, "id", None) in {"eval", "exec", "print"} for n in ast.walk(tree))


def test_user_text_never_reaches_source():
    text = HOSTILE.replace("- class_xy", "- class_xy  +  0*x # '''\\n import os")
    # The comment-like text is not valid in the language: the front end rejects it...
    with pytest.raises(Exception):
        compile_spec(load_spec_text(text, "h.yaml"))
    # ...and what is accepted appears only as re-printed SymPy, not as written.
    spaced = HOSTILE.replace("class_xy + d(class, x, 3)", "class_xy   +   d( class , x , 3 )")
    source = compile_spec(load_spec_text(spaced, "h.yaml")).source
    assert "d( class" not in source and "   +   " not in source
