"""keras.applications EfficientNetV2 <-> deepvision, both backends, through canonical names.

Proof as the keras.applications interface asks: ``weights=None`` models with calibrated BatchNorm
statistics (the last BatchNorm of each residual branch, ``project_bn``, shrunk), weights copied by
``variable_map`` into the deepvision Keras model, converted to PyTorch through the canonical format,
logits compared before softmax (relative error <= 1e-4); then back into a fresh keras.applications
model and compared again. B0 at 224x224 and at 225x199 (asymmetric "same" padding at every stride-2
layer), B1 headless at 64x64; M and L for structure only.
"""

from __future__ import annotations

import functools
import gc

import numpy as np
import pytest

import deepvision
from deepvision import testing
from deepvision.adapters import slots_by_name
from deepvision.backend import PYTORCH, TENSORFLOW
from deepvision.importers import keras_applications_efficientnetv2 as mapping
from deepvision.models.classification.efficientnetv2 import CALIBRATION_SHRINK
from deepvision.portable import to_backend
from deepvision.registry import get_architecture

pytest.importorskip("tensorflow")
pytest.importorskip("torch")

TOLERANCE = 1e-4
KERAS = mapping.CONFIG_OVERRIDES  # keras.applications' filter rounding (only B3 depends on it)


def _pixels(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=shape).astype(np.float32)


def _application(name: str, config: dict):
    import keras

    return getattr(keras.applications, mapping.APPLICATIONS[name])(**mapping.app_kwargs(config))


def _import(app_model, name: str, config: dict, tf_model=None):
    """deepvision Keras model with the keras.applications weights (variable by variable)."""
    if tf_model is None:
        tf_model = deepvision.registry.build_from_neutral_config(name, config, TENSORFLOW)
    slots = slots_by_name(tf_model)
    variables = mapping.variable_map(app_model, config)
    assert set(variables) == set(slots)
    for canonical, variable in variables.items():
        slots[canonical].write(variable.numpy())
    return tf_model


def _export(model, app_model, config: dict) -> None:
    """keras.applications variables <- a deepvision model of either backend (canonical state)."""
    state = testing.canonical_state(model)
    for canonical, variable in mapping.variable_map(app_model, config).items():
        variable.assign(state[canonical])


@functools.cache
def _b0():
    """keras.applications B0 at 224x224 and at 225x199 (same weights), the deepvision twins."""
    config = {"include_top": True, "classes": 1000, "input_shape": [224, 224, 3], **KERAS}
    app = _application("EfficientNetV2B0", config)
    testing.calibrate_batch_norm(app, _pixels((4, 224, 224, 3)), shrink=CALIBRATION_SHRINK)
    odd_config = {**config, "input_shape": [225, 199, 3]}
    app_odd = _application("EfficientNetV2B0", odd_config)
    app_odd.set_weights(app.get_weights())
    # One deepvision Keras model for both sizes (H and W free), and its PyTorch twin.
    tf_model = _import(app, "EfficientNetV2B0", {**config, "input_shape": [None, None, 3]})
    pt_model = to_backend(tf_model, PYTORCH)
    return {"224": (app, config), "odd": (app_odd, odd_config)}, tf_model, pt_model


@pytest.mark.parametrize("size", ["224", "odd"])
def test_b0_logits_match_keras_applications_in_both_backends(size):
    apps, tf_model, pt_model = _b0()
    app, config = apps[size]
    x = _pixels((2, *config["input_shape"]), seed=1)
    expected = testing.forward(app, x)
    assert expected.shape == (2, 1000)
    tf_error = testing.max_relative_error(testing.forward(tf_model, x), expected)
    pt_error = testing.max_relative_error(testing.forward(pt_model, x), expected)
    assert tf_error <= TOLERANCE and pt_error <= TOLERANCE, (tf_error, pt_error)
    # The float32 noise of the comparison itself is far below the tolerance (PyTorch float64 twin).
    import torch

    pt64 = to_backend(tf_model, PYTORCH).double()
    with torch.no_grad():
        y64 = pt64(torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float64))).numpy()
    assert testing.max_relative_error(expected, y64) <= TOLERANCE / 10


@pytest.mark.parametrize("size", ["224", "odd"])
def test_b0_exports_back_to_keras_applications(size):
    """PyTorch weights (changed by a training-mode pass) -> keras.applications variables -> same logits."""
    import torch

    apps, tf_model, _ = _b0()
    _, config = apps[size]
    pt_model = to_backend(tf_model, PYTORCH)
    x = _pixels((2, *config["input_shape"]), seed=2)
    for module in pt_model.modules():  # new BatchNorm statistics: 30% of a fresh batch
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 0.3
    testing.forward(pt_model, _pixels((2, 96, 96, 3), seed=3), training=True)
    fresh = _application("EfficientNetV2B0", config)
    _export(pt_model, fresh, config)
    expected = testing.forward(pt_model, x)
    assert testing.max_relative_error(testing.forward(fresh, x), expected) <= TOLERANCE
    # Bit-exact: every keras.applications variable holds the canonical tensor it was given.
    state = testing.canonical_state(pt_model)
    for canonical, variable in mapping.variable_map(fresh, config).items():
        np.testing.assert_array_equal(variable.numpy(), state[canonical], err_msg=canonical)


