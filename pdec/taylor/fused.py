"""The fused runtime for plans of order ≤ 2: one autograd Function for the whole pass.

Value, first-order streams and collapsed second-order streams (such as the
forward Laplacian, Li et al. 2023) cover most PINN losses. For them the
whole Taylor pass is one ``torch.autograd.Function`` with a hand-written
backward: it updates its buffers in place and takes them from a workspace
kept between calls, so a training step allocates no stream-sized tensors
after the first, and each activation step runs over chunks of streams that
stay in cache. It gives the same numbers as the generic runtime in
``mlp.py`` (tested in ``tests/taylor/test_taylor_fused.py``) but supports
neither double backward nor a second backward through the same graph (the
caller asks for the generic runtime then), nor ``torch.func`` transforms
(torch refuses it inside one, and ``TaylorMLP.taylor`` falls back).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .activations import ActivationFn
from .compiled import _Compiled, _Quadratic
from .record import LayerRecord


class _Workspace:
    """Stream-sized buffers kept between fused calls.

    A fresh ``[S, N, width]`` tensor costs page faults on first touch (a
    quarter of a training step at width 256 on a 2-core CPU), so buffers a
    finished backward no longer needs are kept and handed out again. Buffers
    not used for a few calls are dropped, so shapes that stop occurring do not
    pin memory.
    """

    KEEP_CALLS = 4

    def __init__(self) -> None:
        self.free: dict[tuple, list[tuple[int, Tensor]]] = {}
        self.calls = 0

    def take(self, shape: Sequence[int], like: Tensor) -> Tensor:
        key = (tuple(shape), like.dtype, like.device)
        pool = self.free.get(key)
        if pool:
            return pool.pop()[1]
        return torch.empty(key[0], dtype=like.dtype, device=like.device)

    def give(self, tensors: Sequence[Tensor]) -> None:
        for t in tensors:
            self.free.setdefault((tuple(t.shape), t.dtype, t.device), []).append((self.calls, t))

    def tick(self) -> None:
        self.calls += 1
        oldest = self.calls - self.KEEP_CALLS
        for key in list(self.free):
            self.free[key] = [(c, t) for c, t in self.free[key] if c >= oldest]
            if not self.free[key]:
                del self.free[key]

    def clear(self) -> None:
        self.free.clear()


@dataclass
class _FusedRun:
    """Everything the fused Function needs besides tensors."""

    c: _Compiled
    act: ActivationFn
    workspace: _Workspace
    records: list[LayerRecord] | None  # while recording: each layer's a and g
    needs_grad: bool
    rows: tuple[int, ...]  # streams the output layer computes
    started: bool = False  # the forward ran (torch did not refuse the Function)


CHUNK_BYTES = 4 << 20  # per array: a chunk of streams stays in the last-level cache


def _chunks(F: Tensor, N: int, W: int) -> list[tuple[int, int]]:
    """Ranges of first-order streams processed together: each operation of the
    activation step runs over a chunk while it is still in cache, so the
    stream block crosses main memory once per step instead of once per op."""
    R = F.shape[0]
    step = max(1, min(R, CHUNK_BYTES // max(1, N * W * F.element_size())))
    return [(r, min(r + step, R)) for r in range(0, R, step)]


def _dot_into(out: Tensor, X: Tensor, Y: Tensor, tmp: Tensor, coef: float = 1.0) -> None:
    """``out += coef Σ_r X_r ⊙ Y_r`` over the leading dimension, products in ``tmp``."""
    shape = [max(a, b) for a, b in zip(X.shape, Y.shape)]  # same rank; one may be 1
    prod = tmp[: math.prod(shape)].view(shape)
    torch.mul(X, Y, out=prod)
    out.add_(prod.sum(0), alpha=coef)


def _runs_in(quad: _Quadratic, r0: int, r1: int):
    """The parts of ``quad``'s diagonal runs inside streams ``[r0, r1)``."""
    for a, b, coef in quad.diag:
        lo, hi = max(a, r0), min(b, r1)
        if lo < hi:
            yield lo, hi, coef


