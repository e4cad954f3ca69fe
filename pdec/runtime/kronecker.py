"""Kronecker-factored curvature as linear operators, in the style of
curvlinops: each operator has ``@`` (the matrix–vector product),
``.inverse()`` (an operator whose ``@`` applies the inverse) and ``.dense()``
(the matrix, for tests and small problems).

Layout. A layer's parameters ``[W | b]`` are a matrix ``V [out, in+1]``,
flattened row-major, so the output index is the slow one. A Kronecker term
of the layer is a pair ``(A [in+1, in+1], B [out, out])`` of symmetric
factors, acting as ``V ↦ B V A``, i.e. the dense ``B ⊗ A`` (``torch.kron``
order) on ``vec(V)``; KFAC writes it ``A ⊗ B`` (Martens & Grosse 2015).

Why exact inverses of one or two terms only: ``(A₁⊗B₁ + A₂⊗B₂)⁻¹`` is cheap
through generalized eigendecompositions (Martens & Grosse 2015, App. B):
with ``S_Aᵀ A₁ S_A = I``, ``S_Aᵀ A₂ S_A = diag(α)`` (likewise ``S_B``, β),
``X = S_B [(S_Bᵀ V S_A) ⊘ (1 + β αᵀ)] S_Aᵀ`` costs two small
eigendecompositions per factor instead of one of the whole block. A sum of
more terms has no such inverse; its inverse here is the dense one, so the
caller merges the terms of large layers first (`kfac.kfac_layer`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from pdec.runtime.curvature import gn_one_thread


def kron_dense(pairs: list[tuple[Tensor, Tensor]]) -> Tensor:
    """``Σ A ⊗ B`` in the flat ``[W | b]`` row-major layout (``vec`` over rows of
    ``[out, in+1]``, so the B (output) index is the slow one)."""
    return sum(torch.kron(B, A) for A, B in pairs)


def generalized_eigh(M1: Tensor, M2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``S`` with ``Sᵀ M₁ S = I`` and ``Sᵀ M₂ S = diag(e)`` (M₁ positive
    definite); returns ``(S, e, eigenvalues of M₁)``."""
    d, Q = torch.linalg.eigh(M1)
    W = Q / d.clamp_min(torch.finfo(d.dtype).tiny).sqrt()
    e, U = torch.linalg.eigh(W.T @ M2 @ W)
    return W @ U, e, d


class KroneckerSum:
    """One layer's curvature ``Σ_t A_t ⊗ B_t`` acting on ``V [out, in+1]``.

    The inverse is computed once, on first use (``inverse()``): exact for
    one or two terms by (generalized) eigendecompositions of the factors,
    dense for more."""

    def __init__(self, pairs: list[tuple[Tensor, Tensor]]) -> None:
        self.pairs = pairs
        self._inverse: KroneckerSumInverse | None = None

    def __matmul__(self, V: Tensor) -> Tensor:
        return sum(B @ V @ A for A, B in self.pairs)

    def dense(self) -> Tensor:
        return kron_dense(self.pairs)

    def inverse(self) -> KroneckerSumInverse:
        if self._inverse is None:
            self._inverse = _invert(self)
        return self._inverse

    def state_dict(self) -> dict:
        """The factors and the inverse (which was computed with the damping of
        its time, so a resume must not recompute it)."""
        inv = self.inverse()
        return {"pairs": self.pairs, "SA": inv.SA, "SB": inv.SB, "D": inv.D, "dense_inverse": inv.dense_inverse, "cond": inv.cond}

    @classmethod
    def from_state_dict(cls, state: dict) -> KroneckerSum:
        op = cls(state["pairs"])
        op._inverse = KroneckerSumInverse(op, state["SA"], state["SB"], state["D"], state["dense_inverse"], state["cond"])
        return op


