"""keras.applications <-> deepvision through `deepvision.convert` and the CLI, for EfficientNetV2
(ResNetV2's round trip through convert is in test_resnetv2_keras_applications.py)."""

from __future__ import annotations

import numpy as np
import pytest

import deepvision
from deepvision import testing
from deepvision.cli import main

pytestmark = pytest.mark.xdist_group("keras_applications_convert")


@pytest.mark.parametrize("name,preprocessing", [("EfficientNetV2B0", True), ("EfficientNetV2B3", False)])
def test_convert_imports_and_exports_keras_applications(name, preprocessing, tmp_path):
    import keras

    app = getattr(keras.applications, name)(weights=None, input_shape=(64, 64, 3), classes=7,
                                             classifier_activation=None, include_preprocessing=preprocessing)
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 64, 64, 3)).astype(np.float32)
    testing.calibrate_batch_norm(app, x, shrink=("project_bn",))
    expected = testing.forward(app, x)
    path = deepvision.convert(app, tmp_path / "m.safetensors", src_format="keras-applications", architecture=name)
    for backend in ("tensorflow", "pytorch"):
        model = deepvision.load_portable(path, backend=backend)
        assert testing.max_relative_error(testing.forward(model, x), expected) <= 1e-4, backend
    # And back: a weights file that keras.applications itself loads.
    out = tmp_path / "back.weights.h5"
    assert main(["convert", str(path), str(out), "--to", "keras-applications"]) == 0
    again = getattr(keras.applications, name)(weights=str(out), input_shape=(64, 64, 3), classes=7,
                                               classifier_activation=None, include_preprocessing=preprocessing)
    assert testing.max_relative_error(testing.forward(again, x), expected) == 0.0