def _fused_activation(
    jet: list[Tensor],
    F: Tensor,
    H2: Tensor | None,
    A: Tensor,
    c: _Compiled,
    tmp: Tensor,
    rows: tuple[int, ...] | None = None,
) -> list[Tensor | None]:
    """Write ``σ`` of the streams ``[h0; F; H2]`` into ``A``; return the quadratic
    forms ``Q_q = Σ C^q_ij F_i F_j`` (kept for the backward pass).

    ``F`` is ``[R, N, W]``, or ``[R, 1, W]`` after the first layer; ``H2`` is
    ``None`` after the first layer (streams of order 2 start at zero).
    ``jet`` is ``[σ, σ', σ'', …]`` at the value stream. With ``rows``, only
    those streams are written, into ``A[k]`` for
    ``rows[k]`` (the last hidden layer feeds only the streams the outputs
    read); the forms of unwritten order-2 streams are then ``None``.
    """
    R = c.n_first
    N, W = A.shape[1], A.shape[2]
    s0, s1, s2 = jet[:3]
    if rows is not None:
        Qs: list[Tensor | None] = [None] * len(c.quads)
        for k, s in enumerate(rows):
            if s == 0:
                A[k].copy_(s0)
            elif s <= R:
                torch.mul(F[s - 1], s1, out=A[k])
            else:
                q = s - R - 1
                Q = Qs[q] = s0.new_zeros(F.shape[1:])
                for r0, r1 in _chunks(F, N, W):
                    for lo, hi, coef in _runs_in(c.quads[q], r0, r1):
                        _dot_into(Q, F[lo:hi], F[lo:hi], tmp, coef)
                for i, j, coef in c.quads[q].off:
                    Q.addcmul_(F[i], F[j], value=coef)
                if H2 is None:
                    torch.mul(s2, Q, out=A[k])
                else:
                    torch.mul(H2[q], s1, out=A[k])
                    A[k].addcmul_(s2, Q)
        return Qs
    A[0].copy_(s0)
    Qs = [s0.new_zeros(F.shape[1:]) for _ in c.quads]
    for r0, r1 in _chunks(F, N, W):
        torch.mul(F[r0:r1], s1, out=A[1 + r0 : 1 + r1])
        for quad, Q in zip(c.quads, Qs):
            for lo, hi, coef in _runs_in(quad, r0, r1):
                _dot_into(Q, F[lo:hi], F[lo:hi], tmp, coef)
    for q, (quad, Q) in enumerate(zip(c.quads, Qs)):
        for i, j, coef in quad.off:
            Q.addcmul_(F[i], F[j], value=coef)
        out = A[R + 1 + q]
        if H2 is None:
            torch.mul(s2, Q, out=out)
        else:
            torch.mul(H2[q], s1, out=out)
            out.addcmul_(s2, Q)
    return Qs


def _fused_activation_backward(
    GA: Tensor,
    jet: list[Tensor],
    F: Tensor,
    H2: Tensor | None,
    Qs: list[Tensor | None],
    c: _Compiled,
    tmp: Tensor,
    first_zero: bool = False,
    reduce_first: bool = False,
) -> Tensor | None:
    """Turn ``GA`` (gradient w.r.t. the activation's output streams) in place
    into the gradient w.r.t. its input streams (``jet``: ``σ … σ'''`` at the
    value stream, kept from the forward pass):

    ``g_h0 = σ'g0 + σ''(Σ_r g_r h_r + Σ_q g_q h_q) + σ'''Σ_q g_q Q_q``,
    ``g_hr = σ'g_r + Σ_q σ''g_q ∂Q_q/∂h_r``, ``g_hq = σ'g_q``.

    Order-2 streams whose form ``Qs[q]`` is ``None`` were not computed and
    have zero gradient. ``first_zero``: the first-order block of ``GA`` is
    zero (and need not be initialised), as below an output layer that reads
    no first-order stream. ``reduce_first`` (first layer, where ``h_r = W v_r``
    is constant over the points): return ``Σ_n g_hr`` ``[R, W]`` instead of
    writing the per-point ``g_hr``, which only that sum is needed for.
    """
    R = c.n_first
    N, W = GA.shape[1], GA.shape[2]
    _, s1, s2, s3 = jet
    g0, G1, G2 = GA[0], GA[1 : R + 1], GA[R + 1 :]
    active = [q for q in range(len(c.quads)) if Qs[q] is not None]
    t = torch.zeros_like(g0)
    u = torch.zeros_like(g0)
    for q in active:
        if H2 is not None:
            t.addcmul_(G2[q], H2[q])
        u.addcmul_(G2[q], Qs[q])
    weights = {q: s2 * G2[q] for q in active}
    summed = None
    if reduce_first:
        # Σ_n g_hr = Σ_n σ'g_r + Σ_q (Σ_n σ''g_q) ∂Q_q/∂h_r, with h_r constant over n
        summed = F.new_zeros(R, W)
        for r0, r1 in [] if first_zero else _chunks(F, N, W):
            _dot_into(t, G1[r0:r1], F[r0:r1], tmp)
            prod = tmp[: (r1 - r0) * N * W].view(r1 - r0, N, W)
            torch.mul(G1[r0:r1], s1, out=prod)
            torch.sum(prod, 1, out=summed[r0:r1])
        for q in active:
            w = weights[q].sum(0)
            for a, b, coef in c.quads[q].diag:
                summed[a:b].addcmul_(F[a:b, 0], w, value=2 * coef)
            for i, j, coef in c.quads[q].off:
                summed[i].addcmul_(F[j, 0], w, value=coef)
                summed[j].addcmul_(F[i, 0], w, value=coef)
        active = []
    elif first_zero and len(active) == 1 and not c.quads[active[0]].off:
        # g_hr = 2 c σ''g_q h_r on the runs, written directly; zero elsewhere
        q = active.pop()
        done = 0
        for lo, hi, coef in c.quads[q].diag:
            G1[done:lo].zero_()
            torch.mul(F[lo:hi], weights[q] * (2 * coef), out=G1[lo:hi])
            done = hi
        G1[done:].zero_()
    elif first_zero:
        G1.zero_()
        for q in active:
            for a, b, coef in c.quads[q].diag:
                G1[a:b].addcmul_(F[a:b], weights[q], value=2 * coef)
    else:
        for r0, r1 in _chunks(F, N, W):
            _dot_into(t, G1[r0:r1], F[r0:r1], tmp)
            G1[r0:r1].mul_(s1)
            for q in active:
                for lo, hi, coef in _runs_in(c.quads[q], r0, r1):
                    G1[lo:hi].addcmul_(F[lo:hi], weights[q], value=2 * coef)
    for q in active:
        for i, j, coef in c.quads[q].off:
            G1[i].addcmul_(F[j], weights[q], value=coef)
            G1[j].addcmul_(F[i], weights[q], value=coef)
    gh0 = s1 * g0
    gh0.addcmul_(s2, t).addcmul_(s3, u)
    G2.mul_(s1)
    g0.copy_(gh0)
    return summed


