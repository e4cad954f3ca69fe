"""Using a trained run: `pdec.load`, `pdec predict` and `pdec export` (issue 13, "Use a trained run")."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import pdec
from pdec.cli import main
from pdec.errors import PdecError

ROOT = Path(__file__).resolve().parents[2]
HEAT = ROOT / "specs" / "heat.yaml"
SMALL = ["model.hidden=[8, 8]", "training.points={interior: 64, boundary: 16, initial: 16}", "training.log_every=2",
         "training.optimizer=adam", "output.plots=false", "output.grid=9", "output.checkpoint_every=2",
         "constants.kappa=0.25"]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("use") / "run"
    pdec.solve(HEAT, steps=6, out=out, settings=SMALL)
    return out


def _points(n: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 2))


def _predict_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(["predict", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _read_csv(text: str) -> tuple[list[str], np.ndarray]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], np.array([[float(c) for c in row] for row in rows[1:]])


# -- pdec.load -----------------------------------------------------------------------


def test_load_gives_the_trained_network(run):
    trained = pdec.load(run)
    solution = np.load(run / "solution.npz")
    u = trained.predict(solution["X"])["u"]
    assert isinstance(u, torch.Tensor) and u.shape == (len(solution["X"]),)
    np.testing.assert_array_equal(u.numpy(), solution["prediction"][:, 0])
    assert trained.step == 6 and trained.checkpoint.name == "checkpoint-000000006.pt"
    assert trained.summary["steps"] == 6 and trained.spec.name == "heat1d"
    assert trained.variables == ["x", "t"] and trained.unknowns == ["u"]


def test_derivatives_and_residuals_use_the_recorded_overrides(run):
    trained = pdec.load(run)
    X = _points()
    d = trained.derivatives(X)
    assert {"u", "d(u,t)", "d(u,x,x)"} <= set(d)
    residual = trained.residuals(X)["pde"]
    # the run was trained with `constants.kappa=0.25` (the spec says 0.5): the override is recorded
    torch.testing.assert_close(residual, d["d(u,t)"] - 0.25 * d["d(u,x,x)"], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(d["u"], trained.predict(X)["u"], rtol=1e-12, atol=1e-12)


def test_load_picks_a_checkpoint(run):
    assert pdec.load(run, checkpoint=4).step == 4
    best = pdec.load(run, checkpoint="best")
    logged = {json.loads(line)["step"]: json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()}
    kept = [int(p.name[11:20]) for p in run.glob("checkpoint-*.pt")]
    assert best.step == min(kept, key=lambda s: logged[s])
    with pytest.raises(PdecError, match="no checkpoint of step 3"):
        pdec.load(run, checkpoint=3)
    with pytest.raises(PdecError, match="latest"):
        pdec.load(run, checkpoint="newest")


def test_load_rejects_what_is_not_a_run(tmp_path):
    with pytest.raises(PdecError, match="not a run directory"):
        pdec.load(tmp_path / "nothing")
    (tmp_path / "spec.yaml").write_text(HEAT.read_text())
    with pytest.raises(PdecError, match="resolved.json"):
        pdec.load(tmp_path)


def test_load_does_not_need_the_data_files(tmp_path):
    spec_dir = tmp_path / "spec"
    (spec_dir / "data").mkdir(parents=True)
    (spec_dir / "inverse.yaml").write_text((ROOT / "specs" / "heat_inverse.yaml").read_text())
    data = spec_dir / "data" / "heat_inverse.csv"
    data.write_bytes((ROOT / "specs" / "data" / "heat_inverse.csv").read_bytes())
    out = tmp_path / "run"
    result = pdec.solve(spec_dir / "inverse.yaml", steps=2, out=out, settings=SMALL[:-1])
    data.unlink()
    trained = pdec.load(out)
    assert trained.problem.parameters.keys() == result.problem.parameters.keys()
    for k, v in result.problem.parameters.items():
        assert torch.equal(trained.problem.parameters[k], v.detach())
    np.testing.assert_array_equal(
        trained.predict(_points())["u"].numpy(), result.problem.model(torch.as_tensor(_points())).detach()[:, 0].numpy()
    )


# -- pdec predict --------------------------------------------------------------------


def test_predict_csv_to_stdout_and_file(run, tmp_path, capsys):
    X = _points()
    points = tmp_path / "points.csv"
    points.write_text("t,x\n" + "".join(f"{t!r},{x!r}\n" for x, t in X.tolist()))  # any column order
    code, out, err = _predict_cli(capsys, run, "--points", points)
    assert code == 0, err
    columns, table = _read_csv(out)
    assert columns == ["x", "t", "u"]
    np.testing.assert_array_equal(table[:, :2], X)
    np.testing.assert_array_equal(table[:, 2], pdec.load(run).predict(X)["u"].numpy())
    target = tmp_path / "out.csv"
    code, out, err = _predict_cli(capsys, run, "--points", points, "-o", target, "--derivatives")
    assert code == 0 and out == "" and "wrote" in err
    text = target.read_text()
    assert text.splitlines()[0] == 'x,t,u,"d(u,t)","d(u,x,x)"'
    columns, table = _read_csv(text)
    assert columns == ["x", "t", "u", "d(u,t)", "d(u,x,x)"]
    d = pdec.load(run).derivatives(X)
    np.testing.assert_array_equal(table[:, 3], d["d(u,t)"].numpy())
    np.testing.assert_array_equal(table[:, 4], d["d(u,x,x)"].numpy())


@pytest.mark.parametrize("layout", ["per-variable", "X", "column-vectors"])
def test_predict_npz(run, tmp_path, capsys, layout):
    X = _points()
    points = tmp_path / "points.npz"
    if layout == "per-variable":
        np.savez(points, t=X[:, 1], x=X[:, 0])
    elif layout == "column-vectors":
        np.savez(points, x=X[:, :1], t=X[:, 1:])
    else:
        np.savez(points, X=X)
    code, out, err = _predict_cli(capsys, run, "--points", points)
    assert code == 0, err
    _, table = _read_csv(out)
    np.testing.assert_array_equal(table[:, :2], X)
    np.testing.assert_array_equal(table[:, 2], pdec.load(run).predict(X)["u"].numpy())


BAD_CSV = {
    "missing-column": ("x,s\n0.5,0.5\n", "no column `t`"),
    "ragged-row": ("x,t\n0.5,0.5\n0.1\n", ":3: 1 cells, but the header has 2"),
    "text-cell": ("x,t\n0.5,zero\n", ":2: column `t` is not a finite number"),
    "blank-cell": ("x,t\n0.5,\n", ":2: column `t` is not a finite number"),
    "nan-cell": ("x,t\n0.5,nan\n", "not a finite number"),
    "non-ascii-digit": ("x,t\n0.5,1\u0660\n", "not a finite number"),
    "header-only": ("x,t\n", "no points"),
    "empty": ("", "empty"),
    "duplicate-column": ("x,t,t\n1,2,3\n", "names `t` twice"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_predict_bad_csv_is_a_clear_error(run, tmp_path, capsys, case):
    text, expected = BAD_CSV[case]
    points = tmp_path / "points.csv"
    points.write_text(text, encoding="utf-8")
    code, out, err = _predict_cli(capsys, run, "--points", points)
    assert code == 2 and err.startswith("error: ") and expected in err, err
    assert out == "" and "bug" not in err


def test_predict_non_utf8_csv(run, tmp_path, capsys):
    points = tmp_path / "points.csv"
    points.write_bytes(b"x,t\n0.5,\xff\n")
    code, _, err = _predict_cli(capsys, run, "--points", points)
    assert code == 2 and "not UTF-8" in err


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


BAD_NPZ = {
    "not-a-zip": (lambda p: p.write_text("x,t\n1,2\n"), "not an .npz file"),
    "wrong-shape": (lambda p: np.savez(p, X=np.zeros((3, 3))), "`X` has shape [3, 3]"),
    "matrix-per-variable": (lambda p: np.savez(p, x=np.zeros((3, 2)), t=np.zeros(3)), "`x` has shape [3, 2]"),
    "ragged": (lambda p: np.savez(p, x=np.zeros(3), t=np.zeros(4)), "differ in length"),
    "strings": (lambda p: np.savez(p, X=np.array([["a", "b"]])), "not numbers"),
    "objects": (lambda p: np.savez(p, X=np.array([[object(), 1]], dtype=object)), "object array"),
    "missing": (lambda p: np.savez(p, x=np.zeros(3)), "no array `t` and no `X`"),
    "non-finite": (lambda p: np.savez(p, X=np.array([[0.5, np.inf]])), "point 0 is not finite"),
    "single-array": (lambda p: p.write_bytes(_npy(np.zeros((3, 2)))), "a single array"),
}


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_predict_bad_npz_is_a_clear_error(run, tmp_path, capsys, case):
    write, expected = BAD_NPZ[case]
    points = tmp_path / "points.npz"
    write(points)
    code, out, err = _predict_cli(capsys, run, "--points", points)
    assert code == 2 and err.startswith("error: ") and expected in err, err
    assert out == "" and "bug" not in err


def test_predict_on_something_that_is_not_a_run(tmp_path, capsys):
    points = tmp_path / "points.csv"
    points.write_text("x,t\n0.5,0.5\n")
    code, _, err = _predict_cli(capsys, tmp_path / "nothing", "--points", points)
    assert code == 2 and "not a run directory" in err


# -- pdec export ---------------------------------------------------------------------


def test_export_runs_with_torch_alone_and_matches_predict(run, tmp_path, capsys):
    model = tmp_path / "model.pt"
    assert main(["export", str(run), "-o", str(model)]) == 0
    assert "wrote" in capsys.readouterr().err
    X = _points(11, seed=3)
    np.save(tmp_path / "X.npy", X)
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "pdec.py").write_text("raise ImportError('an exported model must not need pdec')\n")
    code = (
        "import json, sys, numpy as np, torch\n"
        "extra = {'pdec.json': ''}\n"
        "m = torch.jit.load(sys.argv[1], _extra_files=extra)\n"
        "X = torch.as_tensor(np.load(sys.argv[2]))\n"
        "np.save(sys.argv[3], m(X).detach().numpy())\n"
        "print(json.dumps({'variables': list(m.variables), 'unknowns': list(m.unknowns), 'meta': json.loads(extra['pdec.json'])}))\n"
        "try:\n    m(torch.zeros(2, 3))\nexcept Exception as e:\n    print('refused' if 'shape [N, 2]' in str(e) else str(e))\n"
    )
    env = {"PYTHONPATH": str(blocker), "PATH": "/usr/bin:/bin"}
    env |= {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}
    done = subprocess.run(
        [sys.executable, "-c", code, str(model), str(tmp_path / "X.npy"), str(tmp_path / "Y.npy")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads(done.stdout.splitlines()[0])
    assert info["variables"] == ["x", "t"] and info["unknowns"] == ["u"]
    assert info["meta"]["step"] == 6 and info["meta"]["name"] == "heat1d"
    assert done.stdout.splitlines()[1] == "refused"
    Y = np.load(tmp_path / "Y.npy")
    assert Y.shape == (11, 1)
    np.testing.assert_allclose(Y[:, 0], pdec.load(run).predict(X)["u"].numpy(), rtol=1e-13, atol=1e-15)


def test_export_of_a_missing_run_is_a_clear_error(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nothing"), "-o", str(tmp_path / "m.pt")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_randomized_laplacians_are_evaluated_exactly(tmp_path):
    out = tmp_path / "run"
    settings = ["model.hidden=[8]", "training.points={interior: 32, boundary: 16}", "training.laplacian_samples=2",
                "training.optimizer=adam", "output.plots=false", "output.grid=5"]  # fmt: skip
    pdec.solve(ROOT / "specs" / "poisson2d.yaml", steps=2, out=out, settings=settings)
    trained = pdec.load(out)
    X = torch.as_tensor(_points(5))
    lap = trained.derivatives(X)["laplacian(u)"]
    torch.testing.assert_close(lap, trained.derivatives(X)["laplacian(u)"], rtol=0, atol=0)
    model = trained.problem.model
    exact = torch.stack(
        [torch.autograd.functional.hessian(lambda p: model(p[None])[0, 0], x).trace() for x in X]
    )  # fmt: skip
    torch.testing.assert_close(lap, exact, rtol=1e-10, atol=1e-10)
    residual = trained.residuals(X)["pde"]
    assert torch.equal(residual, trained.residuals(X)["pde"])
