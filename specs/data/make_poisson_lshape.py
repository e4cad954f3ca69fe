"""Write Poisson_Lshape_fd.npz: a converged finite-difference reference for the L-shaped Poisson problem.

-Δu = 1 on [-1, 1]² minus [0, 1]², u = 0 on the boundary: the five-point
Laplacian on a 641 × 641 grid (h = 1/320), solved by conjugate gradients to a
relative residual of 1e-13, then every 4th point kept (161 × 161, h = 1/80).
Values in the removed quadrant are NaN. Grid convergence (relative L2 on the
coarse points): h = 1/80 vs 1/320 8.1e-4, 1/160 vs 1/320 2.3e-4 (the
re-entrant corner's r^(2/3) singularity limits the order to about 4/3), so the
file is accurate to about 2e-4.

Why not only DeepXDE's `Poisson_Lshape.npz` (the shared reference data): its
values are 0.90–0.94 of this solution (relative L2 difference 9.2e-2, its
maximum 0.134 against 0.149 here and from a trained PINN); it cannot judge a
solver to better than about 0.1. Run from this folder: `python make_poisson_lshape.py`
(NumPy only, deterministic, about 10 s).
"""

import numpy as np

N = 640
KEEP = 4


def solve(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h = 2 / n
    x = np.linspace(-1, 1, n + 1)
    X, Y = np.meshgrid(x, x, indexing="ij")
    inside = (np.abs(X) < 1 - 1e-12) & (np.abs(Y) < 1 - 1e-12) & ~((X > -1e-12) & (Y > -1e-12))

    def apply(u: np.ndarray) -> np.ndarray:
        v = np.where(inside, u, 0.0)
        r = 4 * v
        r[1:] -= v[:-1]
        r[:-1] -= v[1:]
        r[:, 1:] -= v[:, :-1]
        r[:, :-1] -= v[:, 1:]
        return np.where(inside, r / (h * h), 0.0)

    b = np.where(inside, 1.0, 0.0)
    u = np.zeros_like(b)
    r = b - apply(u)
    p, rs = r.copy(), float((r * r).sum())
    r0 = rs
    for _ in range(50_000):
        Ap = apply(p)
        alpha = rs / float((p * Ap).sum())
        u += alpha * p
        r -= alpha * Ap
        rn = float((r * r).sum())
        if rn < 1e-26 * r0:
            break
        p = r + rn / rs * p
        rs = rn
    return x, u, (X > 1e-12) & (Y > 1e-12)


x, u, removed = solve(N)
x, u, removed = x[::KEEP], u[::KEEP, ::KEEP].copy(), removed[::KEEP, ::KEEP]
u[removed] = np.nan
np.savez_compressed("Poisson_Lshape_fd.npz", x=x, y=x, u=u)
