"""Evaluation points and the relative L2 error against `exact` or `reference`.

Problems with at most three inputs are evaluated on a tensor grid (kept for
plots); larger ones on a fixed random set. Reference data is either a tensor
grid (one 1-D array per variable, values ``usol`` or named after the unknown)
or scattered points (``X_test``, ``y_ref``).
"""

from __future__ import annotations

import numpy as np
import torch

from pdec.contract import OutputSettings, ProblemDef
from pdec.geometry import BoxGeometry, contains, geometry_of
from pdec.points import read_reference

MAX_GRID_POINTS = 60_000
EVAL_SEED = 12345
OUTLINE_GRID = 301
OUTLINE_MARGIN = 0.02


class Evaluator:
    """Fixed evaluation points ``X``, true values, and the grid shape if any."""

    def __init__(self, definition: ProblemDef, output: OutputSettings, *, dtype: torch.dtype, device) -> None:
        self.definition = definition
        self.output = output
        self.variables = list(definition.variables)
        self.unknowns = list(definition.unknowns)
        self.grid_axes: list[np.ndarray] | None = None
        self.truth: dict[str, np.ndarray] = {}
        if definition.reference:
            X, self.truth, self.grid_axes = read_reference(definition.reference, self.variables, self.unknowns)
            geometry = geometry_of(definition.domain)
            if not isinstance(geometry, BoxGeometry):  # points outside the domain (NaN in the file) are not its
                inside = contains(geometry, X[:, : geometry.dim], 1e-9)
                X, self.truth = X[inside], {u: v[inside] for u, v in self.truth.items()}
        else:
            X = self._points()
            if definition.exact:
                Xt = torch.as_tensor(X, dtype=torch.float64)
                self.truth = {u: fn(Xt).detach().numpy().reshape(-1) for u, fn in definition.exact.items()}
        self.X_np = X
        self.X = torch.as_tensor(X, dtype=dtype, device=device)

    @property
    def has_truth(self) -> bool:
        return bool(self.truth)

    def _points(self) -> np.ndarray:
        definition = self.definition
        geometry = geometry_of(definition.domain)
        bounds = [(float(lo), float(hi)) for lo, hi in zip(*geometry.bounds)]
        if definition.time_interval:
            bounds.append(tuple(definition.time_interval))
        d = len(bounds)
        per_axis = min(self.output.grid, int(MAX_GRID_POINTS ** (1.0 / d)))
        if d <= 3 and per_axis >= 2:
            self.grid_axes = [np.linspace(lo, hi, per_axis) for lo, hi in bounds]
            grid = np.stack(np.meshgrid(*self.grid_axes, indexing="ij"), axis=-1).reshape(-1, d)
            if isinstance(geometry, BoxGeometry):
                return grid
            return grid[contains(geometry, grid[:, : geometry.dim])]  # the grid masked to the domain
        rng = np.random.default_rng(EVAL_SEED)
        n = self.output.eval_points
        space = geometry.sample_interior(n, rng)
        if definition.time_interval:
            t0, t1 = definition.time_interval
            space = np.hstack([space, t0 + (t1 - t0) * rng.random((n, 1))])
        return space

    def outline(self) -> dict[str, np.ndarray]:
        """For plots of a plane domain other than a box: its signed function on a grid over its
        bounding box and a margin (``outline_x``, ``outline_y``, ``outline_signed``; the outline is
        the zero level, the domain where it is negative); nothing for other domains. The margin
        (`OUTLINE_MARGIN` of the box's width on each side) puts positive values beyond the edges
        that lie on the bounding box: on the box itself the signed function is 0 there, and a
        contour of the zero level dropped those edges (the L-shape was drawn as a square)."""
        geometry = geometry_of(self.definition.domain)
        if geometry.dim != 2 or isinstance(geometry, BoxGeometry):
            return {}
        lo, hi = geometry.bounds
        pad = OUTLINE_MARGIN * (hi - lo)
        x, y = (np.linspace(a, b, OUTLINE_GRID) for a, b in zip(lo - pad, hi + pad))
        grid = np.stack(np.meshgrid(x, y, indexing="ij"), axis=-1).reshape(-1, 2)
        return {"outline_x": x, "outline_y": y, "outline_signed": geometry.signed(grid).reshape(len(x), len(y))}

    @torch.no_grad()
    def predict(self, solution, batch: int = 65536) -> np.ndarray:
        """The unknowns at the evaluation points, ``[M, n_unknowns]``; ``solution`` is
        `Problem.solution` (``X -> [N, n_unknowns]``)."""
        parts = [solution(self.X[i : i + batch]) for i in range(0, len(self.X), batch)]
        return torch.cat(parts).double().cpu().numpy()

    def rel_l2(self, prediction: np.ndarray) -> dict[str, float]:
        """``‖u − u*‖ / ‖u*‖`` per unknown with a truth, over the points where the truth is finite
        (an `exact` such as ``1/x`` is infinite on part of the boundary). NaN (null in the JSON)
        where it is undefined: a truth that is zero everywhere (``u: 0``) has no relative error,
        and dividing by a tiny floor gave 1e300."""
        errors = {}
        for j, u in enumerate(self.unknowns):
            if u in self.truth:
                finite = np.isfinite(self.truth[u])
                true, guess = self.truth[u][finite], prediction[finite, j]
                scale = np.linalg.norm(true)
                errors[u] = float(np.linalg.norm(guess - true) / scale) if scale > 0 else float("nan")
        return errors

