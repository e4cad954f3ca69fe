"""TaylorMLP: an MLP that evaluates every planned derivative in one forward pass.

A Taylor-mode pass (Griewank & Walther 2008; Bettencourt, Johnson & Duvenaud
2019) carries a stacked tensor ``Z[S, N, width]`` of coefficient streams
(``streams.py``). Linear layers apply their one weight matrix to all streams
in one matmul, with the bias on the value stream only; an activation
combines the streams with its derivatives at the value (Faà di Bruno,
``rules.py``). The network is thus a forward network with weights shared
over streams, which is what KFAC for PINN losses exploits (Dangel, Müller &
Zeinhofer 2024; ``record.py`` records each layer's streams and gradients).

Two runtimes give the same numbers:

* the *fused* runtime for plans of order ≤ 2 (value, first derivatives,
  collapsed second-order streams such as the forward Laplacian), in
  ``fused.py``: one ``torch.autograd.Function`` for the whole network, with a
  hand-written backward that updates its buffers in place and reuses them
  between calls, so a training step allocates no stream-sized tensors after
  the first;
* the *generic* runtime (any plan, orders ≤ 4), here: plain differentiable
  torch operations, so it also supports double backward and ``torch.func``.

Both exploit that the first-order streams after the first layer are ``W v``,
constant over the points (one small matmul instead of ``R·N`` rows), and that
streams of order ≥ 2 are zero at the input.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from .activations import ActivationFn, resolve_activation, sin_jet
from .compiled import _combine, _Compiled, _directions
from .fused import _FusedRun, _FusedSecondOrder, _Workspace
from .operators import Operator
from .record import LayerRecord, Recording
from .streams import StreamPlan


class TaylorLinear(nn.Linear):
    """``nn.Linear`` that can also act on stacked streams ``[S, N, in]``."""

    def __init__(self, in_features: int, out_features: int, *, dtype: torch.dtype, device=None) -> None:
        super().__init__(in_features, out_features, bias=True, dtype=dtype, device=device)

    def forward_streams(self, z: Tensor, value_row: int | None = 0, record: LayerRecord | None = None) -> Tensor:
        """``[S, N, in] -> [S, N, out]``: one matmul for all streams, bias on the
        value stream (row ``value_row``; ``None`` when it is not among them);
        ``record`` (while recording) keeps ``z`` and the output gradient."""
        out = z.matmul(self.weight.T)
        if value_row is not None:
            out[value_row] += self.bias
        if record is not None:
            record.capture(z, out)
        return out


class FourierFeatures(nn.Module):
    """Random Fourier features ``γ(x) = [cos 2πBx, sin 2πBx]``, ``B ~ N(0, σ²)`` of shape
    ``[m, n_in]``, fixed at initialisation (a buffer, not trained).

    Why: an MLP fed raw coordinates learns low frequencies first and high ones
    barely at all (spectral bias); the embedding hands it frequencies of order
    ``σ`` per unit of input, which is what multiscale and high-frequency
    solutions need (Tancik et al. 2020; Wang, Wang & Perdikaris 2021). For the
    Taylor pass it is a linear map without bias followed by ``sin(· + φ)``
    with phase ``φ = π/2`` on the cosine half: the same stream algebra as a
    hidden layer (first-order streams ``2πB v`` constant over the points,
    higher-order input streams zero), so every derivative the plan needs flows
    through it exactly. Its output has ``2m`` columns.
    """

    def __init__(self, n_in: int, features: int, scale: float, *, dtype: torch.dtype, device=None) -> None:
        super().__init__()
        B = torch.randn(features, n_in, dtype=dtype, device=device) * scale
        self.register_buffer("weight", 2 * math.pi * torch.cat([B, B]))
        phase = torch.zeros(2 * features, dtype=dtype, device=device)
        phase[:features] = math.pi / 2
        self.register_buffer("phase", phase)
        self.features, self.scale = features, scale

    @property
    def n_out(self) -> int:
        return 2 * self.features

    def forward(self, X: Tensor) -> Tensor:
        return torch.sin(X @ self.weight.T + self.phase)

    def streams(self, X: Tensor, dirs: Tensor, c: _Compiled) -> Tensor:
        """The embedding's output streams ``[S, N, 2m]`` from the input point ``X`` and the
        first-order directions ``dirs`` (Faà di Bruno through ``sin``, `_activate_generic`)."""
        V = dirs @ self.weight.T
        h = [X @ self.weight.T + self.phase, *V[:, None, :].unbind(0)] + [None] * (c.n_streams - 1 - c.n_first)
        return _activate_generic(h, c, sin_jet)


class TaylorMLP(nn.Module):
    """A tanh (or other) MLP ``[N, n_in] -> [N, n_out]`` with a Taylor-mode pass.

    Weights are Glorot/Xavier-normal and biases zero, so ``torch.manual_seed``
    fixes the initialisation; the output layer is linear. ``fourier = (m, σ)``
    puts random Fourier features (`FourierFeatures`, drawn first) in front of
    the first layer; such a network always runs the generic runtime. ``recorder`` is
    ``None`` except inside ``record.record_passes``, which sets it to the
    ``Recording`` that every pass started meanwhile reports to.

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
        fourier: tuple[int, float] | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("TaylorMLP needs at least one hidden layer")
        self.embedding = None if fourier is None else FourierFeatures(n_in, *fourier, dtype=dtype, device=device)
        sizes = [n_in if self.embedding is None else self.embedding.n_out, *hidden, n_out]
        self.layers = nn.ModuleList(
            TaylorLinear(a, b, dtype=dtype, device=device) for a, b in zip(sizes[:-1], sizes[1:])
        )
        for layer in self.layers:
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.n_in, self.n_out = n_in, n_out
        self.activation = resolve_activation(activation)
        self.activation_name = activation if isinstance(activation, str) else getattr(activation, "__name__", "custom")
        self.recorder: Recording | None = None
        self._workspace = _Workspace()
        self._compiled: dict[StreamPlan, _Compiled] = {}

    def linear_layers(self) -> list[TaylorLinear]:
        """The linear layers in order (KFAC builds one Kronecker factor pair per layer)."""
        return list(self.layers)

    def forward(self, X: Tensor) -> Tensor:
        """Plain value pass, no streams."""
        return self._value_pass(X, None if self.recorder is None else self.recorder.start_pass())

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

        ``fused`` picks the runtime. ``None``: the fused one when the plan has
        order ≤ 2, unless a ``record_passes(..., generic=True)`` block is open
        or torch refuses it. Its backward is written by hand: no double
        backward (``create_graph``), no second backward through the same
        graph; pass ``fused=False`` for those. Nor does it support
        ``torch.func`` transforms, and torch has no public query for an active
        transform; but ``autograd.Function.apply`` refuses a Function without
        ``setup_context`` inside one, raising before its forward runs
        ("Extending torch.func with autograd.Function", torch docs). So
        ``None`` tries the fused Function and, when it was refused before its
        forward ran, runs the generic runtime on the same seeds: the default
        path checks nothing, and ``model.taylor`` under ``torch.func.grad`` or
        ``jacrev`` still works. ``True`` insists (a plan of order > 2, a
        generic recording or a transform is an error); ``False`` always runs
        the generic runtime.
        """
        if X.dim() != 2 or X.shape[1] != self.n_in:
            raise ValueError(f"expected X of shape [N, {self.n_in}], got {list(X.shape)}")
        if plan.n_inputs != self.n_in:
            raise ValueError(f"plan is for {plan.n_inputs} inputs, network has {self.n_in}")
        compiled = self._compiled.get(plan)
        if compiled is None:
            compiled = self._compiled[plan] = _Compiled.from_plan(plan)
        recorder = self.recorder
        generic_only = recorder is not None and recorder.generic
        if self.embedding is not None:
            if fused and plan.n_streams > 1:
                raise ValueError("the fused runtime does not run a network with Fourier features")
            fused = False
        if fused and plan.n_streams > 1:
            if plan.max_order > 2:
                raise ValueError("the fused runtime needs a plan of order ≤ 2")
            if generic_only:
                raise ValueError("the fused runtime is off inside `record_passes(..., generic=True)`")
        records = None if recorder is None else recorder.start_pass()
        rows = tuple(range(plan.n_streams)) if records is not None else compiled.needed
        if plan.n_streams == 1:
            Z = self._value_pass(X, records).unsqueeze(0)
        else:
            dirs = _directions(plan, generator, X)
            Z = None
            if (plan.max_order <= 2 and not generic_only) if fused is None else fused:
                Z = self._taylor_fused(X, dirs, compiled, rows, records, may_refuse=fused is None)
            if Z is None:
                Z = self._taylor_generic(X, dirs, compiled, rows, records)
        row_of = {s: k for k, s in enumerate(rows)}
        return {op: _combine(Z, combo, row_of) for op, combo in compiled.outputs}

    def release_workspace(self) -> None:
        """Free the stream buffers the fused runtime keeps between calls."""
        self._workspace.clear()

    def _value_pass(self, X: Tensor, records: list[LayerRecord] | None) -> Tensor:
        if self.embedding is not None:
            X = self.embedding(X)
        if records is None:
            for layer in self.layers[:-1]:
                X = self.activation(layer(X), 0)[0]
            return self.layers[-1](X)
        last = len(self.layers) - 1
        for i, (layer, record) in enumerate(zip(self.layers, records)):
            out = layer(X)
            record.capture(X, out)
            X = out if i == last else self.activation(out, 0)[0]
        return X

    # -- generic runtime ---------------------------------------------------

    def _taylor_generic(
        self, X: Tensor, dirs: Tensor, c: _Compiled, rows: tuple[int, ...], records: list[LayerRecord] | None
    ) -> Tensor:
        first = self.layers[0]
        N = X.shape[0]
        records = records or [None] * len(self.layers)
        if self.embedding is not None:  # the first layer's input streams vary over the points
            h = list(first.forward_streams(self.embedding.streams(X, dirs, c), record=records[0]))
        elif records[0] is not None:  # the records want the full input streams of layer 1
            zeros = X.new_zeros(c.n_streams - 1 - c.n_first, N, self.n_in)
            seeds = torch.cat([X[None], dirs[:, None, :].expand(-1, N, -1), zeros])
            h = list(first.forward_streams(seeds, record=records[0]))
        else:
            V = dirs @ first.weight.T  # first-order streams: W v_r, constant over points
            h = [first(X), *V[:, None, :].unbind(0)] + [None] * (c.n_streams - 1 - c.n_first)
        Z = _activate_generic(h, c, self.activation)
        for layer, record in zip(self.layers[1:-1], records[1:-1]):
            Z = _activate_generic(list(layer.forward_streams(Z, record=record)), c, self.activation)
        if len(rows) < c.n_streams:  # the output layer only on the streams the outputs read
            Z = Z[list(rows)]
        return self.layers[-1].forward_streams(Z, rows.index(0) if 0 in rows else None, record=records[-1])

    # -- fused runtime -----------------------------------------------------

    def _taylor_fused(
        self,
        X: Tensor,
        dirs: Tensor,
        c: _Compiled,
        rows: tuple[int, ...],
        records: list[LayerRecord] | None,
        may_refuse: bool,
    ) -> Tensor | None:
        """The fused pass; ``None`` when torch refused the Function before its
        forward ran (inside a ``torch.func`` transform) and ``may_refuse``."""
        params = [p for layer in self.layers for p in (layer.weight, layer.bias)]
        needs_grad = torch.is_grad_enabled() and (X.requires_grad or any(p.requires_grad for p in params))
        run = _FusedRun(c, self.activation, self._workspace, records, needs_grad, rows)
        try:
            return _FusedSecondOrder.apply(run, X, dirs, *params)
        except RuntimeError:
            if run.started or not may_refuse:
                raise
            return None


# --------------------------------------------------------------------------
# generic runtime


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
