"""KFAC direction quality against the exact damped Gauss–Newton direction (issue 15, item 2).

Why: on the KFAC paper's small problems ENGD beats KFAC by one to two orders of magnitude at
equal time. A KFAC step differs from ENGD's in its direction (block-diagonal Kronecker
approximation of ``G``, damping added to each factor, factors averaged over steps) and in its
step rule. This script isolates the direction: along a real `kfac*` run it snapshots the
parameters and compares, at the same point, the exact damped Gauss–Newton direction

    d* = -(G + λI)⁻¹ g,   G = J̃ᵀJ̃,  g = J̃ᵀr̃  (`curvature.gn_linearize`; loss L = ‖r̃‖²)

with the KFAC directions ``-F⁻¹g`` (F from `kfac.kfac_layer`: λ added to every factor, as pdec
does), fresh (this point's factors alone) and with moving averages along the run, the
two-level (`two_level.two_level_correction`, multiplicative, both coarse spaces), the
`kfac*` step (δ and the previous step combined by the damped model, Martens & Grosse §7), and
two references that locate KFAC's loss: the exact Gauss–Newton blocks per layer (the block
diagonal without the Kronecker factorization) and a few steps of conjugate gradients on the
exact system preconditioned by KFAC.

Measures, per direction d:
- ``cos``: cosine(d, d*); ``cos_J``: the cosine of ``J̃d`` and ``J̃d*``, the residual changes
  they predict (``cos`` is dominated by the directions of G's eigenvalues ≲ λ, which d* takes
  huge and the loss barely sees);
- ``model``: the Gauss–Newton model decrease at d's model-optimal scale,
  ``(gᵀd)²/‖J̃d‖²``, over the same for d* (0 for an ascent direction);
- ``err``: ``‖d − d*‖/‖d*‖`` in the ``G + λI`` norm (the solve error two-level KFAC targets);
- ``loss``: the loss decrease at the best step of the grid {2^0 … 2^-30} ∪ α*·{4, 2, 1, ½, ¼}
  (α* the model-optimal scale) along d, over the same along d*; ``Δ/L`` that decrease over
  the loss.

d* is computed from one SVD ``J̃ = U S Vᵀ`` per snapshot: g lies in the row space of J̃, so
``d* = -V diag(s/(s² + λ)) Uᵀr̃`` exactly, for every λ at once, also for D ≈ 10⁴
(the sample-space form; J̃ has N ≈ 1020 rows).

The run: `kfac*` with pdec's defaults (as benchmarks/optimizers.py runs it; λ₀, β and the
damping rule are recorded in the results), driven directly on the spec's fixed points; a moving
average with another β (0.5, issue 15's runs; 0.95 for a run at 0.5) is kept alongside by a hook on
`kfac.kfac_factors`, defined here (pdec itself is not changed).

    taskset -c 1 env OMP_NUM_THREADS=1 python benchmarks/kfac_directions.py
    python benchmarks/kfac_directions.py --problems poisson2d --snapshots 0 10   # quick look
    python benchmarks/kfac_directions.py --set training.ema=0.5 training.damping=1e-10 --out /tmp/b05.json
    python benchmarks/kfac_directions.py --summary   # the README's tables from the saved results
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pdec  # noqa: E402
import pdec.runtime.kfac as kfac_module  # noqa: E402
from pdec.runtime.curvature import gn_linearize  # noqa: E402
from pdec.runtime.kfac import KFACStar, kfac_layer  # noqa: E402
from pdec.runtime.kronecker import BlockDiagonal  # noqa: E402
from pdec.runtime.linesearch import GN_GRID, gn_apply, gn_flatten, gn_loss, gn_restore, gn_save, gn_unflatten  # noqa: E402
from pdec.runtime.losses import term_residuals  # noqa: E402
from pdec.runtime.sampling import Sampler  # noqa: E402
from pdec.runtime.two_level import two_level_correction  # noqa: E402
from pdec.spec.load import load_spec  # noqa: E402

from kfac_pcg import pcg  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "kfac_directions.json"
DAMPINGS = (1e-10, 1e-8, 1e-6, 1e-4)
RUN = ["training.optimizer=kfac*"]
"""`kfac*` with pdec's defaults, as benchmarks/optimizers.py runs it (λ₀ and β recorded in the results)."""
OTHER_BETA = {0.5: 0.95}
"""The moving average kept alongside the run's: β = 0.5 (issue 15's runs), or 0.95 for a run at 0.5."""
PROBLEMS = {
    "poisson2d": ("specs/poisson2d.yaml", (0, 100, 1000, 5000)),
    "heat_1p1d": ("specs/heat_1p1d.yaml", (0, 100, 1000, 5000)),
    "poisson2d_large": ("specs/poisson2d_large.yaml", (0, 100, 1000)),
}
SCALES = (4.0, 2.0, 1.0, 0.5, 0.25)
PCG_STEPS = (3, 10)
"""Conjugate-gradient steps on the exact damped Gauss–Newton system, KFAC-preconditioned."""


