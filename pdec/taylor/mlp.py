"""TaylorMLP: an MLP that evaluates every planned derivative in one forward pass.

A Taylor-mode pass (REFERENCES §1) carries a stacked tensor ``Z[S, N, width]``
of coefficient streams (``streams.py``). Linear layers apply their one weight
matrix to all streams in one matmul, with the bias on the value stream only;
an activation combines the streams with its derivatives at the value
(Faà di Bruno). The network is thus a forward network with weights shared
over streams, which is what KFAC for PINN losses exploits (Dangel, Müller &
Zeinhofer 2024; ``kfac_record.py``).

Two runtimes give the same numbers:

* the *fused* runtime for plans of order ≤ 2 (value, first derivatives,
  collapsed second-order streams such as the forward Laplacian): one
  ``torch.autograd.Function`` for the whole network, with a hand-written
  backward that updates its buffers in place and reuses them between calls,
  so a training step allocates no stream-sized tensors after the first;
* the *generic* runtime (any plan, orders ≤ 4): plain differentiable torch
  operations, so it also supports double backward and ``torch.func``.

Both exploit that the first-order streams after the first layer are ``W v``,
constant over the points (one small matmul instead of ``R·N`` rows), and that
streams of order ≥ 2 are zero at the input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .activations import ActivationFn, resolve_activation
from .operators import Operator
from .streams import StreamPlan


class TaylorLinear(nn.Linear):
    """``nn.Linear`` that can also act on stacked streams ``[S, N, in]``.

    ``kfac_slot`` is ``None`` except inside ``pdec.taylor.kfac_record.record``,
    which sets it to an object that captures this layer's input streams and
    output gradients; when it is ``None`` nothing is captured or hooked.
    """

    def __init__(self, in_features: int, out_features: int, *, dtype: torch.dtype, device=None) -> None:
        super().__init__(in_features, out_features, bias=True, dtype=dtype, device=device)
        self.kfac_slot = None

    def forward(self, x: Tensor) -> Tensor:
        out = nn.functional.linear(x, self.weight, self.bias)
        if self.kfac_slot is not None:
            self.kfac_slot.capture(x, out)
        return out

    def forward_streams(self, z: Tensor, value_row: int | None = 0) -> Tensor:
        """``[S, N, in] -> [S, N, out]``: one matmul for all streams, bias on the
        value stream (row ``value_row``; ``None`` when it is not among them)."""
        out = z.matmul(self.weight.T)
        if value_row is not None:
            out[value_row] += self.bias
        if self.kfac_slot is not None:
            self.kfac_slot.capture(z, out)
        return out


class TaylorMLP(nn.Module):
    """A tanh (or other) MLP ``[N, n_in] -> [N, n_out]`` with a Taylor-mode pass.

    Weights are Glorot/Xavier-normal and biases zero, so ``torch.manual_seed``
    fixes the initialisation; the output layer is linear.

    >>> from pdec.taylor import Laplacian, Partial, plan_streams
    >>> net = TaylorMLP(2, [16, 16], 1)
    >>> plan = plan_streams([Partial(()), Laplacian((0, 1))], n_inputs=2)
    >>> out = net.taylor(torch.rand(8, 2, dtype=torch.float64), plan)
    >>> out[Laplacian((0, 1))].shape
    torch.Size([8, 1])
    """

    def __init__(
        self,
        n_in: int,
        hidden: Sequence[int],
        n_out: int,
        activation: str | ActivationFn = "tanh",
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("TaylorMLP needs at least one hidden layer")
        sizes = [n_in, *hidden, n_out]
        self.layers = nn.ModuleList(
            TaylorLinear(a, b, dtype=dtype, device=device) for a, b in zip(sizes[:-1], sizes[1:])
        )
        for layer in self.layers:
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.n_in, self.n_out = n_in, n_out
        self.activation = resolve_activation(activation)
        self.activation_name = activation if isinstance(activation, str) else getattr(activation, "__name__", "custom")
        self._workspace = _Workspace()
        self._compiled: dict[StreamPlan, _Compiled] = {}

    def linear_layers(self) -> list[TaylorLinear]:
        """The linear layers in order (KFAC builds one Kronecker factor pair per layer)."""
        return list(self.layers)

    def forward(self, X: Tensor) -> Tensor:
        """Plain value pass, no streams."""
        for layer in self.layers[:-1]:
            X = self.activation(layer(X), 0)[0]
        return self.layers[-1](X)

    def taylor(
        self,
        X: Tensor,
        plan: StreamPlan,
        generator: torch.Generator | None = None,
        *,
        fused: bool | None = None,
    ) -> dict[Operator, Tensor]:
        """Every operator of ``plan`` at the points ``X [N, n_in]``, each ``[N, n_out]``.

        One pass over ``plan.n_streams`` stacked streams. Randomized Laplacians
        draw fresh Rademacher directions ``v_s ∈ {±1}^D`` from ``generator``
        on every call; the estimate ``(1/S) Σ_s v_sᵀ H v_s`` is unbiased for
        ``tr H`` with variance ``2 Σ_{i≠j} H_ij² / S`` per point and output
        (Hutchinson 1990; Hu et al. 2024).

        ``fused=None`` uses the fused runtime when the plan has order ≤ 2 and
        no ``torch.func`` transform is active; its backward is written by hand
        and supports neither double backward (``create_graph``) nor a second
        backward through the same graph. Pass ``fused=False`` for those.
        """
        if X.dim() != 2 or X.shape[1] != self.n_in:
            raise ValueError(f"expected X of shape [N, {self.n_in}], got {list(X.shape)}")
        if plan.n_inputs != self.n_in:
            raise ValueError(f"plan is for {plan.n_inputs} inputs, network has {self.n_in}")
        compiled = self._compiled.get(plan)
        if compiled is None:
            compiled = self._compiled[plan] = _Compiled.from_plan(plan)
        recording = any(layer.kfac_slot is not None for layer in self.layers)
        rows = tuple(range(plan.n_streams)) if recording else compiled.needed
        if plan.n_streams == 1:
            Z = self.forward(X).unsqueeze(0)
        else:
            dirs = _directions(plan, generator, X)
            can_fuse = plan.max_order <= 2 and not torch._C._are_functorch_transforms_active()
            if fused and not can_fuse:
                raise ValueError("the fused runtime needs a plan of order ≤ 2 and no torch.func transform")
            if can_fuse if fused is None else fused:
                Z = self._taylor_fused(X, dirs, compiled, rows)
            else:
                Z = self._taylor_generic(X, dirs, compiled, rows)
        row_of = {s: k for k, s in enumerate(rows)}
        return {op: _combine(Z, combo, row_of) for op, combo in compiled.outputs}

    def release_workspace(self) -> None:
        """Free the stream buffers the fused runtime keeps between calls."""
        self._workspace.clear()

    # -- generic runtime ---------------------------------------------------

    def _taylor_generic(self, X: Tensor, dirs: Tensor, c: _Compiled, rows: tuple[int, ...]) -> Tensor:
        first = self.layers[0]
        N = X.shape[0]
        if first.kfac_slot is not None:  # KFAC wants the full input streams of layer 1
            zeros = X.new_zeros(c.n_streams - 1 - c.n_first, N, self.n_in)
            h = list(first.forward_streams(torch.cat([X[None], dirs[:, None, :].expand(-1, N, -1), zeros])))
        else:
            V = dirs @ first.weight.T  # first-order streams: W v_r, constant over points
            h = [first(X), *V[:, None, :].unbind(0)] + [None] * (c.n_streams - 1 - c.n_first)
        Z = _activate_generic(h, c, self.activation)
        for layer in self.layers[1:-1]:
            Z = _activate_generic(list(layer.forward_streams(Z)), c, self.activation)
        if len(rows) < c.n_streams:  # the output layer only on the streams the outputs read
            Z = Z[list(rows)]
        return self.layers[-1].forward_streams(Z, rows.index(0) if 0 in rows else None)

    # -- fused runtime -----------------------------------------------------

    def _taylor_fused(self, X: Tensor, dirs: Tensor, c: _Compiled, rows: tuple[int, ...]) -> Tensor:
        params = [p for layer in self.layers for p in (layer.weight, layer.bias)]
        slots = [layer.kfac_slot for layer in self.layers]
        needs_grad = torch.is_grad_enabled() and (X.requires_grad or any(p.requires_grad for p in params))
        run = _FusedRun(c, self.activation, self._workspace, slots if any(slots) else None, needs_grad, rows)
        return _FusedSecondOrder.apply(run, X, dirs, *params)


# --------------------------------------------------------------------------
# helpers shared by both runtimes


def _directions(plan: StreamPlan, generator: torch.Generator | None, X: Tensor) -> Tensor:
    """Input seeds ``[R, n_in]`` of the first-order streams: unit vectors, or
    Rademacher vectors over a randomized Laplacian's columns, drawn now."""
    draws = []
    for group in plan.random_groups:
        device = generator.device if generator is not None else X.device
        signs = torch.randint(0, 2, (group.samples, len(group.over)), generator=generator, device=device)
        draws.append((2 * signs - 1).to(dtype=X.dtype, device=X.device))
    dirs = X.new_zeros(plan.n_first, plan.n_inputs)
    for r, s in enumerate(plan.streams[1 : plan.n_first + 1]):
        if s.column is not None:
            dirs[r, s.column] = 1
        else:
            g, j = s.random
            dirs[r, list(plan.random_groups[g].over)] = draws[g][j]
    return dirs


