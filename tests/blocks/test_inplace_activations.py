"""In-place activations (PyTorch, inference only): the same numbers, and never under autograd."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deepvision.layers.core_pt import INPLACE, Activation  # noqa: E402
from deepvision.registry import build  # noqa: E402


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_activation_overwrites_only_without_gradients(name):
    x = torch.randn(2, 3, 4, 5)
    expected = Activation(name)(x.clone())
    act = Activation(name, inplace=True)
    with torch.no_grad():
        y = x.clone()
        out = act(y)
    assert out.data_ptr() == y.data_ptr() and torch.equal(out, expected)  # the input itself, overwritten
    z = x.clone().requires_grad_()
    out = act(z * 1.0)
    assert torch.equal(out, expected)
    out.sum().backward()  # no in-place error: autograd sees the out-of-place function
    assert z.grad is not None
    assert not Activation("gelu", inplace=True).inplace  # no in-place variant: stays out of place


def test_mbconv_gives_the_same_output_with_and_without_gradients():
    block = build("MBConv", "pytorch", input_filters=8, output_filters=8, expand_ratio=4, se_ratio=0.25).eval()
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 8, 9, 7)).astype(np.float32))
    with torch.no_grad():
        fast = block(x)
    slow = block(x)
    assert torch.equal(fast, slow.detach())
