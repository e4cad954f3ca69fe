"""Collocation points for every point set of a problem.

All randomness comes from one NumPy generator (its state is checkpointed, so
a resumed run draws the same points). Faces and clauses get points in
proportion to their measure; clauses with a filter (``x = 0 and y > 0.5``)
are sampled by rejection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pdec.contract import ProblemDef, Term, TrainingSettings
from pdec.errors import PdecError
from pdec.geometry import BoxGeometry, draw_until, geometry_of, next_batch
from pdec.points import read_points

MAX_REJECTION_ROUNDS = 100
SHARE_SAMPLES, SHARE_SEED = 100_000, 20240229
"""Points (a generator of their own, so the training draws do not move) behind the share of a
region that a clause's filter keeps."""
RAD_CANDIDATES = 8
"""`rar-d`: candidate points per interior point drawn."""
RAD_K, RAD_C = 1.0, 1.0
"""`rar-d`'s density ``p ∝ εᵏ / mean(εᵏ) + c`` with ``ε = r²``."""


def residual_density(eps: np.ndarray, k: float = RAD_K, c: float = RAD_C) -> np.ndarray:
    """Residual-based adaptive distribution (RAD; Wu, Zhu, Tan, Kartha & Lu 2023, CMAME 403):
    the probability of each candidate, ``p ∝ εᵏ / mean(εᵏ) + c``, with ``ε`` the equations'
    squared residual there (so Wu et al.'s k = 2 on ``|r|``, c = 1). Why: a uniform draw puts
    few points where the residual is large (a shock, a thin layer), and a fixed set is fitted
    between its points; drawing where
    ``ε`` is large puts the points where the error comes from, and ``c`` keeps every region
    sampled. Non-finite residuals count as the largest finite one."""
    e = np.asarray(eps, dtype=np.float64)
    finite = e[np.isfinite(e)]
    e = np.where(np.isfinite(e), e, finite.max() if finite.size else 1.0) ** k
    e = e / e.max() if e.max() > 0 else e  # scaled first: the mean of huge values must not overflow
    mean = e.mean()
    p = (e / mean if mean > 0 else np.zeros_like(e)) + c
    return p / p.sum()


@dataclass
class Batch:
    """Points of one point set: inputs, outward normals (conditions), pairs (periodic)."""

    X: torch.Tensor
    normals: torch.Tensor | None = None
    partner: torch.Tensor | None = None
    observed: torch.Tensor | None = None
    """Observed values, one column per name in ``observed_names`` (data terms)."""
    observed_names: tuple[str, ...] = ()


def _split(n: int, weights: list[float]) -> list[int]:
    """``n`` points split in proportion to ``weights`` (largest remainders)."""
    w = np.asarray(weights, dtype=float)
    exact = n * w / w.sum()
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts))[: n - counts.sum()]:
        counts[i] += 1
    return counts.tolist()


