"""The Gauss–Newton linearization shared by ENGD and KFAC: per-residual
Jacobians read from the Taylor streams and products with them (steps and
the line search are in ``linesearch.py``).

Loss ``L = Σ_k w_k/M_k ‖r_k‖²``. Stacking the scaled residuals
``r̃_k = c_k r_k`` with ``c_k = sqrt(w_k/M_k)`` gives ``L = ‖r̃‖²``; its
Gauss–Newton matrix (of ``L/2``) is ``G = J̃ᵀJ̃`` and the (half) gradient
``J̃ᵀ r̃``; for a PINN loss this ``G`` is the Gramian of energy natural
gradient descent (Müller & Zeinhofer 2023).

Why no ``torch.func.jacrev``: residual ``r_n`` of a point set depends only
on point ``n`` of that point set's Taylor pass, in which every linear layer
applies its weight to ``S`` streams. So one backward pass of ``Σ_n r_n``
gives, per layer, the input streams ``a[s, n]`` (with the bias column) and
the output-stream gradients ``g[s, n]``, and the Jacobian row of ``r_n`` for
the layer's ``[W | b]`` is ``Σ_s g[s, n] a[s, n]ᵀ`` (Dangel, Müller &
Zeinhofer 2024). A term whose residual concatenates several blocks over the
same points (periodic pairs, data of several unknowns) takes one backward
pass per block (``pdec.taylor.record`` tells which passes each reached).
Learnable PDE parameters get their Jacobian columns from autograd (double
backward through the pointwise residual expression only).

The flat parameter layout: per linear layer ``[W | b]`` (``[out, in + 1]``,
row-major), then the PDE parameters.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor

from pdec.runtime.distributed import World, current_world
from pdec.taylor import Recording, record_passes


@contextmanager
def gn_one_thread():
    """Run small dense linear algebra (factor eigendecompositions, ≤ a few
    hundred rows) on one thread: LAPACK's threading costs more than it saves
    at these sizes, by 100× on a loaded 2-core machine."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------
# the linearization


@dataclass
class GNPiece:
    """Rows ``offset … offset + N`` of a term, from one pass: per layer
    ``(a with bias column [S, N, in+1], g [S, N, out])`` in float64."""

    pass_index: int
    offset: int
    layers: list[tuple[Tensor, Tensor]]

    @property
    def n(self) -> int:
        return self.layers[0][0].shape[1]

    @property
    def n_streams(self) -> int:
        return self.layers[0][0].shape[0]


@dataclass
class GNTerm:
    """One loss term: residual ``r [M]`` (float64, detached), scale ``c``,
    its pieces and the PDE-parameter columns ``[M, P]``."""

    name: str
    r: Tensor
    c: float
    pieces: list[GNPiece] = field(default_factory=list)
    p_cols: Tensor | None = None