def _combine(Z: Tensor, combo: tuple[tuple[int, float], ...], row_of: dict[int, int]) -> Tensor:
    """``Σ coef · Z[row of stream]``: an operator from the output-layer streams."""
    (s0, c0), *rest = combo
    out = Z[row_of[s0]] if c0 == 1 else c0 * Z[row_of[s0]]
    for s, c in rest:
        out = out + c * Z[row_of[s]]
    return out


@dataclass(frozen=True)
class _Quadratic:
    """``Σ_ij C_ij h_i h_j`` over the first-order streams (local indices), split
    into runs of equal diagonal coefficients and off-diagonal terms."""

    diag: tuple[tuple[int, int, float], ...]  # (start, stop, coef)
    off: tuple[tuple[int, int, float], ...]  # (i, j, coef), i < j

    @staticmethod
    def from_rule(rule) -> _Quadratic:
        diag: list[list] = []
        off = []
        for t in rule:
            i, j = (f - 1 for f in t.factors)
            if i != j:
                off.append((i, j, float(t.coef)))
            elif diag and diag[-1][1] == i and diag[-1][2] == float(t.coef):
                diag[-1][1] = i + 1
            else:
                diag.append([i, i + 1, float(t.coef)])
        return _Quadratic(tuple(tuple(d) for d in diag), tuple(off))


