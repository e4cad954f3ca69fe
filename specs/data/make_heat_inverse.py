"""Write heat_inverse.csv: noise-free observations of the 1D heat solution.

u(x, t) = exp(-kappa pi^2 t) sin(pi x) with the true kappa = 0.25, at 300
points drawn uniformly from [0, 1] x [0, 1] with a fixed seed. Run from this
folder: `python make_heat_inverse.py` (NumPy only; the output is deterministic).
"""

import numpy as np

KAPPA = 0.25
ROWS = 300

rng = np.random.default_rng(20240)
x = rng.uniform(0.0, 1.0, ROWS)
t = rng.uniform(0.0, 1.0, ROWS)
u = np.exp(-KAPPA * np.pi**2 * t) * np.sin(np.pi * x)
with open("heat_inverse.csv", "w", newline="\n") as f:
    f.write("x,t,u\n")
    for row in zip(x, t, u):
        f.write(",".join(repr(float(v)) for v in row) + "\n")
