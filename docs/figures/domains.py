"""Draws docs/figures/domains.png: points pdec samples in five example domains.

Each panel shows interior points (grey) and boundary points (blue) with their
outward unit normals on a subsample. The domains are built from the contract's
classes and sampled by `pdec.geometry`, as the training sampler does. Run from
anywhere (numpy and matplotlib only, besides pdec):

    python docs/figures/domains.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pdec.contract import (
    BallDomain,
    BoxDomain,
    CSGDomain,
    HalfspaceDomain,
    PolygonDomain,
)
from pdec.geometry import CSGGeometry, geometry_of

INTERIOR, BOUNDARY, ARROWS = 1500, 400, 70
SEED = 0
OUT = Path(__file__).with_suffix(".png")

_angles = np.pi / 2 + 2 * np.pi * np.arange(5) / 5
DOMAINS = {
    "L-shape\n(difference of boxes)": CSGDomain(
        "difference", (BoxDomain((-1, -1), (1, 1)), BoxDomain((0, 0), (1, 1)))
    ),
    "annulus\n(difference of balls)": CSGDomain(
        "difference", (BallDomain((0, 0), 1.0), BallDomain((0, 0), 0.5))
    ),
    "plate with a hole\n(box minus ball)": CSGDomain(
        "difference", (BoxDomain((0, 0), (1, 1)), BallDomain((0.5, 0.5), 0.2))
    ),
    "pentagon\n(polygon)": PolygonDomain(
        tuple((float(np.cos(a)), float(np.sin(a))) for a in _angles)
    ),
    "disk ∩ halfspace x + y ≤ 0.5\n(intersection)": CSGDomain(
        "intersection", (BallDomain((0, 0), 1.0), HalfspaceDomain((1, 1), 0.5))
    ),
}


def measures(geometry) -> tuple[float, float]:
    """Area and boundary length (Monte Carlo estimates on composites, exact otherwise)."""
    if isinstance(geometry, CSGGeometry):
        return geometry.volume_estimate[0], geometry.boundary_estimate[0]
    return geometry.volume(), geometry.boundary_measure()


def main() -> None:
    fig, axes = plt.subplots(1, len(DOMAINS), figsize=(15, 3.6))
    for k, (ax, (title, domain)) in enumerate(zip(axes, DOMAINS.items())):
        geometry = geometry_of(domain)
        rng = np.random.default_rng(SEED + k)
        inside = geometry.sample_interior(INTERIOR, rng)
        points, normals = geometry.sample_boundary(BOUNDARY, rng)
        lo, hi = geometry.bounds
        size = float(np.max(hi - lo))
        ax.scatter(*inside.T, s=1.5, c="0.6", linewidths=0)
        ax.scatter(*points.T, s=4, c="tab:blue", linewidths=0)
        show = rng.choice(len(points), size=ARROWS, replace=False)
        ax.quiver(
            *points[show].T, *normals[show].T,
            color="tab:red", angles="xy", scale_units="xy", scale=1 / (0.09 * size), width=0.006,
        )  # fmt: skip
        area, length = measures(geometry)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"area {area:.3f}, boundary {length:.3f}", fontsize=8)
        margin = 0.15 * size
        ax.set_xlim(lo[0] - margin, hi[0] + margin)
        ax.set_ylim(lo[1] - margin, hi[1] + margin)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(OUT, dpi=100)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
