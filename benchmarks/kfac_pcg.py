"""Trial: `kfac*` whose direction is K steps of conjugate gradients on ``(G + λI) x = g``
preconditioned by KFAC (K = 0: plain `kfac*`), the remedy `kfac_directions.py` points to
(G = J̃ᵀJ̃ the exact Gauss–Newton matrix, applied as a JVP and a VJP per CG step).
Not in the product: the one comparison run so far is in benchmarks/README.md
("Second order at scale").

    taskset -c 1 env OMP_NUM_THREADS=1 python benchmarks/kfac_pcg.py specs/poisson2d_large.yaml --budget 120 --cg 10
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import pdec  # noqa: E402
from pdec.runtime import optimizers  # noqa: E402
from pdec.runtime.kfac import KFACStar  # noqa: E402
from pdec.runtime.linesearch import gn_axpy, gn_dot  # noqa: E402


def pcg(g, apply_A, precondition, dot, axpy, steps: int):
    """``steps`` conjugate-gradient steps on ``A x = g`` from x = 0, preconditioned by
    ``precondition`` (KFAC's ``F⁻¹``); vectors are whatever ``dot`` and ``axpy`` (``a x + y``)
    take: flat tensors (`kfac_directions.py`) or pdec's per-layer directions (here)."""
    x = axpy(-1.0, g, g)  # zero, shaped like g
    r = g
    z = precondition(r)
    p, rz = z, dot(r, z)
    for _ in range(steps):
        Ap = apply_A(p)
        pAp = dot(p, Ap)
        if not pAp > 0:
            break
        a = rz / pAp
        x, r = axpy(a, p, x), axpy(-a, Ap, r)
        z = precondition(r)
        rz, previous = dot(r, z), rz
        p = axpy(rz / previous, p, z)
    return x


def pcg_star(steps: int, damping: float) -> type[KFACStar]:
    """`kfac*` with its direction from ``steps`` KFAC-preconditioned CG steps on ``(G + λI) x = g``."""

    def dot(u, v):
        return gn_dot(*u, *v)

    def axpy(a, u, v):
        return gn_axpy(float(a), *u, *v)

    class PCGStar(KFACStar):
        def direction(self, lin, inverse, grad):
            if steps == 0:
                return inverse @ grad
            apply_A = lambda v: axpy(damping, v, lin.vjp(lin.jvp(*v)))  # noqa: E731
            return pcg(grad, apply_A, lambda v: inverse @ v, dot, axpy, steps)

    return PCGStar


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spec", type=Path)
    p.add_argument("--budget", type=float, default=120.0)
    p.add_argument("--cg", type=int, default=10, help="CG steps per direction (0: plain kfac*)")
    p.add_argument("--damping", type=float, default=1e-8, help="λ of the CG system")
    p.add_argument("--out", type=Path, default=Path("runs") / "kfac_pcg")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    optimizers.OPTIMIZERS["kfac*"] = pcg_star(args.cg, args.damping)
    out = args.out / f"{args.spec.stem}-cg{args.cg}"
    shutil.rmtree(out, ignore_errors=True)
    result = pdec.solve(args.spec, steps=10**9, max_time=args.budget, optimizer="kfac*", out=out,
                        settings=["output.plots=false", "training.log_every=50"])  # fmt: skip
    s = result.summary
    print(f"{args.spec.stem} cg {args.cg}: steps {s['steps']}, rel. L2 {s['rel_l2']['u']:.2e}, loss {s['final_loss']:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