def _invert(op: KroneckerSum) -> KroneckerSumInverse:
    pairs = op.pairs
    if len(pairs) > 2:  # the exact solve of the full sum, dense
        with gn_one_thread():
            e, Q = torch.linalg.eigh(op.dense())
        dense_inverse = (Q / e.clamp_min(torch.finfo(e.dtype).tiny)) @ Q.T
        cond = (float(e.max() / e.min().clamp_min(1e-300)), 1.0)
        return KroneckerSumInverse(op, dense_inverse=dense_inverse, cond=cond)
    with gn_one_thread():
        if len(pairs) == 1:
            ((A, B),) = pairs
            ea, SA = torch.linalg.eigh(A)
            eb, SB = torch.linalg.eigh(B)
            D = eb[:, None] * ea[None, :]
        else:
            (A1, B1), (A2, B2) = pairs
            SA, alpha, ea = generalized_eigh(A1, A2)
            SB, beta, eb = generalized_eigh(B1, B2)
            D = 1 + beta[:, None] * alpha[None, :]
    # condition numbers of the (first) factors, from the eigenvalues at hand
    cond = (float(ea.max() / ea.min().clamp_min(1e-300)), float(eb.max() / eb.min().clamp_min(1e-300)))
    return KroneckerSumInverse(op, SA, SB, D, cond=cond)


class KroneckerSumInverse:
    """``(Σ_t A_t ⊗ B_t)⁻¹``: ``X = S_B [(S_Bᵀ V S_A) ⊘ D] S_Aᵀ`` from the
    factors' (generalized) eigenvectors, or a dense inverse for more than two
    terms. ``cond``: condition numbers of the (first) A and B factors."""

    def __init__(self, op: KroneckerSum, SA=None, SB=None, D=None, dense_inverse=None, cond=(1.0, 1.0)) -> None:
        self.op, self.SA, self.SB, self.D = op, SA, SB, D
        self.dense_inverse, self.cond = dense_inverse, cond

    def __matmul__(self, V: Tensor) -> Tensor:
        if self.dense_inverse is not None:
            return (self.dense_inverse @ V.reshape(-1)).reshape(V.shape)
        return self.SB @ ((self.SB.T @ V @ self.SA) / self.D) @ self.SA.T

    def inverse(self) -> KroneckerSum:
        return self.op

    def dense(self) -> Tensor:
        if self.dense_inverse is not None:
            return self.dense_inverse
        S = torch.kron(self.SB, self.SA)  # vec(S_B M S_Aᵀ) = (S_B ⊗ S_A) vec(M)
        return (S / self.D.reshape(-1)) @ S.T


class BlockDiagonal:
    """KFAC's curvature of all parameters: one `KroneckerSum` per layer, then
    the dense block of the PDE parameters; the blocks between layers (and
    between the layers and the PDE parameters) are dropped. Vectors are
    ``(vs, vp)``: per layer ``[out, in+1]`` and the PDE-parameter vector."""

    def __init__(self, blocks: list[KroneckerSum], pde_block: Tensor | None) -> None:
        self.blocks, self.pde_block = blocks, pde_block

    def __matmul__(self, v: tuple[list[Tensor], Tensor]) -> tuple[list[Tensor], Tensor]:
        vs, vp = v
        xs = [b @ V for b, V in zip(self.blocks, vs)]
        xp = self.pde_block @ vp if self.pde_block is not None and vp.numel() else vp.clone()
        return xs, xp

    def inverse(self) -> BlockDiagonalInverse:
        return BlockDiagonalInverse(self)

    def dense(self) -> Tensor:
        blocks = [b.dense() for b in self.blocks]
        if self.pde_block is not None and self.pde_block.numel():
            blocks.append(self.pde_block)
        return torch.block_diag(*blocks)


class BlockDiagonalInverse:
    """The inverse of a `BlockDiagonal`, block by block (the PDE block by a
    dense solve)."""

    def __init__(self, op: BlockDiagonal) -> None:
        self.op = op
        self.blocks = [b.inverse() for b in op.blocks]
        self.pde_block = op.pde_block

    def __matmul__(self, v: tuple[list[Tensor], Tensor]) -> tuple[list[Tensor], Tensor]:
        vs, vp = v
        xs = [b @ V for b, V in zip(self.blocks, vs)]
        xp = torch.linalg.solve(self.pde_block, vp) if self.pde_block is not None and vp.numel() else vp.clone()
        return xs, xp

    def inverse(self) -> BlockDiagonal:
        return self.op

    def dense(self) -> Tensor:
        blocks = [b.dense() for b in self.blocks]
        if self.pde_block is not None and self.pde_block.numel():
            blocks.append(torch.linalg.inv(self.pde_block))
        return torch.block_diag(*blocks)
