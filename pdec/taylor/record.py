"""One recorder of what curvature and the NTK need from Taylor passes.

In a Taylor-mode pass every linear layer applies its one weight matrix to
``S`` stacked streams (``mlp.py``), so the gradient of a backpropagated
scalar w.r.t. its weight is ``Σ_{s,n} g[s,n] a[s,n]ᵀ`` over streams and
points, with ``a [S, N, in]`` the layer's input streams and ``g [S, N, out]``
the gradient w.r.t. its output streams. A residual entry that depends only
on point ``n`` thus has the Jacobian row ``Σ_s g[s,n] a[s,n]ᵀ``: one
backward pass of ``Σ_n r_n`` gives every row. Gauss–Newton curvature (ENGD,
Müller & Zeinhofer 2023), KFAC for PINN losses (whose Kronecker factors are
built from the same ``a`` and ``g``, Dangel, Müller & Zeinhofer 2024) and
the NTK loss weights (Wang, Yu & Perdikaris 2020) all read these two tensors,
so one recorder serves them all::

    with record_passes(model) as passes:
        out = model.taylor(X, plan)
    residual_sum(out).backward()
    a, g = passes[0][1].a, passes[0][1].g  # pass 0, linear layer 1

Every pass the model starts inside the block (each ``model.taylor`` call,
each plain ``model(X)``) appends one pass: a list with one ``LayerRecord``
per linear layer. The gradients arrive during backward, which may run after
the block has closed. The model finds the recorder in its ``recorder``
attribute, which the block sets and restores: no method is replaced, and
outside a block nothing is captured and no hook registered.

A graph may be backpropagated several times (one backward per residual
block or loss term): ``clear_grads`` forgets the gradients, and after the
next backward ``with_grads`` names the passes it reached. The fused
runtime's backward reuses its buffers and allows one backward per pass;
``generic=True`` makes the passes of the block run the generic runtime,
whose graph can be backpropagated again.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor


@dataclass(eq=False)
class LayerRecord:
    """One linear layer in one pass.

    ``a``: input streams ``[S, N, in]`` (stream 0 is the value; the bias acts
    on it alone, see ``a_with_bias``); ``g``: gradient w.r.t. the output
    streams ``[S, N, out]``, ``None`` until a backward reaches the layer. A
    plain forward pass has ``S = 1``.
    """

    a: Tensor | None = None
    g: Tensor | None = None

    @property
    def n_streams(self) -> int:
        return 0 if self.a is None else self.a.shape[0]

    def capture(self, a: Tensor, out: Tensor) -> None:
        """Keep the input ``a`` and hook ``out`` (a tensor hook, gone with the
        graph); a plain pass (``[N, features]``) is kept as one stream."""
        self.a = (a if a.dim() == 3 else a.unsqueeze(0)).detach()
        if out.requires_grad:
            out.register_hook(self._on_grad)

    def _on_grad(self, g: Tensor) -> None:
        self.g = (g if g.dim() == 3 else g.unsqueeze(0)).detach()

    def a_with_bias(self) -> Tensor:
        """``a`` with the bias column: 1 on the value stream, 0 on the others,
        so that ``Σ_s g_sᵀ [a_s, 1_s]`` is the gradient of ``[W, b]``."""
        a = self._need("a")
        column = torch.zeros(*a.shape[:2], 1, dtype=a.dtype, device=a.device)
        column[0] = 1
        return torch.cat([a, column], dim=2)

    def factors(self, mode: str = "expand") -> tuple[Tensor, Tensor]:
        """The KFAC factors ``(A, B)`` of this layer for this pass (Dangel,
        Müller & Zeinhofer 2024), the scalar's scale left out.

        expand: ``A = 1/(NS) Σ_{n,s} a aᵀ``, ``B = 1/N Σ_{n,s} g gᵀ``;
        reduce: ``A = 1/N Σ_n ā āᵀ`` with ``ā`` the mean over streams,
        ``B = 1/N Σ_n (Σ_s g)(Σ_s g)ᵀ``. ``a`` includes the bias column.
        """
        a, g = self.a_with_bias(), self._need("g")
        S, N = a.shape[:2]
        if mode == "expand":
            a2, g2 = a.reshape(S * N, -1), g.reshape(S * N, -1)
            return a2.T @ a2 / (N * S), g2.T @ g2 / N
        if mode == "reduce":
            a_mean, g_sum = a.mean(0), g.sum(0)
            return a_mean.T @ a_mean / N, g_sum.T @ g_sum / N
        raise ValueError(f"Invalid KFAC mode `{mode}`. Supported: expand, reduce.")

    def _need(self, name: str) -> Tensor:
        value = getattr(self, name)
        if value is None:
            raise RuntimeError(
                f"the layer record has no `{name}`: "
                + ("the pass did not reach this layer" if name == "a" else "no backward reached it")
            )
        return value


class Recording:
    """The passes started inside one ``record_passes`` block, in order; each
    is a list of ``LayerRecord``, one per linear layer."""

    def __init__(self, n_layers: int, generic: bool = False) -> None:
        self.n_layers, self.generic = n_layers, generic
        self.passes: list[list[LayerRecord]] = []

    def start_pass(self) -> list[LayerRecord]:
        """Called by the model when a pass starts: that pass's empty records."""
        layers = [LayerRecord() for _ in range(self.n_layers)]
        self.passes.append(layers)
        return layers

    def clear_grads(self) -> None:
        """Forget every ``g``, before a backward whose reach ``with_grads`` tells."""
        for layers in self.passes:
            for layer in layers:
                layer.g = None

    def with_grads(self) -> list[int]:
        """The passes whose layers received a gradient since ``clear_grads``
        (one reaching the first layer went through all the others)."""
        return [p for p, layers in enumerate(self.passes) if layers[0].g is not None]

    def __getitem__(self, index: int) -> list[LayerRecord]:
        return self.passes[index]

    def __len__(self) -> int:
        return len(self.passes)

    def __iter__(self) -> Iterator[list[LayerRecord]]:
        return iter(self.passes)


@contextmanager
def record_passes(model, *, generic: bool = False) -> Iterator[Recording]:
    """Record ``a`` and ``g`` of every linear layer of ``model`` (a ``TaylorMLP``)
    for each pass started inside the block; ``generic=True`` runs those passes
    on the generic runtime, so that their graphs can be backpropagated more
    than once. An inner block takes over from an outer one until it closes."""
    recording = Recording(len(model.linear_layers()), generic)
    previous = model.recorder
    model.recorder = recording
    try:
        yield recording
    finally:
        model.recorder = previous
