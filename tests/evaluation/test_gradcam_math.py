"""The shared numpy maths of Grad-CAM++: weights, normalisation, bilinear upsampling, token grids."""

from __future__ import annotations

import numpy as np
import pytest

from deepvision.evaluation.activation_maps import (
    CHANNELS_LAST,
    TOKENS,
    bilinear_resize,
    gradcam_plus_plus,
    gradcam_plus_plus_weights,
    normalize_maps,
    resolve_class_indices,
    to_channels_first_map,
    token_grid,
)


@pytest.mark.parametrize("size_in,size_out", [((5, 4), (16, 12)), ((3, 3), (7, 11)), ((8, 6), (8, 6)), ((9, 7), (4, 3))])
def test_bilinear_matches_torch_and_keras(size_in, size_out):
    torch = pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    maps = np.random.default_rng(0).random((3, *size_in)).astype("float32")
    ours = bilinear_resize(maps, size_out)
    with torch.no_grad():
        pt = torch.nn.functional.interpolate(torch.from_numpy(maps)[:, None], size=size_out, mode="bilinear",
                                             align_corners=False, antialias=False)[:, 0].numpy()
    tf = keras.ops.convert_to_numpy(keras.ops.image.resize(maps[..., None], size_out, interpolation="bilinear",
                                                            antialias=False))[..., 0]
    assert ours.shape == (3, *size_out)
    assert np.abs(ours - pt).max() <= 1e-6
    assert np.abs(ours - tf).max() <= 1e-6


def test_weights_closed_form_equals_exponential_form():
    # The paper's alpha and weights with Y = exp(S): exp(S) cancels in alpha and scales every
    # weight of the image by the same factor, which the normalisation removes.
    rng = np.random.default_rng(1)
    a = np.maximum(rng.standard_normal((2, 3, 4, 5)), 0.0)
    g = rng.standard_normal((2, 3, 4, 5))
    score = np.array([3.0, -2.0])
    e = np.exp(score)[:, None, None, None]
    d1, d2, d3 = e * g, e * g**2, e * g**3
    alpha = d2 / (2 * d2 + a.sum(axis=(2, 3), keepdims=True) * d3)
    weights_exp = (alpha * np.maximum(d1, 0)).sum(axis=(2, 3))
    np.testing.assert_allclose(weights_exp / np.exp(score)[:, None], gradcam_plus_plus_weights(a, g), rtol=1e-12)


def test_weights_zero_gradient_and_zero_denominator():
    a = np.ones((1, 2, 1, 2))
    g = np.zeros((1, 2, 1, 2))
    g[0, 1, 0, 0] = -1.0  # 2 g^2 + sum(A) g^3 = 2 - 2 = 0: the guard divides by 1
    weights = gradcam_plus_plus_weights(a, g)
    assert np.isfinite(weights).all()
    np.testing.assert_array_equal(weights, 0.0)  # no positive gradient anywhere


def test_normalize_and_flat_maps():
    maps = np.stack([np.arange(6.0).reshape(2, 3), np.full((2, 3), 4.0)])
    out = normalize_maps(maps)
    np.testing.assert_allclose(out[0], np.arange(6.0).reshape(2, 3) / 5.0)
    np.testing.assert_array_equal(out[1], 0.0)
    heat = gradcam_plus_plus(np.zeros((1, 2, 3, 3)), np.ones((1, 2, 3, 3)), (6, 6))
    assert heat.dtype == np.float32 and heat.shape == (1, 6, 6)
    np.testing.assert_array_equal(heat, 0.0)


def test_token_grid_and_layouts():
    assert token_grid(17, (32, 32)) == (1, (4, 4))
    assert token_grid(16, (32, 32)) == (0, (4, 4))
    assert token_grid(7, (8, 12)) == (1, (2, 3))
    assert token_grid(198, (224, 224), prefix_tokens=2) == (2, (14, 14))
    with pytest.raises(ValueError, match="prefix_tokens"):
        token_grid(13, (16, 16))
    tokens = np.arange(2 * 7 * 4, dtype=float).reshape(2, 7, 4)
    grid = to_channels_first_map(tokens, TOKENS, (8, 12))
    assert grid.shape == (2, 4, 2, 3)
    np.testing.assert_array_equal(grid[:, :, 0, 1], tokens[:, 2, :])  # class token dropped, row-major
    nhwc = np.random.default_rng(0).random((1, 3, 5, 2))
    np.testing.assert_array_equal(to_channels_first_map(nhwc, CHANNELS_LAST, (3, 5)), nhwc.transpose(0, 3, 1, 2))


def test_class_indices():
    logits = np.array([[0.0, 2.0, 1.0], [3.0, 0.0, 1.0]])
    np.testing.assert_array_equal(resolve_class_indices(None, logits), [1, 0])
    np.testing.assert_array_equal(resolve_class_indices(2, logits), [2, 2])
    np.testing.assert_array_equal(resolve_class_indices([0, 2], logits), [0, 2])
    with pytest.raises(ValueError, match="out of range"):
        resolve_class_indices(3, logits)
    with pytest.raises(ValueError, match="one index per image"):
        resolve_class_indices([0, 1, 2], logits)