# ---------------------------------------------------------------------------
# the run and the factor tracks


def setup(path: str, seed: int = 0, overrides=()):
    """``(problem, residual_fn, weights, training)``: the spec with the run's settings, its fixed points."""
    spec = load_spec(ROOT / path, [*RUN, *overrides])
    problem = pdec.compile(spec, seed=seed)
    training = problem.definition.training
    batches = Sampler(problem.definition, training, dtype=torch.float64, device="cpu", seed=seed).draw()
    weights = {t.name: float(t.weight) for t in problem.definition.terms}
    return problem, (lambda: term_residuals(problem, batches)), weights, training


def _identity_like(layers):
    eye = lambda M: torch.eye(M.shape[0], dtype=M.dtype, device=M.device)  # noqa: E731
    return [(eye(A), eye(B), S) for A, B, S in layers]


def ema_step(old, new, beta: float):
    """One moving-average update of a factor dict, as `KroneckerFactored.update_factors` does
    (factors start at the identity)."""
    out = {}
    for key, layers in new.items():
        prev = old.get(key) or _identity_like(layers)
        out[key] = [(beta * A0 + (1 - beta) * A, beta * B0 + (1 - beta) * B, S) for (A0, B0, _), (A, B, S) in zip(prev, layers)]
    return out


class FactorTracks:
    """Moving averages of KFAC's expand factors along the run, one per ``{label: β}``: every
    call of `kfac.kfac_factors` by the optimizer is seen (the hook replaces the module's
    function for the duration of the run, and calls the original)."""

    def __init__(self, betas: dict[str, float]) -> None:
        self.betas = betas
        self.averages = {name: {} for name in betas}
        self.original = kfac_module.kfac_factors

    def __enter__(self):
        def hooked(lin, flavour="expand"):
            out = self.original(lin, flavour)
            fresh = out if flavour == "expand" else self.original(lin, "expand")
            for name, beta in self.betas.items():
                self.averages[name] = ema_step(self.averages[name], fresh, beta)
            return out

        kfac_module.kfac_factors = hooked
        return self

    def __exit__(self, *exc) -> None:
        kfac_module.kfac_factors = self.original

    def at(self, lin) -> dict[str, dict]:
        """The factor sets a step at this point would use: fresh per flavour, and each track's
        average updated with this point's factors (the optimizer updates before it solves)."""
        fresh = {fl: self.original(lin, fl) for fl in ("expand", "reduce")}
        sets = {f"{fl} fresh": f for fl, f in fresh.items()}
        for name, beta in self.betas.items():
            sets[f"expand EMA {name}"] = ema_step(self.averages[name], fresh["expand"], beta)
        return sets


# ---------------------------------------------------------------------------
# directions and their measures


def kfac_inverse(factors: dict, damping: float):
    """``F⁻¹`` of pdec's KFAC for these factors, λ added to every factor (`kfac.kfac_layer`)."""
    keys = list(factors)
    layers = [kfac_layer([factors[k][li] for k in keys], damping) for li in range(len(factors[keys[0]]))]
    return BlockDiagonal(layers, None).inverse()


