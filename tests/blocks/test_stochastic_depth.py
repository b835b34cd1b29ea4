"""Drop path statistics in training mode, both backends (the parity harness can only test it off).

Checks: the mask is per sample (a sample is either dropped entirely or kept and scaled by
1 / keep), the keep rate and the expectation are preserved, inference mode and rate 0 are the
identity, and an MBConv/FusedMBConv residual branch is dropped per sample.
"""

from __future__ import annotations

import numpy as np
import pytest

import deepvision
from deepvision import testing
from deepvision.backend import PYTORCH, TENSORFLOW
from deepvision.portable import to_backend

pytest.importorskip("tensorflow")
pytest.importorskip("torch")

BACKENDS = [TENSORFLOW, PYTORCH]


def _per_sample_factors(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y / x per sample, asserting the factor is constant within each sample."""
    ratio = (y / x).reshape(len(x), -1)
    np.testing.assert_allclose(ratio, ratio[:, :1].repeat(ratio.shape[1], axis=1), rtol=1e-6, atol=0)
    return ratio[:, 0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_drop_path_masks_whole_samples_and_preserves_the_expectation(backend):
    drop_prob, n = 0.25, 4000
    keep = 1.0 - drop_prob
    layer = deepvision.layers.StochasticDepth(drop_prob=drop_prob, backend=backend)
    x = np.random.default_rng(0).uniform(0.5, 1.5, size=(n, 3, 4, 2)).astype(np.float32)
    y = testing.forward(layer, x, training=True)
    factors = _per_sample_factors(y, x)
    kept = np.isclose(factors, 1.0 / keep, rtol=1e-6)
    dropped = factors == 0.0
    assert np.all(kept | dropped), "every sample is either dropped or scaled by 1 / keep"
    # Binomial(n, keep): 4000 samples put the kept fraction within 0.03 of keep (> 4 sigma).
    assert abs(kept.mean() - keep) < 0.03
    assert abs(float(np.mean(y / x)) - 1.0) < 0.04, "E[drop_path(x)] = x"
    # A fresh mask on every call.
    again = _per_sample_factors(testing.forward(layer, x, training=True), x)
    assert not np.array_equal(again, factors)


@pytest.mark.parametrize("backend", BACKENDS)
def test_drop_path_works_on_token_tensors(backend):
    layer = deepvision.layers.StochasticDepth(drop_prob=0.5, backend=backend)
    x = np.ones((64, 5, 7), np.float32)
    factors = _per_sample_factors(testing.forward(layer, x, training=True), x)
    assert set(np.unique(factors)) <= {0.0, 2.0} and len(np.unique(factors)) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_drop_path_is_the_identity_in_inference_and_at_rate_zero(backend):
    x = np.random.default_rng(1).normal(size=(16, 5, 7, 3)).astype(np.float32)
    layer = deepvision.layers.StochasticDepth(drop_prob=0.5, backend=backend)
    np.testing.assert_array_equal(testing.forward(layer, x, training=False), x)
    off = deepvision.layers.StochasticDepth(drop_prob=0.0, backend=backend)
    np.testing.assert_array_equal(testing.forward(off, x, training=True), x)
    everything = deepvision.layers.StochasticDepth(drop_prob=1.0, backend=backend)
    np.testing.assert_array_equal(testing.forward(everything, x, training=True), np.zeros_like(x))


@pytest.mark.parametrize("block", ["MBConv", "FusedMBConv"])
def test_block_drops_its_residual_branch_per_sample(block):
    """y = x + branch(x) * mask / keep, with branch(x) from the same block without drop path."""
    keep = 0.5
    config = {"input_filters": 4, "output_filters": 4, "expand_ratio": 2, "se_ratio": 0.25}
    x = np.random.default_rng(2).normal(size=(32, 6, 5, 4)).astype(np.float32)
    tf_block = getattr(deepvision.layers, block)(**config, dropout=1.0 - keep, backend=TENSORFLOW)
    tf_block(x[:1])
    testing.randomize_weights(tf_block)
    for layer in (tf_block, to_backend(tf_block, PYTORCH)):
        # Training-mode BatchNorm uses batch statistics; the deterministic reference is the same
        # block with the drop path switched off (same weights, same batch).
        layer.drop.drop_prob = 0.0
        branch = testing.forward(layer, x, training=True) - x
        layer.drop.drop_prob = 1.0 - keep
        dropped = testing.forward(layer, x, training=True) - x
        # (y - x) carries rounding noise of x's magnitude: compare per sample with an absolute tolerance.
        tolerance = 1e-5 * float(np.abs(x).max())
        is_dropped = [np.abs(d).max() <= tolerance for d in dropped]
        is_kept = [np.abs(d - b / keep).max() <= tolerance for d, b in zip(dropped, branch)]
        assert all(a or b for a, b in zip(is_dropped, is_kept))
        assert any(is_dropped) and any(is_kept)
