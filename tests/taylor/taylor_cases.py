"""Test cases as data (STYLE #12) and the independent references they are checked against.

Every network case names its seed, so a failure reproduces alone; the
reference derivatives come from nested ``torch.autograd.grad`` on the plain
forward pass, which shares no code with the Taylor streams.
"""

from __future__ import annotations

import torch

from pdec.taylor import ACTIVATIONS, Laplacian, Partial, TaylorMLP

BUILTIN = ["tanh", "sin", "cos", "softplus", "sigmoid", "gelu", "swish"]
assert set(BUILTIN) <= set(ACTIVATIONS)

# Every built-in activation twice, depth 1–3, input dimension 1–6, 1–3 outputs.
NETWORKS = [
    dict(id="tanh-d1-h8-o1", seed=0, n_in=1, hidden=[8], n_out=1, activation="tanh"),
    dict(id="tanh-d4-h6x5x4-o2", seed=1, n_in=4, hidden=[6, 5, 4], n_out=2, activation="tanh"),
    dict(id="sin-d2-h7x6-o3", seed=2, n_in=2, hidden=[7, 6], n_out=3, activation="sin"),
    dict(id="sin-d6-h5-o1", seed=3, n_in=6, hidden=[5], n_out=1, activation="sin"),
    dict(id="cos-d3-h6x6-o1", seed=4, n_in=3, hidden=[6, 6], n_out=1, activation="cos"),
    dict(id="cos-d5-h4x5x3-o2", seed=5, n_in=5, hidden=[4, 5, 3], n_out=2, activation="cos"),
    dict(id="softplus-d2-h9-o2", seed=6, n_in=2, hidden=[9], n_out=2, activation="softplus"),
    dict(id="softplus-d4-h5x6-o1", seed=7, n_in=4, hidden=[5, 6], n_out=1, activation="softplus"),
    dict(id="sigmoid-d3-h6x4x5-o3", seed=8, n_in=3, hidden=[6, 4, 5], n_out=3, activation="sigmoid"),
    dict(id="sigmoid-d1-h7x7-o1", seed=9, n_in=1, hidden=[7, 7], n_out=1, activation="sigmoid"),
    dict(id="gelu-d5-h6-o1", seed=10, n_in=5, hidden=[6], n_out=1, activation="gelu"),
    dict(id="gelu-d2-h5x5x5-o2", seed=11, n_in=2, hidden=[5, 5, 5], n_out=2, activation="gelu"),
    dict(id="swish-d3-h8x6-o2", seed=12, n_in=3, hidden=[8, 6], n_out=2, activation="swish"),
    dict(id="swish-d6-h4x4-o3", seed=13, n_in=6, hidden=[4, 4], n_out=3, activation="swish"),
]


def _pairs(D: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(D) for j in range(i, D)]


def _third_mixed(D: int) -> tuple[int, ...]:
    """∂³/∂x∂y∂z where there are three columns, else as mixed as D allows."""
    return (0, 1, 2) if D >= 3 else tuple(sorted((0, D - 1, D - 1)))


def _all_columns(D: int) -> tuple[int, ...]:
    return tuple(range(D))


# Operator kinds, each a function of the input dimension D (every stream kind).
OPERATORS = [
    dict(id="value", ops=lambda D: [Partial(())]),
    dict(id="first", ops=lambda D: [Partial((i,)) for i in range(D)]),
    dict(id="second-pure", ops=lambda D: [Partial((i, i)) for i in range(D)]),
    dict(id="second-mixed", ops=lambda D: [Partial(p) for p in _pairs(D) if p[0] != p[1]] or [Partial((0, 0))]),
    dict(id="laplacian", ops=lambda D: [Laplacian(_all_columns(D))]),
    dict(id="laplacian-subset", ops=lambda D: [Laplacian(_all_columns(D)[:-1] or (0,)), Partial(())]),
    dict(id="third-pure", ops=lambda D: [Partial((D - 1,) * 3)]),
    dict(id="fourth-pure", ops=lambda D: [Partial((0,) * 4)]),
    dict(id="third-mixed", ops=lambda D: [Partial(_third_mixed(D)), Partial((0, 0, D - 1))]),
    dict(id="fourth-mixed-xxyy", ops=lambda D: [Partial((0, 0, D - 1, D - 1))]),
    dict(id="fourth-mixed-xyyy", ops=lambda D: [Partial((0,) + (D - 1,) * 3), Partial((0, 0, 0) + (D - 1,))]),
    dict(id="bilaplacian", ops=lambda D: [Laplacian(_all_columns(D), power=2)]),
    dict(id="heat-like", ops=lambda D: [Partial(()), Partial((D - 1,)), Laplacian(_all_columns(D)[:-1] or (0,))]),
]


def make_net(case: dict, activation=None) -> TaylorMLP:
    torch.manual_seed(case["seed"])
    net = TaylorMLP(case["n_in"], case["hidden"], case["n_out"], activation or case["activation"])
    # Random non-zero biases, so no derivative vanishes by symmetry.
    with torch.no_grad():
        for layer in net.linear_layers():
            layer.bias.normal_(0, 0.5)
    return net


def make_points(case: dict, n: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(1000 + case["seed"])
    return torch.rand(n, case["n_in"], generator=g, dtype=torch.float64) * 2 - 1


class AutogradReference:
    """Derivatives of ``net(X)`` by nested ``torch.autograd.grad``, memoised by index."""

    def __init__(self, net: TaylorMLP, X: torch.Tensor) -> None:
        self.x = X.clone().requires_grad_(True)
        self.u = net(self.x)
        self.memo: dict[tuple, torch.Tensor] = {}

    def _d(self, index: tuple[int, ...], k: int) -> torch.Tensor:
        key = (index, k)
        if key not in self.memo:
            if not index:
                self.memo[key] = self.u[:, k]
            else:
                (g,) = torch.autograd.grad(self._d(index[:-1], k).sum(), self.x, create_graph=True)
                self.memo[key] = g[:, index[-1]]
        return self.memo[key]

    def partial(self, index: tuple[int, ...]) -> torch.Tensor:
        return torch.stack([self._d(tuple(sorted(index)), k) for k in range(self.u.shape[1])], 1).detach()

    def of(self, op) -> torch.Tensor:
        if isinstance(op, Partial):
            return self.partial(op.index)
        if op.power == 1:
            return sum(self.partial((i, i)) for i in op.over)
        return sum(self.partial((i, i, j, j)) for i in op.over for j in op.over)


def rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    """Largest absolute error relative to the largest reference magnitude."""
    scale = ref.abs().max().item()
    assert scale > 0, "reference is identically zero: the check would be vacuous"
    return (a - ref).abs().max().item() / scale


def by_id(cases: list[dict]) -> dict:
    return dict(argvalues=cases, ids=[c["id"] for c in cases])