class Point:
    """One parameter state: J̃, r̃, g, the SVD of J̃ and the loss along directions."""

    def __init__(self, problem, residual_fn, weights) -> None:
        self.problem, self.residual_fn, self.weights = problem, residual_fn, weights
        self.lin = gn_linearize(problem, residual_fn, weights)
        self.J = self.lin.jacobian()
        self.r = self.lin.local_residual()
        self.grad = self.lin.gradient()
        self.g = gn_flatten(*self.grad)
        self.U, self.s, self.Vh = torch.linalg.svd(self.J, full_matrices=False)
        self.Ur = self.U.T @ self.r
        self.loss0 = float(self.lin.total)
        self.blocks = []  # per layer (columns, U_l, s_l, V_lᵀ) of the layer's Jacobian columns
        start = 0
        for o, i in self.lin.shapes:
            U, sv, Vh = torch.linalg.svd(self.J[:, start : start + o * i], full_matrices=False)
            self.blocks.append((slice(start, start + o * i), U.T @ self.r, sv, Vh))
            start += o * i

    def exact(self, damping: float):
        return -(self.Vh.T @ (self.s / (self.s.square() + damping) * self.Ur))

    def block_exact(self, damping: float):
        """``-(G_ll + λI)⁻¹ g_l`` per layer: the exact Gauss–Newton blocks, the couplings between
        layers dropped (KFAC's block diagonal without its Kronecker factorization)."""
        d = torch.zeros_like(self.g)
        for cols, Ur, sv, Vh in self.blocks:
            d[cols] = -(Vh.T @ (sv / (sv.square() + damping) * Ur))
        return d

    def check(self) -> None:
        """Fail loudly if the measures rest on a wrong linearization: g = J̃ᵀr̃, the SVD solve
        against a dense solve (small D), and the loss's slope along d* against 2gᵀd*."""
        if not torch.allclose(self.J.T @ self.r, self.g, rtol=1e-9, atol=1e-12 * float(self.g.abs().max())):
            raise RuntimeError("gradient ≠ J̃ᵀr̃")
        d = self.exact(1e-4)
        if self.J.shape[1] <= 2000:
            G = self.J.T @ self.J + 1e-4 * torch.eye(self.J.shape[1], dtype=self.J.dtype)
            ref = -torch.linalg.solve(G, self.g)
            if float((d - ref).norm() / ref.norm()) > 1e-6:
                raise RuntimeError("SVD and dense solve disagree")
        eps = 1e-6 / float(d.norm())
        vs, vp = self.unflat(d)
        saved = gn_save(self.problem)
        gn_apply(self.problem, vs, vp, eps)
        plus, _ = gn_loss(self.residual_fn, self.weights)
        gn_restore(self.problem, saved)
        gn_apply(self.problem, vs, vp, -eps)
        minus, _ = gn_loss(self.residual_fn, self.weights)
        gn_restore(self.problem, saved)
        slope, model = (float(plus) - float(minus)) / (2 * eps), 2 * float(self.g @ d)
        if abs(slope - model) > 1e-3 * abs(model):
            raise RuntimeError(f"loss slope {slope:.6e} ≠ 2gᵀd* {model:.6e}")

    def flat(self, v):
        return gn_flatten(*v)

    def unflat(self, d):
        return gn_unflatten(d, self.lin.shapes, self.lin.n_pde)

    @torch.no_grad()
    def best_decrease(self, d, alpha: float) -> tuple[float, float]:
        """The largest loss decrease over the grid (and its step)."""
        vs, vp = self.unflat(d)
        saved = gn_save(self.problem)
        etas = list(GN_GRID) + ([alpha * c for c in SCALES] if math.isfinite(alpha) and alpha > 0 else [])
        best = (0.0, -math.inf)
        for eta in etas:
            gn_apply(self.problem, vs, vp, eta)
            total, _ = gn_loss(self.residual_fn, self.weights)
            gn_restore(self.problem, saved)
            dec = self.loss0 - float(total)
            if math.isfinite(dec) and dec > best[1]:
                best = (eta, dec)
        return best

    def measure(self, d, dstar, damping: float, star: dict | None) -> dict:
        Jd = self.J @ d
        slope, curv = float(self.g @ d), float(Jd @ Jd)
        model = slope * slope / curv if slope < 0 and curv > 0 else 0.0
        alpha = -slope / curv if curv > 0 else math.nan
        e = d - dstar
        Je = self.J @ e
        Js = self.J @ dstar
        err = math.sqrt(float(Je @ Je + damping * e @ e) / float(Js @ Js + damping * dstar @ dstar))
        eta, dec = self.best_decrease(d, alpha)
        out = {
            "cos": float(d @ dstar / (d.norm() * dstar.norm())),
            "cos_J": float(Jd @ Js / (Jd.norm() * Js.norm())),
            "model_decrease": model,
            "err": err,
            "alpha_star": alpha,
            "loss_decrease": dec,
            "rel_decrease": dec / self.loss0,
            "best_eta": eta,
        }
        if star is not None:
            out["model_ratio"] = model / star["model_decrease"]
            out["loss_ratio"] = dec / star["loss_decrease"] if star["loss_decrease"] > 0 else math.nan
        return out

    def pcg(self, inverse, damping: float, iterations: int):
        """``-x`` after ``iterations`` steps of conjugate gradients on ``(G + λI) x = g`` with KFAC's
        ``F⁻¹`` as preconditioner (from x = 0; one step is the KFAC direction, rescaled). Each step
        costs one product with ``G`` (a JVP and a VJP in pdec)."""
        prec = lambda v: self.flat(inverse @ self.unflat(v))  # noqa: E731
        apply_A = lambda v: self.J.T @ (self.J @ v) + damping * v  # noqa: E731
        x = pcg(self.g, apply_A, prec, torch.dot, lambda a, u, v: a * u + v, iterations)
        return -x

    def subspace_step(self, v1, v2, damping: float):
        """`kfac*`'s step: ``c₁v₁ + c₂v₂`` minimizing ``gᵀd + ½dᵀ(G + λI)d`` over the span."""
        V = torch.stack([v1, v2], dim=1)
        JV = self.J @ V
        M = JV.T @ JV + damping * V.T @ V
        c = -torch.linalg.pinv(M) @ (V.T @ self.g)
        return V @ c, [float(x) for x in c]


