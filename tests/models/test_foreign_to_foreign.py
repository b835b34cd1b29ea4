"""keras.applications <-> timm in one call, through the canonical checkpoint, without timm installed.

``deepvision convert --from keras-applications --to timm --architecture ConvNeXtTiny SRC DST`` and back
with ``deepvision.convert(..., src_format="timm", dst_format="keras-applications")``: the timm file has
exactly timm's names and shapes (``manifest-wave2.json``, written by timm itself), the weights come
back bit-exact, and the result loads with plain ``keras.applications.ConvNeXtTiny(weights=PATH)``
(and ``EfficientNetV2B0``) and computes the same logits as the original.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import deepvision
from deepvision.cli import main

pytest.importorskip("tensorflow")
MANIFEST = Path(__file__).resolve().parents[1] / "fixtures" / "timm" / "manifest-wave2.json"


def _randomize(app, seed=0) -> None:
    """Non-trivial values for every variable (layer-scale gammas U(0.2, 1.0); BatchNorm variances > 0)."""
    rng = np.random.default_rng(seed)
    for variable in app.weights:
        leaf = variable.path.rsplit("/", 1)[-1]
        shape = tuple(variable.shape)
        if leaf in ("moving_variance", "gamma"):
            value = rng.uniform(0.2, 1.0, shape)
        elif leaf == "kernel":
            value = rng.normal(0.0, 1.0 / np.sqrt(max(np.prod(shape[:-1]), 1)), shape)
        else:
            value = rng.normal(0.0, 0.1, shape)
        variable.assign(value.astype(np.float32))


def _timm_keys(path: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    with safe_open(str(path), "np") as handle:
        return {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}  # noqa: SIM118


@pytest.mark.parametrize("name,timm_name", [("ConvNeXtTiny", "convnext_tiny"), ("EfficientNetV2B0", "tf_efficientnetv2_b0")])
def test_keras_applications_to_timm_and_back(name, timm_name, tmp_path):
    import keras

    app = getattr(keras.applications, name)(weights=None, classifier_activation=None)
    _randomize(app)
    src = tmp_path / "app.weights.h5"
    app.save_weights(str(src))
    x = np.random.default_rng(1).uniform(0, 255, size=(1, 224, 224, 3)).astype(np.float32)
    expected = np.asarray(app(x, training=False))

    timm_file = tmp_path / f"{timm_name}.safetensors"
    assert main(["convert", "--from", "keras-applications", "--to", "timm", "--architecture", name,
                 str(src), str(timm_file)]) == 0
    manifest = json.loads(MANIFEST.read_text())[timm_name]["tensors"]
    assert _timm_keys(timm_file) == {k: tuple(v) for k, v in manifest.items()}

    back = deepvision.convert(timm_file, tmp_path / "back.weights.h5", src_format="timm",
                              dst_format="keras-applications")
    reloaded = getattr(keras.applications, name)(weights=str(back), classifier_activation=None)
    for a, b in zip(app.weights, reloaded.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    np.testing.assert_array_equal(np.asarray(reloaded(x, training=False)), expected)
