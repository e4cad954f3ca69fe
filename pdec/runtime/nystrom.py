"""Randomized Nyström approximation of a PSD matrix, and the damped solve with it.

Sketched ENGD (Guzmán-Cordero, Dangel, Goldshlager & Zeinhofer 2025, "Improving
energy natural gradient descent through Woodbury, momentum, and randomization",
§ on randomization) replaces the exact kernel ``K = J̃J̃ᵀ`` (N×N; or the Gramian
``J̃ᵀJ̃`` when there are fewer parameters than residuals) in the ENGD step
``Δ = J̃ᵀ (K + λI)⁻¹ r̃`` by a rank-``s`` Nyström approximation. Only ``s``
products with ``K`` are needed, ``Y = KΩ = J̃(J̃ᵀΩ)``, O(N·D·s) flops, and ``K``
itself is never formed (exact: O(N²D) for ``K`` and O(N³) for its Cholesky).

The approximation is the stable single-pass one (Tropp, Yurtsever, Udell & Cevher
2017, Alg. 3; Frangella, Tropp & Udell 2023, Alg. 2.1):

1. ``Ω``: an n×s Gaussian matrix, orthonormalized (QR);
2. ``Y = KΩ`` and the shift ``ν = √n · ε · ‖Y‖_F`` (ε the dtype's rounding unit),
   ``Y_ν = Y + νΩ``: the Nyström approximation of ``K + νI``, whose core
   ``ΩᵀY_ν`` is safely positive definite;
3. ``ΩᵀY_ν = LLᵀ`` (Cholesky), ``B = Y_ν L⁻ᵀ``, so that
   ``K̂_ν = Y_ν (ΩᵀY_ν)⁻¹ Y_νᵀ = BBᵀ``;
4. the thin SVD ``B = U Σ Vᵀ`` and ``Λ̂ = Σ² − ν``: ``K̂ = U Λ̂ Uᵀ``, the shift
   taken off again. Eigenvalues below ``10ν`` are dropped with their vectors: they are
   rounding (the sketch met ``K``'s null space, s > rank K), and kept, their vectors —
   only approximately orthogonal to ``K``'s range — divided by λ ~ 1e-8 would add an
   error 100× the exact solve's (measured: 1.7e-3 against 3.9e-5 relative, rank 20, s = 25).

``K̂`` equals ``Y (ΩᵀKΩ)⁺ Yᵀ``: exact when ``rank K ≤ s`` (range of ``Ω``'s
image covers that of ``K``), and otherwise within a small multiple of the best
rank-``s`` error ``Σ_{j>s} λ_j`` in expectation (Tropp et al. 2017) — good when the
spectrum decays fast, as PINN kernels do. Costs beyond the ``s`` products:
O(n s²) (QR, triangular solve, SVD of an n×s matrix).

The damped inverse by Woodbury on the rank-``s`` factor (``U`` orthonormal):

    (K̂ + λI)⁻¹ b = U (Λ̂ + λ)⁻¹ Uᵀ b + (b − UUᵀb) / (λ + τ)

with ``τ = 0`` for ``(K̂ + λI)⁻¹`` itself (sketch-and-solve, the paper's). ``τ > 0``
treats the unresolved part of the spectrum as if its eigenvalues were ``τ``; the
Nyström preconditioner of Frangella et al. 2023 takes ``τ = λ̂_s``, the smallest
kept eigenvalue (`nystrom_solve`'s ``tail``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

CHOLESKY_TRIES = 6
NOISE = 10.0
"""Eigenvalues up to this many shifts ν are rounding (of the shift's size): dropped."""


@dataclass
class NystromApprox:
    """``K̂ = U diag(eigenvalues) Uᵀ``: ``U`` [n, k] orthonormal (k ≤ s: rounding-level
    eigenvalues dropped), eigenvalues descending, > 0."""

    U: Tensor
    eigenvalues: Tensor
    shift: float
    """The stabilizing shift ν that was used (and taken off)."""

    def matrix(self) -> Tensor:
        """The dense ``K̂`` (tests)."""
        return (self.U * self.eigenvalues) @ self.U.T


def gaussian_sketch(n: int, s: int, generator: torch.Generator, dtype: torch.dtype, device) -> Tensor:
    """An n×s test matrix with orthonormal columns: Gaussian draws from ``generator`` (on the
    CPU, so that a run draws the same numbers on any device), then QR."""
    omega = torch.randn(n, s, generator=generator, dtype=torch.float64).to(device=device, dtype=dtype)
    q, _ = torch.linalg.qr(omega)
    return q


def nystrom(apply: Callable[[Tensor], Tensor], n: int, rank: int, generator: torch.Generator,
            dtype: torch.dtype = torch.float64, device=None) -> NystromApprox:  # fmt: skip
    """The randomized Nyström approximation of the n×n PSD matrix ``K`` given by
    ``apply(X) = KX``, of rank ``min(rank, n)``. With ``rank ≥ n`` the test matrix is the
    identity (no randomness): ``K̂ = K`` to rounding."""
    s = min(int(rank), n)
    omega = torch.eye(n, dtype=dtype, device=device) if s == n else gaussian_sketch(n, s, generator, dtype, device)
    Y = apply(omega)
    eps = torch.finfo(dtype).eps
    shift = math.sqrt(n) * eps * float(torch.linalg.norm(Y))
    if not math.isfinite(shift):
        raise FloatingPointError("Nyström approximation: the products with K are not finite")
    if shift == 0.0:  # K Ω = 0: K̂ = 0
        return NystromApprox(omega[:, :0], Y.new_zeros(0), 0.0)
    for _ in range(CHOLESKY_TRIES):
        Y_shift = Y + shift * omega
        core = omega.T @ Y_shift
        core = 0.5 * (core + core.T)
        L, info = torch.linalg.cholesky_ex(core)
        if int(info) == 0:
            break
        shift *= 100.0  # rounding made the core indefinite: a larger shift (taken off below)
    else:
        raise FloatingPointError("Nyström approximation: the sketched core is not positive definite")
    B = torch.linalg.solve_triangular(L, Y_shift.T, upper=False).T  # B Lᵀ = Y_ν
    U, sigma, _ = torch.linalg.svd(B, full_matrices=False)
    eigenvalues = sigma.square() - shift
    keep = int((eigenvalues > NOISE * shift).sum())  # the rest is rounding: the sketch saw K's null space
    return NystromApprox(U[:, :keep], eigenvalues[:keep], shift)


def nystrom_solve(approx: NystromApprox, b: Tensor, damping: float, tail: float = 0.0) -> Tensor:
    """``(K̂ + λI)⁻¹ b`` by Woodbury on the rank-s factor; the part of ``b`` outside the
    range of ``U`` is divided by ``λ + tail`` (module docstring)."""
    U, lam = approx.U, approx.eigenvalues
    c = U.T @ b
    inside = U @ (c / (lam + damping))
    rest = b - U @ c
    return inside + rest / (damping + tail) if damping + tail > 0 else inside