def diagnose(point: Point, sets: dict, previous, run_set: str) -> dict:
    """Every direction at every λ at one point."""
    rows = {}
    for damping in DAMPINGS:
        dstar = point.exact(damping)
        star = point.measure(dstar, dstar, damping, None)
        star.update(model_ratio=1.0, loss_ratio=1.0)
        row = {"exact GN": star, "block-diag GN": point.measure(point.block_exact(damping), dstar, damping, star)}
        for name, factors in sets.items():
            inverse = kfac_inverse(factors, damping)
            x = inverse @ point.grad
            row[f"KFAC {name}"] = point.measure(-point.flat(x), dstar, damping, star)
            if name in (run_set, "expand fresh"):
                for space in ("nicolaides", "residual"):
                    cs, cp, _ = two_level_correction(point.lin, inverse, damping, point.grad, x, space, "multiplicative")
                    d = -(point.flat(x) + gn_flatten(cs, cp))
                    row[f"2L-{space[:3]} {name}"] = point.measure(d, dstar, damping, star)
            if name == run_set:
                for k in PCG_STEPS:
                    row[f"KFAC-PCG {k} {name}"] = point.measure(point.pcg(inverse, damping, k), dstar, damping, star)
            if name == run_set and previous is not None:
                d, coef = point.subspace_step(-point.flat(x), previous, damping)
                row["kfac* step"] = {**point.measure(d, dstar, damping, star), "coef": coef}
        rows[f"{damping:g}"] = row
    return rows


# ---------------------------------------------------------------------------
# driver