def test_b1_headless_pooled_without_preprocessing_at_64x64():
    config = {"include_top": False, "pooling": "avg", "input_shape": [64, 64, 3], "include_preprocessing": False,
              **KERAS}
    app = _application("EfficientNetV2B1", config)
    x_calibration = np.random.default_rng(0).normal(size=(4, 64, 64, 3)).astype(np.float32)
    testing.calibrate_batch_norm(app, x_calibration, shrink=CALIBRATION_SHRINK)
    tf_model = _import(app, "EfficientNetV2B1", config)
    pt_model = to_backend(tf_model, PYTORCH)
    x = np.random.default_rng(1).normal(size=(2, 64, 64, 3)).astype(np.float32)
    expected = testing.forward(app, x)
    assert expected.shape == (2, 1280)
    for model in (tf_model, pt_model):
        assert testing.max_relative_error(testing.forward(model, x), expected) <= TOLERANCE
    fresh = _application("EfficientNetV2B1", config)
    _export(pt_model, fresh, config)
    assert testing.max_relative_error(testing.forward(fresh, x), testing.forward(pt_model, x)) <= TOLERANCE


@pytest.mark.parametrize("name", [
    "EfficientNetV2B0",
    "EfficientNetV2B2",
    "EfficientNetV2B3",
    "EfficientNetV2S",
    pytest.param("EfficientNetV2M", marks=pytest.mark.slow),
    pytest.param("EfficientNetV2L", marks=pytest.mark.slow),
])
def test_variable_map_covers_every_variable_once(name):
    """Every keras.applications variable maps to exactly one canonical tensor of the right shape."""
    import keras

    config = {"include_top": True, "classes": 1000, "input_shape": [224, 224, 3], **KERAS}
    app = _application(name, config)
    try:
        variables = mapping.variable_map(app, config)
        assert len(variables) == len(app.weights)
        assert len({id(v) for v in variables.values()}) == len(app.weights)
        expected = mapping.canonical_shapes(name, config)
        assert {n: tuple(v.shape) for n, v in variables.items()} == expected
        assert sum(int(np.prod(s)) for s in expected.values()) == app.count_params()
    finally:
        del app
        keras.backend.clear_session()
        gc.collect()


def test_variable_map_rejects_another_variant():
    config = {"include_top": True, "classes": 10, "input_shape": [64, 64, 3], "architecture": "EfficientNetV2B1",
              **KERAS}
    app = _application("EfficientNetV2B0", config)
    with pytest.raises(ValueError, match="not a deepvision EfficientNetV2"):
        mapping.variable_map(app, config)


def test_b3_filter_rounding_seed_versus_keras_applications():
    """The seed's B3 (14,486,374) rounds filters with MobileNet's guard; keras.applications' (14,467,622)
    does not. Only B3's first stage differs (24 vs 16 output filters); the map insists on the right config."""
    def total(config):
        return sum(int(np.prod(s)) for s in mapping.canonical_shapes("EfficientNetV2B3", config).values())

    assert total({}) == 14_486_374
    assert total(KERAS) == 14_467_622
    for name in mapping.APPLICATIONS:
        if name != "EfficientNetV2B3":
            assert mapping.canonical_shapes(name, {}) == mapping.canonical_shapes(name, KERAS)
    config = {"include_top": True, "classes": 10, "input_shape": [32, 32, 3]}
    app = _application("EfficientNetV2B3", config)
    with pytest.raises(ValueError, match="min_filter_ratio"):
        mapping.variable_map(app, config)
    assert len(mapping.variable_map(app, {**config, **KERAS})) == len(app.weights)


def test_application_config_reads_preprocessing_and_pooling():
    apps, _, _ = _b0()
    assert mapping.application_config(apps["224"][0]) == {**KERAS, "include_preprocessing": True}
    headless = _application("EfficientNetV2B0", {"include_top": False, "pooling": "max", "input_shape": [32, 32, 3],
                                                 "include_preprocessing": False})
    assert mapping.application_config(headless) == {**KERAS, "include_preprocessing": False, "pooling": "max"}


def test_app_kwargs():
    kwargs = mapping.app_kwargs({"include_top": False, "pooling": "max", "input_shape": [None, None, 3],
                                 "include_preprocessing": False, "classes": 7})
    assert kwargs == {"include_top": False, "weights": None, "input_shape": (None, None, 3), "pooling": "max",
                      "classes": 7, "classifier_activation": None, "include_preprocessing": False}
    assert mapping.app_kwargs({})["input_shape"] == (224, 224, 3)
    with pytest.raises(ValueError, match="bn_epsilon"):
        mapping.app_kwargs({"bn_epsilon": 1e-5})
    registered = {n for n in deepvision.models.list_models("EfficientNetV2*") if get_architecture(n).family != "tests"}
    assert set(mapping.APPLICATIONS) == registered