@dataclass
class GNLinearization:
    terms: list[GNTerm]
    total: Tensor
    losses: dict[str, Tensor]
    shapes: list[tuple[int, int]]  # per layer (out, in + 1)
    n_pde: int
    world: World = field(default_factory=World)
    """Distributed (`distributed.py`): ``terms`` hold this rank's rows; vectors over rows
    (`jvp`, `residual`) are gathered over the ranks, parameter-space results (`vjp`,
    `gradient`) summed, so every rank sees the global linearization."""
    rows: list[int] | None = None
    """Rows per rank (distributed runs only)."""

    @property
    def n_params(self) -> int:
        return sum(o * i for o, i in self.shapes) + self.n_pde

    @property
    def n_rows(self) -> int:
        """Rows of ``J̃`` (over all ranks)."""
        return sum(t.r.numel() for t in self.terms) if self.rows is None else sum(self.rows)

    # -- products with J̃ (all in float64) ------------------------------------
    def jvp(self, vs: list[Tensor], vp: Tensor | None = None) -> Tensor:
        """``J̃ v`` for a direction given per layer (``[out, in+1]``) and for the
        PDE parameters: the stacked scaled rows of all terms (of all ranks, in rank order)."""
        out = self._jvp_local(vs, vp)
        return out if self.rows is None else self.world.gather_rows(out, self.rows)

    def _jvp_local(self, vs: list[Tensor], vp: Tensor | None = None) -> Tensor:
        rows = []
        for t in self.terms:
            out = torch.zeros_like(t.r)
            for piece in t.pieces:
                acc = 0
                for (a, g), V in zip(piece.layers, vs):
                    acc = acc + torch.einsum("sno,sno->n", g, a @ V.T)
                out[piece.offset : piece.offset + piece.n] += acc
            if t.p_cols is not None and vp is not None:
                out += t.p_cols @ vp
            rows.append(t.c * out)
        return torch.cat(rows)

    def vjp(self, u: Tensor) -> tuple[list[Tensor], Tensor]:
        """``J̃ᵀ u`` per layer and for the PDE parameters (``u`` over the rows of all ranks)."""
        if self.rows is None:
            return self._vjp_local(u)
        start = sum(self.rows[: self.world.rank])
        return self._summed(*self._vjp_local(u[start : start + self.rows[self.world.rank]]))

    def _summed(self, vs: list[Tensor], vp: Tensor) -> tuple[list[Tensor], Tensor]:
        self.world.sum_many_([*vs, vp])
        return vs, vp

    def _vjp_local(self, u: Tensor) -> tuple[list[Tensor], Tensor]:
        vs = [torch.zeros(o, i, dtype=torch.float64, device=u.device) for o, i in self.shapes]
        vp = torch.zeros(self.n_pde, dtype=torch.float64, device=u.device)
        start = 0
        for t in self.terms:
            ut = t.c * u[start : start + t.r.numel()]
            start += t.r.numel()
            for piece in t.pieces:
                un = ut[piece.offset : piece.offset + piece.n]
                for (a, g), V in zip(piece.layers, vs):
                    V += torch.einsum("sno,sni->oi", g * un[:, None], a)  # one GEMM over (s, n); a three-operand
                    # einsum contracted g with a first: an [S, N, out, in] intermediate, 15x the time at D = 1e5
            if t.p_cols is not None:
                vp += t.p_cols.T @ ut
        return vs, vp

    def residual(self) -> Tensor:
        """The stacked scaled residuals ``r̃`` (of all ranks)."""
        out = self.local_residual()
        return out if self.rows is None else self.world.gather_rows(out, self.rows)

    def local_residual(self) -> Tensor:
        """This rank's rows of ``r̃`` (all of them in one process)."""
        return torch.cat([t.c * t.r for t in self.terms])

    def gradient(self) -> tuple[list[Tensor], Tensor]:
        """``J̃ᵀ r̃``: half the gradient of the loss."""
        if self.rows is None:
            return self.vjp(self.residual())
        return self._summed(*self._vjp_local(self.local_residual()))

    def jacobian(self) -> Tensor:
        """The dense ``J̃ [rows, D]`` (ENGD, tests): this rank's rows (`local_residual`'s)."""
        blocks = []
        for t in self.terms:
            M = t.r.numel()
            cols = []
            for li, (o, i) in enumerate(self.shapes):
                Jl = torch.zeros(M, o, i, dtype=torch.float64, device=t.r.device)
                for piece in t.pieces:
                    a, g = piece.layers[li]
                    Jl[piece.offset : piece.offset + piece.n] += torch.einsum("sno,sni->noi", g, a)
                cols.append(Jl.reshape(M, o * i))
            if self.n_pde:
                cols.append(t.p_cols if t.p_cols is not None else t.r.new_zeros(M, self.n_pde))
            blocks.append(t.c * torch.cat(cols, dim=1))
        return torch.cat(blocks)


