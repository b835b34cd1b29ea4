"""ConvNeXt family behaviour: parity on non-trivial weights, preprocessing, pooling, epsilons, features.

Counts, schemas and file formats of every variant are checked by the registry-driven contract tests;
this file tests what is particular to ConvNeXt. Layer-scale gammas start at 1e-6 in a fresh model,
which would hide every block-level error, so the weights are made non-trivial first.
"""

from __future__ import annotations

import numpy as np
import pytest

import deepvision
from deepvision import testing
from deepvision.adapters import iter_slots
from deepvision.portable import to_backend

pytest.importorskip("tensorflow")
pytest.importorskip("torch")

SMALL = {"depths": [1, 1, 2, 1], "projection_dims": [24, 48, 96, 192]}


def make_nontrivial(model, seed: int = 0) -> None:
    """Random kernels, layer-scale gammas U(0.2, 1.0), LayerNorm gammas N(1, 0.1) and betas N(0, 0.1)."""
    testing.randomize_weights(model, seed)
    rng = np.random.default_rng(seed + 1)
    for slot in iter_slots(model):
        if slot.name.endswith("layer_scale.gamma"):
            slot.write(rng.uniform(0.2, 1.0, slot.shape).astype(np.float32))
        elif slot.role == "norm":
            mean = 1.0 if slot.name.endswith("gamma") else 0.0
            slot.write(rng.normal(mean, 0.1, slot.shape).astype(np.float32))


def _pair(**config):
    tf_model = deepvision.models.ConvNeXt(backend="tensorflow", **{**SMALL, "input_shape": (None, None, 3), **config})
    make_nontrivial(tf_model)
    return tf_model, to_backend(tf_model, "pytorch")


def _images(shape=(2, 97, 131, 3), seed=0, scale=1.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32)


@pytest.mark.parametrize("config", [
    {"classes": 10, "include_preprocessing": False},
    {"classes": 7, "include_preprocessing": True},
    {"include_top": False, "pooling": "avg", "include_preprocessing": False},
    {"include_top": False, "pooling": "max", "include_preprocessing": False},
    {"include_top": False, "pooling": None, "include_preprocessing": False, "layer_norm_epsilon": 1e-5},
], ids=["top", "top-preprocessing", "avg", "max", "map-eps1e-5"])
def test_backends_agree_on_nontrivial_weights_at_an_odd_size(config):
    tf_model, pt_model = _pair(**config)
    scale = 60.0 if config.get("include_preprocessing") else 1.0
    x = _images(scale=scale) + (120.0 if scale > 1 else 0.0)
    a, b = testing.forward(tf_model, x), testing.forward(pt_model, x)
    assert testing.max_relative_error(a, b) <= 1e-4
    if not config.get("include_top", True) and config.get("pooling") is None:
        assert a.shape == (2, 3, 4, 192)  # 97x131 floors to 3x4 at stride 32, as both references do
    # The residual branches matter: without layer scale the output changes a lot.
    assert np.std(a) > 1e-3


def test_include_preprocessing_is_imagenet_mean_std_on_0_255_pixels():
    tf_on, _ = _pair(classes=5, include_preprocessing=True)
    tf_off = deepvision.models.ConvNeXt(backend="tensorflow", **SMALL, classes=5, input_shape=(None, None, 3),
                                        include_preprocessing=False)
    tf_off.set_weights(tf_on.get_weights())
    pixels = np.random.default_rng(3).uniform(0, 255, size=(2, 64, 96, 3)).astype(np.float32)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    normalised = ((pixels / 255.0 - mean) / std).astype(np.float32)
    assert testing.max_relative_error(testing.forward(tf_on, pixels), testing.forward(tf_off, normalised)) <= 1e-5
    assert tf_on.get_config()["include_preprocessing"] is True
    assert tf_off.get_config()["include_preprocessing"] is False
    arch = deepvision.registry.get_architecture("ConvNeXtTiny")
    assert arch.preprocessing["mean"] == list(mean) and arch.preprocessing["value_range"] == [0, 255]


def test_every_layer_norm_uses_the_configured_epsilon():
    import keras
    import torch

    tf_model = deepvision.models.ConvNeXt(backend="tensorflow", **SMALL, classes=3, layer_norm_epsilon=3e-5)
    pt_model = deepvision.models.ConvNeXt(backend="pytorch", **SMALL, classes=3, layer_norm_epsilon=3e-5)
    tf_eps = [layer.epsilon for layer in tf_model._flatten_layers() if isinstance(layer, keras.layers.LayerNormalization)]
    pt_eps = [m.eps for m in pt_model.modules() if isinstance(m, torch.nn.LayerNorm)]
    # stem, three downsamples, five blocks, head
    assert len(tf_eps) == len(pt_eps) == 10
    assert set(tf_eps) == set(pt_eps) == {3e-5}


def test_features_only_levels_and_feature_info():
    tf_model, _ = _pair(features_only=True, include_preprocessing=False)
    pt_model = to_backend(tf_model, "pytorch")
    x = _images()
    tf_levels, pt_levels = testing.forward(tf_model, x), testing.forward(pt_model, x)
    assert [f.shape[1:] for f in tf_levels] == [(24, 32, 24), (12, 16, 48), (6, 8, 96), (3, 4, 192)]
    for a, b in zip(tf_levels, pt_levels):
        assert testing.max_relative_error(a, b) <= 1e-4
    for model in (tf_model, pt_model):
        assert model.feature_info.channels() == [24, 48, 96, 192]
        assert model.feature_info.reduction() == [4, 8, 16, 32]
        assert model.feature_info.module_name() == ["blocks.0", "blocks.1", "blocks.3", "blocks.4"]
    import torch

    with torch.device("meta"):
        tiny = deepvision.models.ConvNeXtTiny(backend="pytorch", features_only=True, out_indices=[0, 1])
    assert tiny.feature_info.channels() == [96, 192] and tiny.feature_info.reduction() == [4, 8]
    assert "head" in tiny.pruned_modules and "blocks.6" in tiny.pruned_modules and "blocks.5" not in tiny.pruned_modules


def test_bad_arguments_name_the_problem():
    for backend in ("tensorflow", "pytorch"):
        with pytest.raises(ValueError, match="four stages"):
            deepvision.models.ConvNeXt(backend=backend, depths=[1, 1, 1], projection_dims=[8, 8, 8])
        with pytest.raises(ValueError, match="pooling"):
            deepvision.models.ConvNeXt(backend=backend, **SMALL, include_top=False, pooling="mean")
