"""Two-level KFAC (`kfac2l`; Koroko et al. 2023): KFAC's block-diagonal
preconditioner plus a coarse-space correction for the couplings between
layers that the block diagonal drops.

Why: KFAC's blocks ignore the Gauss–Newton matrix between layers; a coarse
space with one vector per layer recovers the part of the solution along
those vectors exactly, as the coarse level of a two-level domain
decomposition method does for the couplings between subdomains. The
correction is ``Rᵀ β`` with ``β = (R(G + λI)Rᵀ)⁻¹ R v``, one coarse vector
per layer (``coarse_space``: ``nicolaides``, the all-ones vector on the
layer; ``residual``, the layer's KFAC-preconditioned residual
``F_i⁻¹ (∇ − (G + λI) x)_i``). The coarse matrix takes one Jacobian–vector
product per layer (exact Gauss–Newton products). ``coarse_correction``
picks ``v``: ``multiplicative`` (the default), the residual
``∇ − (G + λI) x`` of the KFAC solution ``x`` — the Galerkin coarse-grid
correction, so the error in the ``G + λI`` norm never grows; ``additive``,
``v = ∇``, the paper's additive form ``P = F_KFAC⁻¹ + Rᵀ(R(G+λI)Rᵀ)⁻¹R``,
which on PINN losses can increase that error (tests/runtime/test_kfac.py).
The step along the corrected direction is `kfac`'s (momentum, line search).
"""

from __future__ import annotations

import torch
from torch import Tensor

from pdec.contract import COARSE_CORRECTIONS, COARSE_SPACES, TrainingSettings
from pdec.runtime.curvature import GNLinearization
from pdec.runtime.kfac import KFAC
from pdec.runtime.kronecker import BlockDiagonalInverse
from pdec.runtime.linesearch import gn_axpy


def gn_damped_matvec(lin: GNLinearization, damping: float, vs: list[Tensor], vp: Tensor):
    """``(G + λI) v`` with the exact Gauss–Newton matrix (one JVP, one VJP)."""
    gs, gp = lin.vjp(lin.jvp(vs, vp))
    return gn_axpy(damping, vs, vp, gs, gp)


def two_level_correction(
    lin: GNLinearization,
    inverse: BlockDiagonalInverse,
    damping: float,
    grad,
    x,
    coarse_space: str = "nicolaides",
    mode: str = "multiplicative",
):
    """The coarse correction ``Rᵀ (R(G + λI)Rᵀ)⁻¹ R v`` with one coarse vector
    per layer; returns ``(xs, xp)`` and the coarse matrix.

    ``additive``: ``v = ∇`` (``P = F_KFAC⁻¹ + Rᵀ(R(G+λI)Rᵀ)⁻¹R``);
    ``multiplicative``: ``v = ∇ − (G + λI) x_KFAC``, the coarse-grid
    correction of the KFAC solution: the Galerkin projection, so the error
    ``‖x − x*‖`` in the ``G + λI`` norm never grows (the additive form can
    make it grow, and does on the PINN losses in tests/runtime/test_kfac.py)."""
    gs, gp = grad
    rs = None
    if mode == "multiplicative" or coarse_space == "residual":
        Fx, Fxp = gn_damped_matvec(lin, damping, *x)
        rs, _ = gn_axpy(-1.0, Fx, Fxp, gs, gp)
    if coarse_space == "nicolaides":
        Z = [torch.ones_like(g) for g in gs]
    elif coarse_space == "residual":
        Z = [b @ r for b, r in zip(inverse.blocks, rs)]
        Z = [z / z.abs().max().clamp_min(1e-300) for z in Z]
    else:
        raise ValueError(f"Invalid `coarse_space` `{coarse_space}`. Supported: {', '.join(COARSE_SPACES)}.")
    zero_p = gp.new_zeros(gp.shape)
    cols = []
    for i in range(len(Z)):
        vs = [z if j == i else torch.zeros_like(z) for j, z in enumerate(Z)]
        cols.append(lin.jvp(vs, zero_p))
    JZ = torch.stack(cols, dim=1)
    C = JZ.T @ JZ + damping * torch.diag(torch.stack([z.square().sum() for z in Z]))
    if mode not in COARSE_CORRECTIONS:
        raise ValueError(f"Invalid two-level mode `{mode}`. Supported: {', '.join(COARSE_CORRECTIONS)}.")
    v = gs if mode == "additive" else rs
    rhs = torch.stack([(z * g).sum() for z, g in zip(Z, v)])
    # gelsd, not the CPU default gelsy: gelsy's result varies in the last bit from call to call
    # (with the memory it gets), and every rank of a distributed run must take the same step
    driver = "gelsd" if C.device.type == "cpu" else None
    beta = torch.linalg.lstsq(C, rhs.unsqueeze(1), driver=driver).solution[:, 0]
    return [b * z for b, z in zip(beta, Z)], zero_p, C


class TwoLevelKFAC(KFAC):
    """`kfac2l`: `kfac` whose direction is the KFAC solution plus the coarse
    correction of `two_level_correction` (Koroko et al. 2023): one coarse
    vector per layer recovers the coupling between layers that the
    block-diagonal KFAC drops.

    >>> import pdec
    >>> result = pdec.solve("specs/poisson2d.yaml", optimizer="kfac2l", steps=50)  # doctest: +SKIP
    """

    name = "kfac2l"

    def __init__(self, problem, settings: TrainingSettings) -> None:
        super().__init__(problem, settings)
        self.coarse_space = settings.coarse_space
        if self.coarse_space not in COARSE_SPACES:
            raise ValueError(
                f"Invalid `coarse_space` `{self.coarse_space}`. Supported: {', '.join(COARSE_SPACES)}."
            )
        self.coarse_correction = settings.coarse_correction
        if self.coarse_correction not in COARSE_CORRECTIONS:
            raise ValueError(
                f"Invalid `coarse_correction` `{self.coarse_correction}`. Supported: {', '.join(COARSE_CORRECTIONS)}."
            )

    def direction(self, lin, inverse, grad):
        x = inverse @ grad
        cs, cp, _ = two_level_correction(lin, inverse, self.damping, grad, x, self.coarse_space, self.coarse_correction)
        return gn_axpy(1.0, cs, cp, *x)