def gn_linearize(problem, residual_fn, weights: dict[str, float]) -> GNLinearization:
    """Residuals, loss and the per-sample Jacobian pieces at the current parameters."""
    model = problem.model
    layers = model.linear_layers()
    pde = [p for p in problem.parameters.values()]
    with record_passes(model, generic=True) as passes:  # generic: one backward per residual block
        residuals = residual_fn()
    anchor = layers[0].weight
    world = current_world()
    losses = world.sum_dict({k: weights[k] * r.detach().square().mean() for k, r in residuals.items()})
    total = sum(losses.values())
    terms = []
    for name, r in residuals.items():
        M = r.numel()
        term = GNTerm(name, r.detach().to(torch.float64), math.sqrt(weights[name] / M))
        if r.requires_grad:
            blocks = [(0, M)]
            got = _backward_block(passes, r.sum(), anchor)
            n = passes[got[0]][0].a.shape[1] if got else M
            if got and M != n:
                if M % n:
                    raise RuntimeError(f"term `{name}`: {M} residuals on passes of {n} points")
                blocks = [(b, b + n) for b in range(0, M, n)]
            for lo, hi in blocks:
                if len(blocks) > 1:
                    got = _backward_block(passes, r[lo:hi].sum(), anchor)
                for p in got:
                    pieces = [
                        (rec.a_with_bias().to(torch.float64), rec.g.to(torch.float64)) for rec in passes[p]
                    ]
                    term.pieces.append(GNPiece(p, lo, pieces))
            if pde:
                term.p_cols = _parameter_columns(r, pde)
        terms.append(term)
    shapes = [(layer.weight.shape[0], layer.weight.shape[1] + 1) for layer in layers]
    lin = GNLinearization(terms, total.detach(), losses, shapes, sum(p.numel() for p in pde))
    if world.size > 1:  # the rows each rank holds, for gathering vectors over rows
        here = torch.tensor([float(sum(t.r.numel() for t in terms))], dtype=torch.float64, device=world.device)
        lin.world, lin.rows = world, [int(n) for n in world.gather(here)[:, 0].tolist()]
    return lin


def reduce_kfac_factors(factors: dict, lin: GNLinearization) -> dict:
    """KFAC's factors ``{(term, pass): [(A, B, S)]}`` of this rank's points summed over the ranks.

    ``B`` is a sum over points already (the residual scale carries the rank's share); ``A`` is a
    mean over the ``N`` points of its pass, so it is summed as ``N A`` with ``N`` and divided
    after. One collective for all factors. A plain run gets ``factors`` back untouched."""
    world = lin.world
    if world.size == 1:
        return factors
    counts = {}
    for t in lin.terms:
        for piece in t.pieces:
            counts.setdefault((t.name, piece.pass_index), piece.n)
    keys = list(factors)
    ns = torch.tensor([float(counts[k]) for k in keys], dtype=torch.float64, device=world.device)
    flat = [ns] + [x for k in keys for A, B, _ in factors[k] for x in (A * counts[k], B)]
    world.sum_many_(flat)
    out, i = {}, 1
    for j, k in enumerate(keys):
        layers = []
        for _, _, S in factors[k]:
            layers.append((flat[i] / ns[j], flat[i + 1], S))
            i += 2
        out[k] = layers
    return out


def _backward_block(passes: Recording, scalar: Tensor, anchor: Tensor) -> list[int]:
    """Backpropagate ``scalar``; return the passes whose layers received gradients."""
    passes.clear_grads()
    torch.autograd.grad(scalar, [anchor], retain_graph=True, allow_unused=True)
    return passes.with_grads()


def _parameter_columns(r: Tensor, params: list[Tensor]) -> Tensor:
    """``∂r/∂p [M, P]`` by double backward through the residual expression."""
    cols = []
    u = torch.zeros_like(r, requires_grad=True)
    for p in params:
        (v,) = torch.autograd.grad(r, [p], grad_outputs=u, create_graph=True, allow_unused=True)
        if v is None or not v.requires_grad:
            cols.append(r.new_zeros(r.numel(), p.numel()))
            continue
        v = v.reshape(-1)
        for j in range(v.numel()):
            (col,) = torch.autograd.grad(v[j], [u], retain_graph=True, allow_unused=True)
            cols.append((col if col is not None else torch.zeros_like(r)).reshape(-1, 1))
    return torch.cat(cols, dim=1).detach().to(torch.float64)