def run_problem(name: str, snapshots, log, overrides=()) -> dict:
    path, _ = PROBLEMS[name]
    problem, residual_fn, weights, training = setup(path, overrides=overrides)
    opt = KFACStar(problem, training)
    if opt.flavour != "expand" or opt.update_every != 1:
        raise RuntimeError("the factor tracks assume the expand flavour, updated every step")
    other = OTHER_BETA.get(opt.ema, 0.5)
    run_set = "expand EMA run"
    settings = {"overrides": list(overrides), "ema": opt.ema, "damping": opt.damping, "adaptive_damping": opt.adaptive, "other_ema": other}
    out = {"spec": path, "settings": settings, "snapshots": []}
    t_train = t_diag = 0.0
    with FactorTracks({"run": opt.ema, f"b={other}": other}) as tracks:
        step = 0
        for target in sorted(snapshots):
            t0 = time.perf_counter()
            while step < target:
                total, _ = opt.step(residual_fn, weights)
                if not torch.isfinite(total):
                    raise RuntimeError(f"{name}: non-finite loss at step {step}")
                step += 1
            t_train += time.perf_counter() - t0
            t0 = time.perf_counter()
            # the hook's run track must be the optimizer's own factors (after its last update)
            if opt.factors:
                mine = tracks.averages["run"]
                drift = max(float((a - b).abs().max()) for k in mine for (a, _, _), (b, _, _) in zip(mine[k], opt.factors[k]))
                if drift > 1e-12 * max(1.0, max(float(a.abs().max()) for k in mine for a, _, _ in mine[k])):
                    raise RuntimeError(f"{name}: the factor hook disagrees with the run ({drift:.2e})")
            point = Point(problem, residual_fn, weights)
            point.check()
            previous = None if opt.previous is None else gn_flatten(*opt.previous)
            rows = diagnose(point, tracks.at(point.lin), previous, run_set)
            t_diag += time.perf_counter() - t0
            snap = {
                "step": step,
                "loss": point.loss0,
                "run_damping": opt.damping,
                "D": int(point.J.shape[1]),
                "N": int(point.J.shape[0]),
                "G_eig_max": float(point.s[0] ** 2),
                "G_eig_min": float(point.s[-1] ** 2),
                "rows": rows,
            }
            out["snapshots"].append(snap)
            log(name, snap)
    out["seconds"] = {"train": t_train, "diagnose": t_diag}
    return out


def _fmt(x) -> str:
    return "   nan  " if not math.isfinite(x) else f"{x:8.2e}" if abs(x) < 1e-2 or abs(x) >= 1e3 else f"{x:8.4f}"


def print_snapshot(name: str, snap: dict) -> None:
    print(
        f"\n== {name}  step {snap['step']}  loss {snap['loss']:.3e}  D={snap['D']} N={snap['N']}  "
        f"run λ={snap['run_damping']:.2e}  eig(G) {snap['G_eig_min']:.1e}..{snap['G_eig_max']:.1e}",
        flush=True,
    )
    print(f"{'λ':>7} {'direction':<24} {'cos':>8} {'cos_J':>8} {'model':>8} {'err':>8} {'loss':>8} {'Δ/L':>8} {'α*':>8} {'η best':>8}")
    for lam, row in snap["rows"].items():
        for d, m in row.items():
            vals = [m["cos"], m["cos_J"], m["model_ratio"], m["err"], m["loss_ratio"], m["rel_decrease"], m["alpha_star"], m["best_eta"]]
            print(f"{lam:>7} {d:<24} " + " ".join(_fmt(v) for v in vals), flush=True)


# ---------------------------------------------------------------------------
# the README's tables, from the saved results

RUN_EMA = "KFAC expand EMA run"


def _other(snap: dict) -> str:
    return next(k for k in snap["rows"]["1e-08"] if k.startswith("KFAC expand EMA b="))


def _g(x) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.2g}"


