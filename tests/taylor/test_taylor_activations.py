"""Each built-in activation's derivatives against nested autograd of its value."""

from __future__ import annotations

import pytest
import torch

from pdec.taylor import ACTIVATIONS
from pdec.taylor.activations import resolve_activation
from taylor_cases import BUILTIN


@pytest.mark.parametrize("name", BUILTIN)
def test_derivatives_match_autograd(name):
    fn = ACTIVATIONS[name]
    h = torch.linspace(-4, 4, 101, dtype=torch.float64, requires_grad=True)
    derivs = fn(h, 4)
    assert len(derivs) == 5
    current = fn(h, 0)[0]
    for k in range(5):
        assert torch.allclose(derivs[k], current, rtol=1e-12, atol=1e-12), f"{name}: order {k}"
        if k < 4:
            (current,) = torch.autograd.grad(current.sum(), h, create_graph=True)


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_lower_orders_are_prefixes(name, order):
    h = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(order))
    full, short = ACTIVATIONS[name](h, 4), ACTIVATIONS[name](h, order)
    assert len(short) == order + 1
    for a, b in zip(short, full):
        assert torch.equal(a, b)


def test_order_beyond_four_is_refused():
    with pytest.raises(ValueError, match="up to order 4"):
        ACTIVATIONS["tanh"](torch.zeros(1), 5)


def test_unknown_activation_names_the_supported_ones():
    with pytest.raises(ValueError, match="Unknown activation `relu`. Supported: .*tanh"):
        resolve_activation("relu")
