"""Energy natural gradient descent (ENGD; Müller & Zeinhofer, ICML 2023).

The step solves the Gauss–Newton system of all stacked weighted residuals,
``(J̃ᵀJ̃ + λI) Δ = J̃ᵀ r̃``. Why this matrix: for the PINN loss, ``J̃ᵀJ̃`` is
the energy natural gradient's Gramian ``G_ij = D²E(u_θ)(∂_i u_θ, ∂_j u_θ)``
(exactly for linear PDEs, in its Gauss–Newton form otherwise), so ``Δ`` is
the function-space Newton step projected onto the network's tangent space
(Müller & Zeinhofer 2023). The step size is searched on the grid
2^0 … 2^-30 on the loss. ``J̃`` comes from the Taylor streams
(``curvature.py``), never from ``torch.func.jacrev``. With at least as many
residuals as parameters the system is solved as the damped least-squares
problem ``[J̃; √λ I] Δ ≈ [r̃; 0]`` (on J̃ itself, so the conditioning is not
squared); with fewer, in sample space by the Woodbury identity,
``Δ = J̃ᵀ (J̃J̃ᵀ + λI)⁻¹ r̃`` (Guzmán-Cordero et al. 2025).

Dense: O(D²) memory and O(D³) time, so networks above
``GN_MAX_PARAMETERS`` (10⁴) parameters are refused; use `kfac` there.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pdec.contract import TrainingSettings
from pdec.runtime.curvature import gn_linearize, gn_one_thread
from pdec.runtime.linesearch import gn_line_search, gn_unflatten
from pdec.runtime.protocol import Optimizer

GN_MAX_PARAMETERS = 10_000
"""ENGD builds the dense Gramian (or kernel): beyond this it refuses."""


def engd_solve(J: Tensor, r: Tensor, damping: float) -> Tensor:
    """``(JᵀJ + λI)⁻¹ Jᵀ r`` (minimum-norm least squares when λ = 0)."""
    N, D = J.shape
    if N >= D:
        if damping > 0:
            eye = torch.eye(D, dtype=J.dtype, device=J.device) * damping**0.5
            J = torch.cat([J, eye])
            r = torch.cat([r, r.new_zeros(D)])
        return torch.linalg.lstsq(J, r.unsqueeze(1), driver="gelsd" if J.device.type == "cpu" else None).solution[:, 0]
    e, U = torch.linalg.eigh(J @ J.T)
    e = e.clamp_min(0) + damping
    keep = e > e.max() * 1e-15 * N
    alpha = U[:, keep] @ ((U[:, keep].T @ r) / e[keep])
    return J.T @ alpha


class ENGD(Optimizer):
    """Energy natural gradient: the full Gauss–Newton step plus a grid line search.

    >>> import pdec
    >>> result = pdec.solve("specs/poisson2d.yaml", optimizer="engd", steps=50)  # doctest: +SKIP
    """

    name = "engd"

    def __init__(self, problem, settings: TrainingSettings) -> None:
        super().__init__(problem, settings)
        D = sum(p.numel() for p in problem.model.parameters()) + sum(p.numel() for p in problem.parameters.values())
        if D > GN_MAX_PARAMETERS:
            raise ValueError(
                f"optimizer `engd` builds the dense {D}×{D} Gauss–Newton matrix; networks above "
                f"{GN_MAX_PARAMETERS} parameters are not supported. Use `kfac` (or `kfac*`) instead."
            )
        self.damping = float(settings.damping)
        self.steps = 0

    def gramian(self, residual_fn, weights) -> Tensor:
        """The dense Gauss–Newton matrix ``J̃ᵀJ̃`` (float64), for tests."""
        J = gn_linearize(self.problem, residual_fn, weights).jacobian()
        return J.T @ J

    def step(self, residual_fn, weights):
        lin = gn_linearize(self.problem, residual_fn, weights)
        J, r = lin.jacobian(), lin.residual()
        with gn_one_thread():
            delta = engd_solve(J, r, self.damping)
        vs, vp = gn_unflatten(-delta, lin.shapes, lin.n_pde)
        eta, total, losses = gn_line_search(self.problem, residual_fn, weights, vs, vp, current=lin.total)
        self.steps += 1
        self.info = {"damping": self.damping, "step_size": eta, "rows": float(J.shape[0])}
        return total, losses

    def recover(self, step: int) -> None:
        """ENGD keeps no curvature between steps: only the count restarts."""
        self.steps = 0

    def state_dict(self) -> dict:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])
