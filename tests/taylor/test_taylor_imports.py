"""pdec.taylor is inlined into standalone scripts: it may import only torch,
numpy and the standard library, and its files must concatenate cleanly."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TAYLOR = ROOT / "pdec" / "taylor"
FILES = ["operators.py", "activations.py", "rules.py", "streams.py", "record.py", "compiled.py", "fused.py", "mlp.py"]
ALLOWED = {"torch", "numpy", *sys.stdlib_module_names}


def test_importing_pdec_taylor_pulls_in_no_front_end_library():
    # The parent package's __init__ belongs to the front end, so it is stubbed:
    # this checks what the runtime itself imports.
    code = (
        "import sys, types\n"
        f"pkg = types.ModuleType('pdec'); pkg.__path__ = [{str(ROOT / 'pdec')!r}]\n"
        "sys.modules['pdec'] = pkg\n"
        "import pdec.taylor\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sympy', 'lark', 'yaml'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("name", FILES)
def test_imports_are_torch_numpy_stdlib_or_single_line_siblings(name):
    tree = ast.parse((TAYLOR / name).read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert all(a.name.split(".")[0] in ALLOWED for a in node.names), ast.unparse(node)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            assert node.module.split(".")[0] in ALLOWED | {"__future__"}, ast.unparse(node)
        elif isinstance(node, ast.ImportFrom):
            assert id(node) in top and node.lineno == node.end_lineno and node.level == 1, ast.unparse(node)


def test_files_concatenate_without_clashes_and_run():
    parts, seen = ["from __future__ import annotations"], {}
    for name in FILES:
        tree = ast.parse((TAYLOR / name).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) or isinstance(node, ast.Assign):
                names = [node.name] if hasattr(node, "name") else [t.id for t in node.targets if isinstance(t, ast.Name)]
                for n in names:
                    assert n not in seen, f"`{n}` defined in both {seen.get(n)} and {name}"
                    seen[n] = name
        keep = [
            node for node in tree.body
            if not (isinstance(node, ast.ImportFrom) and (node.level > 0 or node.module == "__future__"))
        ]
        parts.append(ast.unparse(ast.Module(body=keep, type_ignores=[])))
    code = "\n\n".join(parts) + (
        "\n\nimport sys, torch\n"
        "net = TaylorMLP(2, [8], 1)\n"
        "op = Laplacian((0, 1))\n"
        "x = torch.rand(4, 2, dtype=torch.float64)\n"
        "out = net.taylor(x, plan_streams([op], 2))[op]\n"
        "assert out.shape == (4, 1)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sympy', 'lark', 'yaml', 'pdec'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
