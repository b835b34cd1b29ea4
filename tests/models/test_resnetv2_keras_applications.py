"""keras.applications ResNet50V2/101V2/152V2 weights are deepvision ResNetV2 weights (issue 4).

Each proof builds the keras.applications model with ``weights=None`` and logits out
(``classifier_activation=None``), calibrates its BatchNorm statistics (a fresh model has zeros and
ones, which hide mapping errors; the last norm of each residual branch, ``*_2_bn``, is shrunk so the
deep network is not chaotic), maps every variable into a deepvision model through the canonical
names, and compares logits in both backends (relative error <= 1e-4). Export goes the other way:
deepvision weights written into a fresh keras.applications model give the same logits again.
Small inputs (64x64) everywhere, plus one full-size 224x224 check of ResNet50V2.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from deepvision import testing
from deepvision.adapters import slots_by_name
from deepvision.portable import to_backend
from deepvision.registry import build_from_neutral_config

keras = pytest.importorskip("keras")
pytest.importorskip("torch")

from deepvision.importers import keras_applications_resnetv2 as mapping  # noqa: E402

NAMES = list(mapping.APPLICATIONS)
SMALL = {"include_top": True, "classes": 10, "input_shape": [64, 64, 3]}
TOLERANCE = 1e-4
BRANCH_END_NORM = ("_2_bn",)  # keras.applications' last BatchNorm of each residual branch


def _inputs(config: dict, batch: int = 2, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, *config["input_shape"])).astype(np.float32)


def _application(name: str, config: dict):
    return getattr(keras.applications, mapping.APPLICATIONS[name])(**mapping.app_kwargs(config))


def _logits(app, x: np.ndarray) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(app(x, training=False)))


def import_into_deepvision(name: str, app, config: dict):
    """keras.applications variables -> deepvision Keras model (by canonical name) -> PyTorch (canonical format)."""
    tf_model = build_from_neutral_config(name, config, "tensorflow")
    slots = slots_by_name(tf_model)
    variables = mapping.variable_map(app, config)
    assert set(variables) == set(slots)
    for tensor, variable in variables.items():
        slots[tensor].write(keras.ops.convert_to_numpy(variable))
    return tf_model, to_backend(tf_model, "pytorch")


def export_to_application(name: str, model, config: dict):
    """deepvision model (either backend) -> a fresh keras.applications model, through canonical tensors."""
    app = _application(name, config)
    state = testing.canonical_state(model)
    for tensor, variable in mapping.variable_map(app, config).items():
        variable.assign(state[tensor])
    return app


@functools.cache
def imported(name: str, size: int = 64):
    config = SMALL if size == 64 else {"include_top": True, "classes": 1000, "input_shape": [size, size, 3]}
    app = _application(name, config)
    testing.calibrate_batch_norm(app, _inputs(config, batch=2, seed=0), shrink=BRANCH_END_NORM)
    tf_model, pt_model = import_into_deepvision(name, app, config)
    return config, app, tf_model, pt_model


def _check(actual: np.ndarray, expected: np.ndarray) -> float:
    assert actual.shape == expected.shape
    error = testing.max_relative_error(actual, expected)
    assert error <= TOLERANCE, error
    return error


@pytest.mark.parametrize("name", NAMES)
def test_variable_map_covers_both_models_exactly_once(name):
    config, app, tf_model, _ = imported(name)
    variables = mapping.variable_map(app, config)
    slots = slots_by_name(tf_model)
    assert list(variables) == list(slots)  # the deepvision order, every canonical tensor
    assert {n: tuple(v.shape) for n, v in variables.items()} == {n: s.shape for n, s in slots.items()}
    ids = [id(v) for v in variables.values()]
    assert len(set(ids)) == len(ids) == len(app.weights)
    assert set(ids) == {id(w) for w in app.weights}


@pytest.mark.parametrize("name", NAMES)
def test_imported_weights_give_the_same_logits_in_both_backends(name):
    config, app, tf_model, pt_model = imported(name)
    x = _inputs(config)
    expected = _logits(app, x)
    assert expected.shape == (2, 10)
    _check(testing.forward(tf_model, x), expected)
    _check(testing.forward(pt_model, x), expected)


@pytest.mark.parametrize("name", NAMES)
def test_exported_weights_give_the_same_logits_again(name):
    config, _, tf_model, pt_model = imported(name)
    # New statistics in the PyTorch model, so the export cannot pass by returning the imported values.
    changed = to_backend(tf_model, "pytorch")
    testing.calibrate_batch_norm(changed, _inputs(config, batch=2, seed=9), seed=7)
    changed.eval()
    app = export_to_application(name, changed, config)
    state = testing.canonical_state(changed)
    for tensor, variable in mapping.variable_map(app, config).items():
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), state[tensor], err_msg=tensor)
    x = _inputs(config, seed=2)
    expected = testing.forward(changed, x)
    _check(_logits(app, x), expected)
    _check(testing.forward(to_backend(changed, "tensorflow"), x), expected)


def test_full_size_resnet50v2_224():
    """keras.applications ResNet50V2 at its own 224x224, 1000 classes: import, both backends, export back."""
    config, app, tf_model, pt_model = imported("ResNet50V2", 224)
    x = _inputs(config, batch=1)
    expected = _logits(app, x)
    assert expected.shape == (1, 1000)
    _check(testing.forward(tf_model, x), expected)
    _check(testing.forward(pt_model, x), expected)
    back = export_to_application("ResNet50V2", pt_model, config)
    _check(_logits(back, x), expected)


@pytest.mark.parametrize("pooling", [None, "avg", "max"])
def test_headless_models_and_pooling(pooling):
    config = {"include_top": False, "pooling": pooling, "input_shape": [64, 64, 3]}
    app = _application("ResNet50V2", config)
    assert not any(layer.name == "predictions" for layer in app.layers)
    testing.calibrate_batch_norm(app, _inputs(config, batch=2, seed=0), shrink=BRANCH_END_NORM)
    tf_model, pt_model = import_into_deepvision("ResNet50V2", app, config)
    x = _inputs(config)
    expected = _logits(app, x)
    assert expected.shape == ((2, 2, 2, 2048) if pooling is None else (2, 2048))
    _check(testing.forward(tf_model, x), expected)
    _check(testing.forward(pt_model, x), expected)


def test_backbone_config_maps_to_the_headless_application():
    config = {**SMALL, "features_only": True}
    kwargs = mapping.app_kwargs(config)
    assert kwargs["include_top"] is False and "pooling" not in kwargs
    app = _application("ResNet50V2", config)
    backbone = build_from_neutral_config("ResNet50V2", config, "pytorch")
    assert set(mapping.variable_map(app, config)) == set(slots_by_name(backbone))


def test_app_kwargs():
    assert mapping.app_kwargs(SMALL) == {
        "weights": None, "classifier_activation": None, "include_top": True, "classes": 10, "input_shape": (64, 64, 3),
    }
    assert mapping.app_kwargs({"include_top": False, "pooling": "avg"}) == {
        "weights": None, "classifier_activation": None, "include_top": False, "pooling": "avg",
    }


def test_mismatches_are_refused():
    config, app, _, _ = imported("ResNet50V2")
    with pytest.raises(ValueError, match="stackwise_blocks"):
        mapping.variable_map(app, {**config, "stackwise_blocks": [3, 4, 23, 3]})
    with pytest.raises(ValueError, match="head"):
        mapping.variable_map(app, {**config, "include_top": False})
    with pytest.raises(ValueError, match="block_type"):
        mapping.app_kwargs({**config, "block_type": "basic"})
    with pytest.raises(ValueError, match="stackwise_blocks"):
        mapping.app_kwargs({**config, "stackwise_blocks": [2, 2, 2, 2]})


def test_generic_import_and_export_through_files(tmp_path):
    """The lead's generic path: model object / weights file -> canonical -> both backends -> weights file."""
    from deepvision.conversion import convert
    from deepvision.portable import load_portable

    config, app, _, _ = imported("ResNet50V2")
    x = _inputs(config)
    expected = _logits(app, x)
    canonical = convert(app, tmp_path / "r50.safetensors", src_format="keras-applications", architecture="ResNet50V2")
    for backend in ("pytorch", "tensorflow"):
        _check(testing.forward(load_portable(canonical, backend=backend), x), expected)
    app.save_weights(tmp_path / "app.weights.h5")
    from_file = convert(tmp_path / "app.weights.h5", tmp_path / "from_file.safetensors", src_format="keras-applications",
                        architecture="ResNet50V2", config=config)
    _check(testing.forward(load_portable(from_file, backend="pytorch"), x), expected)
    exported = convert(canonical, tmp_path / "back.weights.h5", dst_format="keras-applications")
    reloaded = keras.applications.ResNet50V2(weights=str(exported), include_top=True, classes=10,
                                             input_shape=(64, 64, 3), classifier_activation=None)
    _check(_logits(reloaded, x), expected)