@dataclass(frozen=True)
class _Compiled:
    """A plan turned into what the runtimes index by: floats, local indices."""

    n_streams: int
    n_first: int
    max_order: int
    rules: tuple[tuple[tuple[int, float, tuple[int, ...]], ...], ...]  # per stream
    quads: tuple[_Quadratic, ...]  # order-2 streams, for the fused runtime
    outputs: tuple[tuple[Operator, tuple[tuple[int, float], ...]], ...]
    needed: tuple[int, ...]  # the streams the outputs read

    @staticmethod
    def from_plan(plan: StreamPlan) -> _Compiled:
        rules = tuple(tuple((t.m, float(t.coef), t.factors) for t in s.rule) for s in plan.streams)
        quads = ()
        if plan.max_order <= 2:
            quads = tuple(_Quadratic.from_rule(s.rule) for s in plan.streams[plan.n_first + 1 :])
        outputs = tuple((op, tuple((s, float(c)) for s, c in combo)) for op, combo in plan.outputs)
        needed = tuple(sorted({s for _, combo in outputs for s, _ in combo}))
        return _Compiled(plan.n_streams, plan.n_first, plan.max_order, rules, quads, outputs, needed)


def _activate_generic(h: list[Tensor | None], c: _Compiled, act: ActivationFn) -> Tensor:
    """Faà di Bruno at every unit: ``a_s = σ'h_s + Σ_m σ^(m) Σ_terms coef Π h_f``.

    ``h[s]`` may broadcast against the value (first-order streams of layer 1
    are ``[1, W]``) or be ``None`` (a zero stream of order ≥ 2 at layer 1).
    Products of streams are shared between the rules through a prefix cache,
    and each ``σ^(m)`` multiplies the sum of its terms once.
    """
    derivs = act(h[0], c.max_order)
    products: dict[tuple[int, ...], Tensor | None] = {}

    def product(factors: tuple[int, ...]) -> Tensor | None:
        if factors not in products:
            head = h[factors[0]] if len(factors) == 1 else product(factors[:-1])
            tail = h[factors[-1]]
            if len(factors) == 1 or head is None or tail is None:
                products[factors] = head if len(factors) == 1 else None
            else:
                products[factors] = head * tail
        return products[factors]

    out = [derivs[0]]
    for s in range(1, c.n_streams):
        acc = derivs[1] * h[s] if h[s] is not None else None
        by_order: dict[int, Tensor] = {}
        for m, coef, factors in c.rules[s]:
            p = product(factors)
            if p is None:
                continue  # a zero stream (order ≥ 2 at the first layer)
            if m in by_order:
                by_order[m] = torch.add(by_order[m], p, alpha=coef)
            else:
                by_order[m] = p * coef if coef != 1 else p
        for m, total in by_order.items():
            term = derivs[m] * total
            acc = term if acc is None else acc + term
        out.append(torch.zeros_like(derivs[0]) if acc is None else acc.expand_as(derivs[0]))
    return torch.stack(out)


# --------------------------------------------------------------------------
# fused second-order runtime


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
    slots: list | None
    needs_grad: bool
    rows: tuple[int, ...]  # streams the output layer computes


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
        c, act, ws = run.c, run.act, run.workspace
        ws.tick()
        weights, biases = params[0::2], params[1::2]
        S, R, N = c.n_streams, c.n_first, X.shape[0]
        n_hidden = len(weights) - 1
        keep = run.needs_grad or run.slots is not None
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
        if run.slots is not None:
            zeros = X.new_zeros(S - 1 - R, N, X.shape[1])
            inputs = [torch.cat([X[None], dirs[:, None, :].expand(-1, N, -1), zeros])] + [a.clone() for a in As]
            for slot, a in zip(run.slots, inputs):
                if slot is not None:
                    slot.save_input(a)
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
        slots = run.slots or [None] * len(weights)

        # output layer: rows of the output-layer streams
        gZ = gZ.contiguous()
        if slots[-1] is not None:
            slots[-1].save_grad(gZ.clone())
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
            reduce_first = l == 0 and slots[0] is None
            summed = _fused_activation_backward(GA, jets.pop(), F, H2, Qss[l], c, tmp, first_zero, reduce_first)
            first_zero = False
            if slots[l] is not None:
                slots[l].save_grad(GA.clone())
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
