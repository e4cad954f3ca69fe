"""Sketched ENGD (`training.sketch`): the randomized Nyström approximation is exact on a
low-rank matrix and improves with the rank on a decaying spectrum; the sketched step is the
exact `engd_solve` once the sketch covers the kernel's range; the key is ENGD's only,
resumes bit-identically and trains."""

from __future__ import annotations

import json

import pytest
import torch

import pdec
from pdec.errors import SpecError
from pdec.runtime.curvature import gn_linearize
from pdec.runtime.engd import ENGD, engd_solve, sketched_solve
from pdec.runtime.nystrom import nystrom, nystrom_solve
from pdec.spec.load import load_spec

from optim_cases import ROOT, SPECS, tiny_problem


def _psd(eigenvalues: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    k = eigenvalues.numel()
    return (Q[:, :k] * eigenvalues) @ Q[:, :k].T


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_nystrom_is_exact_on_a_low_rank_matrix():
    K = _psd(torch.logspace(0, -6, 12, dtype=torch.float64), 80)  # rank 12
    for rank in (12, 20, 80):
        approx = nystrom(lambda X: K @ X, 80, rank, _gen(rank))
        assert approx.U.shape == (80, 12)  # beyond the rank: rounding-level eigenvalues dropped
        assert torch.allclose(approx.matrix(), K, rtol=0, atol=1e-12 * float(K.norm()))
        assert (approx.eigenvalues > 0).all()
    approx = nystrom(lambda X: K @ X, 80, 11, _gen())  # one short of the rank: not exact
    assert float((approx.matrix() - K).norm()) > 1e-8
    zero = nystrom(lambda X: 0 * X, 80, 5, _gen())
    assert zero.U.shape == (80, 0) and torch.equal(nystrom_solve(zero, torch.ones(80, dtype=torch.float64), 0.5), torch.full((80,), 2.0, dtype=torch.float64))
    with pytest.raises(FloatingPointError):
        nystrom(lambda X: float("nan") * X, 80, 5, _gen())


def test_nystrom_error_decreases_with_the_rank():
    """On a spectrum λ_j = 0.7^j the nuclear-norm error ‖K − K̂‖_* falls with s, above the
    best rank-s error Σ_{j>s} λ_j and below the expectation bound of Tropp et al. 2017
    (Thm. 4.1), min_k (1 + k/(s − k − 1)) Σ_{j>k} λ_j."""
    eigenvalues = 0.7 ** torch.arange(100, dtype=torch.float64)
    K = _psd(eigenvalues, 100)
    tail = [float(eigenvalues[k:].sum()) for k in range(101)]
    errors = []
    for rank in (5, 10, 20, 40):
        approx = nystrom(lambda X: K @ X, 100, rank, _gen(1))
        err = float(torch.linalg.matrix_norm(K - approx.matrix(), ord="nuc"))
        errors.append(err)
        bound = min((1 + k / (rank - k - 1)) * tail[k] for k in range(rank - 1))
        assert tail[rank] <= err <= bound, (rank, err, tail[rank], bound)
    assert all(b < 0.5 * a for a, b in zip(errors, errors[1:])), errors


def test_nystrom_solve_is_the_damped_inverse_in_its_range():
    K = _psd(torch.tensor([5.0, 1.0, 0.1], dtype=torch.float64), 30)
    approx = nystrom(lambda X: K @ X, 30, 3, _gen())
    b = torch.randn(30, generator=_gen(2), dtype=torch.float64)
    lam = 1e-3
    x = nystrom_solve(approx, b, lam)
    assert torch.allclose((K + lam * torch.eye(30, dtype=torch.float64)) @ x, b, atol=1e-9)
    # the tail: outside the range of U, b is divided by λ + tail instead
    outside = b - approx.U @ (approx.U.T @ b)
    y = nystrom_solve(approx, outside, lam, tail=0.5)
    assert torch.allclose(y, outside / (lam + 0.5), atol=1e-12)


@pytest.mark.parametrize("shape", [(30, 70), (90, 40)])  # the N×N kernel (wide), the D×D Gramian (tall)
@pytest.mark.parametrize("damping", [1e-3, 1e-8])
def test_sketched_step_equals_the_exact_one_when_the_sketch_covers_the_range(shape, damping):
    """Rank-20 J: with s ≥ 20 the sketched step is the exact one to rounding, i.e. within the
    exact Cholesky solve's own error against an SVD reference (which grows as 1/λ: 5e-10
    relative at λ = 1e-3, 4e-5 at 1e-8); with s < 20 it is not."""
    g = _gen(3)
    N, D = shape
    rank = 20
    J = torch.randn(N, rank, generator=g, dtype=torch.float64) @ torch.randn(rank, D, generator=g, dtype=torch.float64)
    r = torch.randn(N, generator=g, dtype=torch.float64)
    U, S, Vh = torch.linalg.svd(J, full_matrices=False)
    reference = Vh.T @ (S / (S.square() + damping) * (U.T @ r))
    exact = engd_solve(J, r, damping)
    rounding = float((exact - reference).norm())
    assert rounding < 1e-3 * float(reference.norm())
    for s in (rank, rank + 5, min(N, D)):
        sketched = sketched_solve(J, r, damping, s, _gen(s))
        assert float((sketched - reference).norm()) <= 3 * rounding, s
        assert float((sketched - exact).norm()) <= 4 * rounding, s
    short = sketched_solve(J, r, damping, rank - 5, _gen())
    assert float((short - reference).norm()) > 1e-2 * float(reference.norm())


class _TwoEqualRanks:
    """A stand-in for a two-rank `World` whose other rank holds the same rows: a sum over the
    ranks doubles."""

    def sum_many_(self, tensors):
        for t in tensors:
            t.mul_(2.0)
        return tensors


def test_distributed_sketch_sums_the_gramian_products_over_the_ranks():
    """With rows spread over ranks the sketch is of the D×D Gramian, its products all-reduced:
    two ranks holding rows A each give the step of one process holding [A; A]."""
    g = _gen(4)
    A = torch.randn(40, 8, generator=g, dtype=torch.float64) @ torch.randn(8, 25, generator=g, dtype=torch.float64)
    r = torch.randn(40, generator=g, dtype=torch.float64)
    J, rr = torch.cat([A, A]), torch.cat([r, r])
    two = sketched_solve(A, r, 1e-4, 12, _gen(5), world=_TwoEqualRanks())
    one = sketched_solve(J, rr, 1e-4, 12, _gen(5))  # N = 80 > D = 25: the same D×D form
    assert torch.allclose(two, one, rtol=1e-12, atol=1e-14)
    U, S, Vh = torch.linalg.svd(J, full_matrices=False)  # s = 12 ≥ rank 8: the exact step
    reference = Vh.T @ (S / (S.square() + 1e-4) * (U.T @ rr))
    rounding = float((engd_solve(J, rr, 1e-4) - reference).norm())  # 4e-9 relative
    assert float((two - reference).norm()) <= 3 * rounding


def test_a_non_finite_jacobian_gives_a_non_finite_step():
    """As `engd_solve`: the line search then finds no finite loss and the trainer recovers."""
    J = torch.full((6, 9), float("nan"), dtype=torch.float64)
    assert torch.isnan(sketched_solve(J, torch.ones(6, dtype=torch.float64), 1e-8, 3, _gen())).all()


def test_sketched_engd_step_on_a_spec_equals_the_exact_step():
    """On a real linearization (poisson2d, D = 33, N = 18 + …): a sketch of rank N gives
    the exact ENGD direction to rounding."""
    problem, fn, weights, training = tiny_problem(SPECS / "poisson2d.yaml", ["model.hidden=[8]"])
    lin = gn_linearize(problem, fn, weights)
    J, r = lin.jacobian(), lin.local_residual()
    exact = engd_solve(J, r, 1e-6)
    sketched = sketched_solve(J, r, 1e-6, min(J.shape), _gen())
    assert torch.allclose(sketched, exact, rtol=1e-8, atol=1e-10 * float(exact.norm()))


def test_sketch_seeds_follow_the_count_and_are_checkpointed():
    problem, fn, weights, training = tiny_problem(SPECS / "poisson2d.yaml", ["model.hidden=[8]", "training.optimizer=engd", "training.sketch=5"])
    assert training.sketch == 5
    opt = ENGD(problem, training)
    opt.step(fn, weights)
    opt.step(fn, weights)
    assert opt.state_dict()["sketches"] == 2 and opt.info["sketch"] == 5.0
    other = ENGD(problem, training)
    other.load_state_dict(opt.state_dict())
    assert other.sketches == 2
    opt.recover(2)
    assert opt.sketches == 2  # never reset: a recovered run does not redraw earlier sketches


def _spec_error(tmp_path, training: str) -> SpecError:
    path = tmp_path / "s.yaml"
    path.write_text(
        "domain: {x: [0, 1]}\nunknowns: [u]\nequations:\n  - u_xx = 0\n"
        "conditions:\n  - {on: boundary, impose: u = 0}\ntraining:\n" + training
    )
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return info.value


def test_sketch_needs_engd(tmp_path):
    err = _spec_error(tmp_path, "  optimizer: kfac\n  sketch: 100\n")
    assert "optimizer: engd" in str(err) and "kfac" in str(err)
    assert err.loc.line == 9
    err = _spec_error(tmp_path, "  sketch: 100\n")  # `auto` is not `engd` either
    assert "not `auto`" in str(err) and err.loc.line == 8
    assert "training.sketch" in str(_spec_error(tmp_path, "  optimizer: engd\n  sketch: 0\n"))
    spec = load_spec(SPECS / "poisson2d.yaml", ["training.optimizer=engd", "training.sketch=null"])
    assert spec.training.sketch is None


def test_sketch_with_another_optimizer_exits_2(tmp_path, capsys):
    from pdec.cli import main

    code = main(["solve", str(SPECS / "poisson2d.yaml"), "--set", "training.sketch=50", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "needs `optimizer: engd`, not `lbfgs`" in err and "--set:1:" in err
    assert not (tmp_path / "run").exists()


SMALL = ["model.hidden=[8, 8]", "training.points={interior: 64, boundary: 16, initial: 16}", "training.log_every=5"]


def _params(problem):
    return [p.detach().clone() for p in problem.model.parameters()]


def test_resume_with_a_sketch_is_bit_identical(tmp_path):
    heat = ROOT / "specs" / "heat.yaml"
    settings = SMALL + ["training.optimizer=engd", "training.sketch=20", "output.plots=false"]
    straight = pdec.solve(heat, steps=8, out=tmp_path / "straight", settings=settings)
    stopped = pdec.solve(heat, steps=8, out=tmp_path / "split", settings=settings, max_time=1e-9)
    assert stopped.summary["status"] == "time-limit" and stopped.summary["steps"] < 8
    resumed = pdec.solve(heat, steps=8, out=tmp_path / "split", settings=settings, resume=True)
    assert resumed.summary["resumed_from"] == stopped.summary["steps"]
    for a, b in zip(_params(straight.problem), _params(resumed.problem)):
        assert torch.equal(a, b)
    assert resumed.summary["final_loss"] == straight.summary["final_loss"]


def test_sketched_engd_trains_poisson2d(tmp_path):
    """A sketch of rank 50 of the 1020×1020 kernel ([32, 32]: D = 1185) trains like the exact
    step: measured 86 → 9.9e-3 in 15 steps, rel. L2 9.7e-3 (exact: 4.6e-3, 1.4e-2)."""
    result = pdec.solve(
        SPECS / "poisson2d.yaml", steps=15, out=tmp_path,
        settings=["training.optimizer=engd", "training.sketch=50", "model.hidden=[32, 32]", "output.plots=false", "training.log_every=1"],
    )  # fmt: skip
    first = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert first["optimizer_info"]["sketch"] == 50.0
    assert result.summary["final_loss"] < 1e-3 * first["loss"]
    assert result.summary["rel_l2"]["u"] < 0.05
    assert json.loads((tmp_path / "resolved.json").read_text())["training"]["sketch"] == 50


def test_standalone_script_matches_solve_with_a_sketch(tmp_path):
    """`pdec codegen` carries `sketch` into the script (which inlines `runtime/nystrom.py`),
    and the script's run is `pdec solve`'s to the bit."""
    import os
    import subprocess
    import sys

    spec = SPECS / "poisson2d.yaml"
    settings = SMALL + ["training.optimizer=engd", "training.sketch=12", "output.plots=false"]
    script = tmp_path / "train.py"
    sets = [a for s in settings for a in ("--set", s)]
    subprocess.run([sys.executable, "-m", "pdec", "codegen", str(spec), "-o", str(script), *sets], check=True, cwd=ROOT)
    assert "sketch=12" in script.read_text() and "def nystrom(" in script.read_text()
    env = {"PATH": "/usr/bin:/bin"} | {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}
    done = subprocess.run(
        [sys.executable, str(script), "--steps", "6", "--out", str(tmp_path / "script_run"), "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    from_script = json.loads(done.stdout)
    solved = pdec.solve(spec, steps=6, out=tmp_path / "solve_run", settings=settings).summary
    for key in ("final_loss", "rel_l2", "losses", "steps"):
        assert from_script[key] == solved[key], key