def _best(snap: dict, key: str) -> tuple[float, str]:
    """The largest realized decrease Δ/L of direction ``key`` over the λ grid, and its λ."""
    got = [(row[key]["rel_decrease"], lam) for lam, row in snap["rows"].items() if key in row]
    return max(got) if got else (math.nan, "")


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def summary(results: dict) -> str:
    """Markdown tables for benchmarks/README.md (`--summary`)."""
    snaps = [(name, snap) for name, p in results["problems"].items() for snap in p["snapshots"]]
    out = ["Loss decrease per step, Δ/L at the best grid step, each direction at its best λ:", ""]
    rows = []
    for name, sn in snaps:
        ex, kf, st, bd = (_best(sn, k) for k in ("exact GN", RUN_EMA, "kfac* step", "block-diag GN"))
        best_kfac = max(kf[0], st[0]) if math.isfinite(st[0]) else kf[0]
        rows.append([name, str(sn["step"]), f"{sn['loss']:.1e}", f"{sn['run_damping']:.0e}", f"{_g(ex[0])} ({ex[1]})",
                     f"{_g(bd[0])} ({bd[1]})", f"{_g(kf[0])} ({kf[1]})", f"{_g(st[0])} ({st[1]})", _g(ex[0] / best_kfac)])  # fmt: skip
    out += _table(["problem", "step", "loss", "run λ", "d* (λ)", "block-diag GN (λ)", "KFAC EMA (λ)", "kfac* step (λ)", "d* / KFAC"], rows)
    keys = ["block-diag GN", "KFAC expand fresh", RUN_EMA, "KFAC reduce fresh", "other", f"KFAC-PCG 3 {RUN_EMA[5:]}"]
    out += ["", "Share of d*'s Gauss–Newton model decrease, (gᵀd)²/dᵀGd over the same for d*, at λ = 1e-8 (cos_J in brackets):", ""]
    rows = []
    for name, sn in snaps:
        row = sn["rows"]["1e-08"]
        rows.append([name, str(sn["step"])] + [f"{_g(row[k]['model_ratio'])} ({_g(row[k]['cos_J'])})" for k in (_other(sn) if k == "other" else k for k in keys)])
    out += _table(["problem", "step", *(k.replace("other", "KFAC expand EMA, other β") for k in keys)], rows)
    out += ["", "Damping and EMA: Δ/L by λ (d*: realized / predicted by the Gauss–Newton model):", ""]
    lams = list(snaps[0][1]["rows"])
    rows = []
    for name, sn in snaps:
        if sn["step"] == 0:
            continue
        ex = [sn["rows"][lam]["exact GN"] for lam in lams]
        rows.append([name, str(sn["step"]), "d*"] + [f"{_g(e['rel_decrease'])} / {_g(e['model_decrease'] / sn['loss'])}" for e in ex])
        for k in ("KFAC expand fresh", RUN_EMA, _other(sn)):
            rows.append([name, str(sn["step"]), k.replace("KFAC expand ", "")] + [_g(sn["rows"][lam][k]["rel_decrease"]) for lam in lams])
    out += _table(["problem", "step", "direction", *(f"λ={lam}" for lam in lams)], rows)
    keys = [RUN_EMA, "2L-nic expand EMA run", "2L-res expand EMA run", "KFAC-PCG 3 expand EMA run", "KFAC-PCG 10 expand EMA run", "KFAC expand fresh", "2L-nic expand fresh", "2L-res expand fresh"]
    out += ["", "Two-level KFAC (multiplicative correction) and KFAC-preconditioned CG: Δ/L at the best λ, model share at λ = 1e-8 in brackets:", ""]
    rows = [[name, str(sn["step"])] + [f"{_g(_best(sn, k)[0])} ({_g(sn['rows']['1e-08'][k]['model_ratio'])})" for k in keys] for name, sn in snaps]
    out += _table(["problem", "step", *(k.replace(" expand", "") for k in keys)], rows)
    return "\n".join(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--snapshots", nargs="+", type=int, help="steps to snapshot (default: per problem)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="spec overrides for the run, e.g. training.ema=0.5")
    parser.add_argument("--summary", action="store_true", help="print the README tables from --out and stop")
    args = parser.parse_args(argv)
    if args.summary:
        print(summary(json.loads(args.out.read_text())))
        return
    torch.manual_seed(0)
    results = {"dampings": list(DAMPINGS), "torch_threads": torch.get_num_threads(), "problems": {}}
    t0 = time.perf_counter()
    for name in args.problems:
        snapshots = args.snapshots or PROBLEMS[name][1]
        results["problems"][name] = run_problem(name, snapshots, print_snapshot, args.set)
        print(f"   {name}: {results['problems'][name]['seconds']}", flush=True)
    results["seconds"] = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.out} ({results['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