class Sampler:
    """Draws every point set of a problem (interior, conditions, periodic pairs, data)."""

    def __init__(
        self,
        definition: ProblemDef,
        training: TrainingSettings,
        *,
        dtype: torch.dtype,
        device,
        seed: int,
        points: int | None = None,
    ) -> None:
        """``points``: draw this many points in every set, ignoring the settings (diagnostics)."""
        self.points = points
        self.definition = definition
        self.dtype, self.device = dtype, device
        self.geometry = geometry_of(definition.domain)
        self.time = definition.time_interval
        self.rng = np.random.default_rng(seed)
        self.training = training
        self._sobol = None
        if self.training.sampler == "sobol":
            self._sobol = torch.quasirandom.SobolEngine(self._n_inputs(), scramble=True, seed=seed)
        self.data = {t.name: self._read_data(t) for t in definition.terms_of("data")}
        self._shares: dict[int, float] = {}

    def _n_inputs(self) -> int:
        return self.geometry.dim + (1 if self.time else 0)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(array), dtype=self.dtype, device=self.device)

    def _times(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        t0, t1 = self.time
        return t0 + (t1 - t0) * (rng or self.rng).random((n, 1))

    # -- point sets --------------------------------------------------------
    def interior(self, n: int) -> Batch:
        if self._sobol is not None:
            return Batch(self._tensor(self._sobol_interior(n)))
        space = self.geometry.sample_interior(n, self.rng)
        X = np.hstack([space, self._times(n)]) if self.time else space
        return Batch(self._tensor(X))

    def _sobol_interior(self, n: int) -> np.ndarray:
        """Scrambled Sobol points of the bounding box (and time interval); for other shapes than a
        box, those inside, in order (a Sobol sequence thinned by a fixed set stays low-discrepancy)."""
        lo, hi = self.geometry.bounds
        lo = np.concatenate([lo, [self.time[0]] if self.time else []])
        hi = np.concatenate([hi, [self.time[1]] if self.time else []])
        if isinstance(self.geometry, BoxGeometry):
            return lo + (hi - lo) * self._sobol.draw(n).to(torch.float64).numpy()
        d = self.geometry.dim

        def draw(batch: int) -> tuple[np.ndarray]:
            X = lo + (hi - lo) * self._sobol.draw(batch).to(torch.float64).numpy()
            return (X[self.geometry.signed(X[:, :d]) < 0],)

        (X,) = draw_until(n, draw, MAX_REJECTION_ROUNDS)
        if len(X) < n:
            raise PdecError("the domain is too small a part of its bounding box to sample")
        return X

    def _support_measure(self, support) -> float:
        """A clause's weight in splitting its condition's points: the measure of what it selects.
        With a filter (``x = 0 and y > 0.5``; on a composite domain every part of the boundary
        is one) the region's measure times the share of `SHARE_SAMPLES` of its points the filter
        keeps: ``x = -1 or x = 0`` on the L-shape splits 2 : 1, as the edges' lengths do."""
        g, region = self.geometry, support.region
        if region == "point":  # points share a condition's points equally (selectors never mix them with faces)
            return 1.0
        if region == "initial":
            measure = float(g.volume())
        else:
            measure = float(g.face_measures()[support.axis]) if region == "face" else float(g.boundary_measure())
            measure *= (self.time[1] - self.time[0]) if self.time else 1.0
        if support.keep is not None and id(support) not in self._shares:
            X, _ = self._draw_support(region, support.axis, support.side, SHARE_SAMPLES, rng=np.random.default_rng(SHARE_SEED))
            kept = float(support.keep(torch.as_tensor(X)).numpy().mean())
            self._shares[id(support)] = max(kept, 1.0 / SHARE_SAMPLES)  # none seen: below the estimate's resolution
        return measure * self._shares.get(id(support), 1.0)

    def _draw_support(self, region: str, axis, side, n: int, point=None, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        g, rng = self.geometry, rng or self.rng
        if region == "point":
            space, normals = np.tile(np.asarray(point, dtype=float), (n, 1)), np.zeros((n, g.dim))
            return (np.hstack([space, self._times(n, rng)]) if self.time else space), normals
        if region == "initial":
            space, normals = g.sample_interior(n, rng), np.zeros((n, g.dim))
            X = np.hstack([space, np.full((n, 1), self.time[0])])
            return X, normals
        if region == "face":
            space, normals = g.sample_face(axis, side, n, rng)
        else:
            space, normals = g.sample_boundary(n, rng)
        X = np.hstack([space, self._times(n, rng)]) if self.time else space
        return X, normals

    def condition(self, term: Term, n: int) -> Batch:
        supports = term.supports
        if not self.time and term.points is None and self.points is None and all(s.region == "point" for s in supports):
            n = len(supports)  # a steady condition at points: one row each (copies would change nothing)
        counts = _split(n, [self._support_measure(s) for s in supports]) if len(supports) > 1 else [n]
        xs, ns = [], []
        for support, count in zip(supports, counts):
            keep = support.keep
            got_x, got_n, have, drawn = [], [], 0, 0
            for _ in range(MAX_REJECTION_ROUNDS):
                if have >= count:
                    break
                # twice what is left, then enough at the acceptance rate so far (a small part of the boundary)
                batch = max(2 * (count - have), 16) if not drawn else next_batch(count - have, have, drawn)
                X, N = self._draw_support(support.region, support.axis, support.side, batch, support.point)
                drawn += batch
                if keep is not None:
                    mask = keep(torch.as_tensor(X)).numpy()
                    X, N = X[mask], N[mask]
                got_x.append(X)
                got_n.append(N)
                have += len(X)
            else:
                raise PdecError(f"condition `{term.name}`: its selector accepts almost no sampled points")
            xs.append(np.vstack(got_x)[:count])
            ns.append(np.vstack(got_n)[:count])
        return Batch(self._tensor(np.vstack(xs)), self._tensor(np.vstack(ns)))

    def periodic(self, term: Term, n: int) -> Batch:
        """Pairs of points on the low and high face of the periodic axis."""
        axis = term.periodic_axis
        lo_pts, _ = self._draw_support("face", axis, 0, n)
        hi_pts = lo_pts.copy()
        hi_pts[:, axis] = self.geometry.hi[axis]
        return Batch(self._tensor(lo_pts), partner=self._tensor(hi_pts))

    def _read_data(self, term: Term) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """Observation points ``X`` (variable columns) and values (observed unknown columns), read
        by the same rules as at `pdec check` (the file may have changed since)."""
        mapping = dict(term.data.columns)
        observed = [u for u in self.definition.unknowns if u in mapping]
        names = [mapping[v] for v in self.definition.variables] + [mapping[u] for u in observed]
        try:
            table = read_points(term.data.path, names)
        except PdecError as exc:
            raise PdecError(f"the data file of condition `{term.name}`: {exc}") from None
        d = len(self.definition.variables)
        return self._tensor(table[:, :d]), self._tensor(table[:, d:]), observed

    def adaptive_interior(self, n: int, residual) -> Batch:
        """`rar-d`: ``n`` of ``RAD_CANDIDATES·n`` uniform candidates, drawn without replacement
        with `residual_density` of ``residual(X) -> ε [M]``."""
        candidates = self.interior(RAD_CANDIDATES * n).X
        p = residual_density(residual(candidates).detach().double().cpu().numpy())
        keep = np.sort(self.rng.choice(len(p), size=n, replace=False, p=p))
        return Batch(candidates[torch.as_tensor(keep, device=candidates.device)])

    def draw(self, residual=None) -> dict[str, Batch]:
        """One batch for every point set: ``interior`` and one per condition. With the
        `rar-d` sampler and ``residual`` (``X -> ε``; the trainer's, once there is a
        network to ask), the interior points follow the residual."""
        points = self.training.points
        n = self.points or points.interior
        if self.training.sampler == "rar-d" and residual is not None:
            batches = {"interior": self.adaptive_interior(n, residual)}
        else:
            batches = {"interior": self.interior(n)}
        for term in self.definition.terms:
            n = self.points or term.points or (points.initial if term.kind == "initial" else points.boundary)
            if term.kind in ("boundary", "initial"):
                batches[term.point_set] = self.condition(term, n)
            elif term.kind == "periodic":
                batches[term.point_set] = self.periodic(term, n)
            elif term.kind == "data":
                X, values, names = self.data[term.name]
                batches[term.point_set] = Batch(X, observed=values, observed_names=tuple(names))
        return batches

    def state_dict(self) -> dict:
        state = {"rng": self.rng.bit_generator.state}
        if self._sobol is not None:
            state["sobol"] = self._sobol.num_generated
        return state

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        if self._sobol is not None:
            self._sobol.reset()
            self._sobol.fast_forward(state["sobol"])

