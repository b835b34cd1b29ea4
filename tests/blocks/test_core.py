"""The primitives' shared vocabulary: one activation table, implemented alike by both backends."""

from __future__ import annotations

import numpy as np
import pytest

from deepvision.layers import core

pytest.importorskip("tensorflow")
pytest.importorskip("torch")


def test_both_backends_implement_exactly_the_neutral_activation_table():
    from deepvision.layers import core_pt, core_tf

    assert tuple(core_tf.FUNCTIONS) == core.ACTIVATIONS
    assert tuple(core_pt.FUNCTIONS) == core.ACTIVATIONS
    assert core_tf.activation_name is core.activation_name is core_pt.activation_name


@pytest.mark.parametrize("name", core.ACTIVATIONS)
def test_activation_parity(name):
    import torch

    from deepvision.layers import core_pt, core_tf

    x = np.random.default_rng(0).normal(scale=3.0, size=(3, 5, 7)).astype(np.float32)
    expected = np.asarray(core_tf.Activation(name)(x))
    actual = core_pt.Activation(name)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)


def test_activation_names_are_normalised_and_checked_once():
    assert core.activation_name(None) == "linear"
    assert core.activation_name("SiLU") == "swish"
    with pytest.raises(ValueError, match=r"Unknown activation 'mish'.*'silu'"):
        core.activation_name("mish")
