"""keras.applications ConvNeXt <-> deepvision, both backends, through the canonical checkpoint.

Proof as issue 15 asks: a keras.applications ConvNeXt built with ``weights=None`` and made
non-trivial (layer-scale gammas U(0.2, 1.0) instead of 1e-6, which hides every block-level mapping
error; LayerNorm gammas N(1, 0.1) and betas N(0, 0.1); kernels N(0, 1/fan_in)), imported with
``import_keras_application`` into both backends at an odd input size (97x131): logits within 1e-4
relative. Exported back with ``export_keras_application`` into a fresh keras.applications model:
weights bit-exact, logits compared again. A small config of keras.applications' own ``ConvNeXt()``
builder keeps it fast; the full ConvNeXtTiny is checked for names, shapes and counts.
"""

from __future__ import annotations

import numpy as np
import pytest

from deepvision import testing
from deepvision.importers import keras_applications_convnext as mapping
from deepvision.importers.keras_applications import export_keras_application, import_keras_application
from deepvision.portable import load_portable

pytest.importorskip("tensorflow")
pytest.importorskip("torch")

SMALL = {"depths": [1, 1, 2, 1], "projection_dims": [24, 48, 96, 192]}


def make_nontrivial(app_model, seed: int = 0) -> None:
    """Randomise a keras.applications ConvNeXt so that no mapping error can hide."""
    rng = np.random.default_rng(seed)
    for layer in mapping._flat_layers(app_model):
        kind = type(layer).__name__
        for variable in layer.weights:
            shape = tuple(variable.shape)
            leaf = variable.path.rsplit("/", 1)[-1]
            if kind == "LayerScale":
                value = rng.uniform(0.2, 1.0, shape)
            elif kind == "LayerNormalization":
                value = rng.normal(1.0 if leaf == "gamma" else 0.0, 0.1, shape)
            elif leaf == "kernel":
                value = rng.normal(0.0, 1.0 / np.sqrt(np.prod(shape[:-1])), shape)
            else:
                value = rng.normal(0.0, 0.1, shape)
            variable.assign(value.astype(np.float32))


def _pixels(shape, seed=1):
    return np.random.default_rng(seed).uniform(0, 255, size=shape).astype(np.float32)


def _application(config):
    return mapping.build_application("ConvNeXt", config)


@pytest.mark.parametrize("config", [
    {**SMALL, "include_top": True, "classes": 10, "input_shape": [97, 131, 3], "include_preprocessing": True},
    {**SMALL, "include_top": False, "pooling": "avg", "input_shape": [97, 131, 3], "include_preprocessing": False},
], ids=["top-preprocessing", "headless-avg"])
def test_keras_applications_convnext_round_trip(config, tmp_path):
    app = _application(config)
    make_nontrivial(app)
    x = _pixels((2, 97, 131, 3))
    if not config["include_preprocessing"]:
        x = (x / 255.0 - 0.45) / 0.225
    expected = np.asarray(app(x, training=False))

    path = import_keras_application(app, "ConvNeXt", tmp_path / "canonical.safetensors")
    for backend in ("tensorflow", "pytorch"):
        model = load_portable(path, backend)
        got = testing.forward(model, x)
        assert testing.max_relative_error(got, expected) <= 1e-4, backend
    # The residual branches matter at these gammas: a model without them differs a lot.
    assert float(np.std(expected)) > 1e-2

    out = export_keras_application(path, tmp_path / "back.weights.h5")
    fresh = _application(config)
    fresh.load_weights(str(out))
    for a, b in zip(app.weights, fresh.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    assert testing.max_abs_error(np.asarray(fresh(x, training=False)), expected) == 0.0


def test_full_size_tiny_maps_every_variable_with_the_deepvision_shapes():
    import keras

    config = {"include_top": True, "classes": 1000, "input_shape": [224, 224, 3]}
    app = keras.applications.ConvNeXtTiny(**mapping.app_kwargs(config))
    assert app.count_params() == 28_589_128
    variables = mapping.variable_map(app, config)
    assert {n: tuple(v.shape) for n, v in variables.items()} == mapping.canonical_shapes("ConvNeXtTiny", config)
    kernel = variables["blocks.0.depthwise_conv.depthwise_kernel"]
    assert tuple(kernel.variable.shape) == (7, 7, 1, 96) and kernel.shape == (7, 7, 96, 1)
    implied = mapping.application_config(app)
    assert implied["depths"] == [3, 3, 9, 3] and implied["include_preprocessing"] is True
