"""Domains and where to draw points from them (NumPy only).

One implementation serves the front end's checks and the solver's samplers.
Boundary points come with outward unit normals, faces in proportion to their
measure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pdec.contract import BallDomain, Domain


@dataclass(frozen=True)
class BoxGeometry:
    lo: np.ndarray
    hi: np.ndarray

    @property
    def dim(self) -> int:
        return len(self.lo)

    def sample_interior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.lo + (self.hi - self.lo) * rng.random((n, self.dim))

    def face_measures(self) -> np.ndarray:
        """Measure of the face x_i = lo_i (and of x_i = hi_i), per axis."""
        widths = self.hi - self.lo
        if self.dim == 1:
            return np.ones(1)
        return np.array([np.prod(np.delete(widths, i)) for i in range(self.dim)])

    def sample_face(self, axis: int, side: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        points = self.sample_interior(n, rng)
        points[:, axis] = self.hi[axis] if side else self.lo[axis]
        normals = np.zeros_like(points)
        normals[:, axis] = 1.0 if side else -1.0
        return points, normals

    def sample_boundary(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        measures = np.repeat(self.face_measures(), 2)  # (axis 0 lo, axis 0 hi, axis 1 lo, ...)
        faces = rng.choice(len(measures), size=n, p=measures / measures.sum())
        points = self.sample_interior(n, rng)
        normals = np.zeros_like(points)
        axis, side = faces // 2, faces % 2
        rows = np.arange(n)
        points[rows, axis] = np.where(side == 1, self.hi[axis], self.lo[axis])
        normals[rows, axis] = np.where(side == 1, 1.0, -1.0)
        return points, normals


@dataclass(frozen=True)
class BallGeometry:
    center: np.ndarray
    radius: float

    @property
    def dim(self) -> int:
        return len(self.center)

    def sample_interior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        directions = _unit(rng.standard_normal((n, self.dim)))
        radii = self.radius * rng.random(n) ** (1.0 / self.dim)
        return self.center + directions * radii[:, None]

    def sample_boundary(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        normals = _unit(rng.standard_normal((n, self.dim)))
        return self.center + self.radius * normals, normals


Geometry = BoxGeometry | BallGeometry


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def geometry_of(domain: Domain) -> Geometry:
    """The sampler of a contract domain (`pdec.contract.BoxDomain` or `BallDomain`)."""
    if isinstance(domain, BallDomain):
        return BallGeometry(np.asarray(domain.center, dtype=float), float(domain.radius))
    return BoxGeometry(np.asarray(domain.lo, dtype=float), np.asarray(domain.hi, dtype=float))
