"""What KFAC needs from a pass through a TaylorMLP (REFERENCES §2).

In a Taylor-mode pass every linear layer is applied to ``S`` streams with
the same weights (``mlp.py``), so its weight gradient is
``Σ_{n,s} g_{n,s} a_{n,s}ᵀ`` over points and streams. KFAC for PINN losses
(Dangel, Müller & Zeinhofer, NeurIPS 2024) builds each layer's Kronecker
factors from exactly these: the input streams ``a [S, N, in]`` and the
gradients ``g [S, N, out]`` of the backpropagated scalar (for KFAC, the sum
of the residuals) w.r.t. the output streams.

    with record(model, term="interior") as rec:
        out = model.taylor(X, plan)
        residual_sum(out).backward()
    A, B = rec[0].factors("expand")

The gradients arrive during backward, which may also run after the block
has closed: only passes *started* inside the block are recorded. Outside a
block the layers capture nothing and register no hooks.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import Tensor


@dataclass
class LayerRecord:
    """One linear layer in one recorded pass.

    ``a``: input streams ``[S, N, in]`` (stream 0 is the value; the bias acts
    on it alone, see ``a_with_bias``); ``g``: gradient w.r.t. the output
    streams ``[S, N, out]``; a plain forward pass has ``S = 1``.
    """

    term: str
    a: Tensor | None = None
    g: Tensor | None = None

    @property
    def n_streams(self) -> int:
        return 0 if self.a is None else self.a.shape[0]

    def a_with_bias(self) -> Tensor:
        """``a`` with the bias column: 1 on the value stream, 0 on the others,
        so that ``Σ_s g_sᵀ [a_s, 1_s]`` is the gradient of ``[W, b]``."""
        a = self._need("a")
        column = torch.zeros(*a.shape[:2], 1, dtype=a.dtype, device=a.device)
        column[0] = 1
        return torch.cat([a, column], dim=2)

    def factors(self, mode: str = "expand") -> tuple[Tensor, Tensor]:
        """The Kronecker factors ``(A, B)`` of this layer for this term.

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
                f"layer record for term `{self.term}` has no `{name}`: "
                + ("no pass ran inside the block" if name == "a" else "backward has not run yet")
            )
        return value


@dataclass
class Recording:
    """The records of all linear layers of a model, in order."""

    term: str
    layers: list[LayerRecord] = field(default_factory=list)

    def __getitem__(self, index: int) -> LayerRecord:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[LayerRecord]:
        return iter(self.layers)


class _Slot:
    """Set on ``TaylorLinear.kfac_slot`` while recording; called by the runtimes."""

    def __init__(self, rec: LayerRecord, index: int) -> None:
        self.rec, self.index = rec, index

    def save_input(self, a: Tensor) -> None:
        if self.rec.a is not None:
            raise RuntimeError(
                f"linear layer {self.index} ran twice inside one `record` block "
                f"(term `{self.rec.term}`); record each loss term in its own block"
            )
        self.rec.a = a.detach()

    def save_grad(self, g: Tensor) -> None:
        self.rec.g = g.detach()

    def capture(self, a: Tensor, out: Tensor) -> None:
        """Keep ``a`` and hook ``out`` (a tensor hook, gone with the graph);
        a plain pass (``[N, features]``) is stored as one stream."""
        self.save_input(a if a.dim() == 3 else a.unsqueeze(0))
        if out.requires_grad:
            out.register_hook(self._on_grad)

    def _on_grad(self, g: Tensor) -> None:
        self.save_grad(g if g.dim() == 3 else g.unsqueeze(0))


@contextmanager
def record(model, term: str = "interior") -> Iterator[Recording]:
    """Record ``a`` and ``g`` of every linear layer of ``model`` (anything with
    ``linear_layers()`` returning ``TaylorLinear``s) for passes started inside."""
    layers = model.linear_layers()
    rec = Recording(term, [LayerRecord(term) for _ in layers])
    previous = [layer.kfac_slot for layer in layers]
    for i, (layer, r) in enumerate(zip(layers, rec.layers)):
        layer.kfac_slot = _Slot(r, i)
    try:
        yield rec
    finally:
        for layer, slot in zip(layers, previous):
            layer.kfac_slot = slot