class _FusedSecondOrder(torch.autograd.Function):
    """The whole Taylor pass of an order-≤2 plan, with a hand-written backward.

    Forward keeps, per hidden layer, the pre-activation streams ``H_l`` (the
    first layer only ``W v_r``), the post-activation streams ``A_l`` and the
    activation's derivatives ``σ … σ'''`` at the value stream (computing them
    once is cheaper than again in the backward: tanh alone was a tenth of a
    small training step); the output layer computes only the streams the
    outputs read.
    Backward turns the output gradient in place into the gradient of each
    ``H_l`` (``_fused_activation_backward``) and recycles every buffer as soon
    as it is dead, so its peak is the forward's saved buffers plus one. All
    stream-sized buffers come from, and go back to, the model's workspace.
    """

    @staticmethod
    def forward(ctx, run: _FusedRun, X: Tensor, dirs: Tensor, *params: Tensor) -> Tensor:
        run.started = True
        c, act, ws = run.c, run.act, run.workspace
        ws.tick()
        weights, biases = params[0::2], params[1::2]
        S, R, N = c.n_streams, c.n_first, X.shape[0]
        n_hidden = len(weights) - 1
        keep = run.needs_grad or run.records is not None
        widest = max(w.shape[0] for w in weights[:-1])
        tmp = ws.take((max(CHUNK_BYTES // X.element_size(), N * widest),), X)
        first_h0 = torch.addmm(biases[0], X, weights[0].T)
        V = dirs @ weights[0].T  # first-order streams W v_r, constant over points
        h0, F, H2 = first_h0, V[:, None, :], None
        Hs: list[Tensor] = []  # layers 2 … n_hidden
        As: list[Tensor] = []
        Qss: list[list[Tensor]] = []
        jets: list[list[Tensor]] = []  # σ … σ''' at each layer's value stream, for the backward
        for l in range(n_hidden):
            if l > 0:
                H = ws.take((S, N, weights[l].shape[0]), X)
                torch.mm(As[-1].view(S * N, -1), weights[l].T, out=H.view(S * N, -1))
                H[0] += biases[l]
                h0, F, H2 = H[0], H[1 : R + 1], H[R + 1 :]
                if keep:
                    Hs.append(H)
                else:  # evaluation only: the previous streams are dead
                    ws.give([As.pop()])
            rows = run.rows if l == n_hidden - 1 and len(run.rows) < S else None
            A = ws.take((S if rows is None else len(rows), N, weights[l].shape[0]), X)
            jet = act(h0, 3 if run.needs_grad else 2)
            Qss.append(_fused_activation(jet, F, H2, A, c, tmp, rows))
            if run.needs_grad:
                jets.append(jet)
            As.append(A)
            if l > 0 and not keep:
                ws.give([H])
        rows = run.rows
        K = len(rows)
        Z = torch.mm(As[-1].view(K * N, -1), weights[-1].T).view(K, N, -1)
        if 0 in rows:
            Z[rows.index(0)] += biases[-1]
        if run.records is not None:
            zeros = X.new_zeros(S - 1 - R, N, X.shape[1])
            inputs = [torch.cat([X[None], dirs[:, None, :].expand(-1, N, -1), zeros])] + [a.clone() for a in As]
            for record, a in zip(run.records, inputs):
                record.a = a
        if run.needs_grad:
            ctx.save_for_backward(X, dirs, *params)
            ctx.run, ctx.V, ctx.Hs, ctx.As, ctx.Qss, ctx.jets, ctx.tmp = run, V, Hs, As, Qss, jets, tmp
        else:
            ws.give([tmp, *Hs, *As])
        return Z

    @staticmethod
    @once_differentiable
    def backward(ctx, gZ: Tensor):
        run = ctx.run
        if run is None:
            raise RuntimeError(
                "the fused Taylor pass was already backpropagated; its buffers are reused. "
                "Call model.taylor(..., fused=False) to backpropagate twice."
            )
        ctx.run = None
        c, ws, rows = run.c, run.workspace, run.rows
        X, dirs, *params = ctx.saved_tensors
        weights, biases = params[0::2], params[1::2]
        S, R, N, K = c.n_streams, c.n_first, X.shape[0], len(run.rows)
        n_hidden = len(weights) - 1
        As, Hs, Qss, jets, tmp, V = ctx.As, ctx.Hs, ctx.Qss, ctx.jets, ctx.tmp, ctx.V
        ctx.V = ctx.Hs = ctx.As = ctx.Qss = ctx.jets = ctx.tmp = None
        need = ctx.needs_input_grad
        grads: list[Tensor | None] = [None] * len(params)
        records = run.records

        # output layer: rows of the output-layer streams
        gZ = gZ.contiguous()
        if records is not None:
            records[-1].g = gZ.clone()
        top = As.pop()
        if need[3 + 2 * n_hidden]:
            grads[2 * n_hidden] = gZ.view(K * N, -1).T @ top.view(K * N, -1)
        if need[4 + 2 * n_hidden]:
            grads[2 * n_hidden + 1] = gZ[rows.index(0)].sum(0) if 0 in rows else torch.zeros_like(biases[-1])
        width = weights[-1].shape[1]
        ws.give([top])  # dead: only the output layer's weight gradient read it
        GA = ws.take((S, N, width), X)
        first_zero = False
        if K == S:
            torch.mm(gZ.view(S * N, -1), weights[-1], out=GA.view(S * N, -1))
        else:
            first_zero = not any(1 <= s <= R for s in rows)
            (GA[0:1] if first_zero else GA[:R + 1]).zero_()
            GA[R + 1 :].zero_()
            for k, s in enumerate(rows):
                torch.mm(gZ[k], weights[-1], out=GA[s])
        for l in range(n_hidden - 1, -1, -1):
            if l > 0:
                H = Hs.pop()
                F, H2 = H[1 : R + 1], H[R + 1 :]
            else:
                F, H2 = V[:, None, :], None
            reduce_first = l == 0 and records is None
            summed = _fused_activation_backward(GA, jets.pop(), F, H2, Qss[l], c, tmp, first_zero, reduce_first)
            first_zero = False
            if records is not None:
                records[l].g = GA.clone()
            if l == 0:
                break
            A_in = As.pop()
            if need[3 + 2 * l]:
                grads[2 * l] = GA.view(S * N, -1).T @ A_in.view(S * N, -1)
            if need[4 + 2 * l]:
                grads[2 * l + 1] = GA[0].sum(0)
            ws.give([H])
            GA_in = ws.take(A_in.shape, X)
            torch.mm(GA.view(S * N, -1), weights[l], out=GA_in.view(S * N, -1))
            ws.give([GA, A_in])
            GA = GA_in
        # layer 1: value stream from X, first-order streams from the constant seeds
        if need[3]:
            summed = GA[1 : R + 1].sum(1) if summed is None else summed  # Σ_n g of W v_r
            grads[0] = GA[0].T @ X + summed.T @ dirs
        if need[4]:
            grads[1] = GA[0].sum(0)
        grad_X = GA[0] @ weights[0] if need[1] else None
        ws.give([GA, tmp])
        return (None, grad_X, None, *grads)
