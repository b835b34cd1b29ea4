"""EfficientNetV2 family proofs: the canonical names follow keras.applications' block plan, numeric
parity between the backends for the options (preprocessing, pooling, backbone, drop path, training
mode), and the seed's weight-mapper examples (through the canonical format).

Counts, canonical names in both backends, file formats and small-input parity of every variant are
the model contract's (test_model_contract.py).

keras.applications comparisons live in ``test_efficientnetv2_keras_applications.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

import deepvision
from deepvision import registry, testing
from deepvision.adapters import slots_by_name
from deepvision.backend import PYTORCH, TENSORFLOW
from deepvision.importers.keras_applications_efficientnetv2 import canonical_shapes
from deepvision.models.classification.efficientnetv2 import CALIBRATION_SHRINK, VARIANTS
from deepvision.portable import to_backend
from deepvision.registry import Architecture, build_from_neutral_config, get_architecture, register

pytest.importorskip("tensorflow")
pytest.importorskip("torch")

# A two-stage network for testing options quickly (the generic class takes any stage table).
TINY_BLOCKS = [
    {"conv_type": 1, "kernel_size": 3, "num_repeat": 2, "input_filters": 8, "output_filters": 8,
     "expand_ratio": 1, "se_ratio": 0.0, "strides": 1},
    {"conv_type": 0, "kernel_size": 3, "num_repeat": 2, "input_filters": 8, "output_filters": 16,
     "expand_ratio": 4, "se_ratio": 0.25, "strides": 2},
]
TINY = "EfficientNetV2TestTiny"


@pytest.fixture(scope="module")
def tiny():
    """Register the tiny network for this module only (family "tests"): conversions through the
    canonical format rebuild a model from its registered architecture."""
    register(Architecture(
        name=TINY, kind="model", family="tests",
        tensorflow="deepvision.models.classification.efficientnetv2.efficientnetv2_tf:EfficientNetV2TF",
        pytorch="deepvision.models.classification.efficientnetv2.efficientnetv2_pt:EfficientNetV2PT",
        fixed={"width_coefficient": 1.0, "depth_coefficient": 1.0, "blocks_args": TINY_BLOCKS},
        reference_config={"input_shape": [17, 23, 3], "classes": 5},
    ))
    yield TINY
    registry._REGISTRY.pop(TINY, None)  # other test modules see the registry as shipped


def _pixels(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=shape).astype(np.float32)


def _tiny(backend, **kwargs):
    """The tiny network; ``input_shape`` channels-last in both backends."""
    return build_from_neutral_config(TINY, kwargs, backend)


def _calibrated_pair(tf_model, x):
    testing.calibrate_batch_norm(tf_model, x, shrink=CALIBRATION_SHRINK)
    return tf_model, to_backend(tf_model, PYTORCH)


def test_all_variants_are_registered():
    names = [n for n in deepvision.models.list_models("EfficientNetV2*") if get_architecture(n).family != "tests"]
    assert names == list(VARIANTS)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_canonical_names_follow_the_keras_applications_plan(name):
    """Full size (include_top=True, classes=1000): the model's tensors are exactly those the
    keras.applications importer expects (both backends are equal: test_model_contract.py)."""
    import torch

    with torch.device("meta"):  # shapes only
        pt_model = deepvision.models.create_model(name, backend=PYTORCH)
    pt_shapes = {n: s.shape for n, s in slots_by_name(pt_model).items()}
    assert pt_shapes == canonical_shapes(name, {"include_top": True, "classes": 1000})


def test_b1_parity_at_64x64_both_directions():
    """A second variant, small input: logits agree to 1e-4 (relative), then PyTorch -> TF again."""
    tf_model = deepvision.models.EfficientNetV2B1(input_shape=(64, 64, 3), classes=10, backend=TENSORFLOW)
    tf_model, pt_model = _calibrated_pair(tf_model, _pixels((4, 64, 64, 3)))
    x = _pixels((2, 64, 64, 3), seed=1)
    expected = testing.forward(tf_model, x)
    assert testing.max_relative_error(testing.forward(pt_model, x), expected) <= 1e-4
    back = to_backend(pt_model, TENSORFLOW)
    assert testing.max_relative_error(testing.forward(back, x), testing.forward(pt_model, x)) <= 1e-4


@pytest.mark.parametrize("mode", ["imagenet", "symmetric"])
@pytest.mark.parametrize("include_preprocessing", [True, False])
@pytest.mark.usefixtures("tiny")
def test_preprocessing_semantics(mode, include_preprocessing):
    """keras.applications: B variants x/255 then ImageNet mean/std; S/M/L x/128 - 1; off = identity."""
    tf_model = _tiny(TENSORFLOW, input_shape=(17, 23, 3), classes=5, preprocessing_mode=mode,
                     include_preprocessing=include_preprocessing)
    tf_model, pt_model = _calibrated_pair(tf_model, _pixels((4, 17, 23, 3)))
    assert tf_model.get_config()["include_preprocessing"] is include_preprocessing
    assert pt_model.get_config()["include_preprocessing"] is include_preprocessing
    x = _pixels((2, 17, 23, 3), seed=3)
    if include_preprocessing:
        if mode == "imagenet":
            normalised = (x / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
        else:
            normalised = x / 128.0 - 1.0
    else:
        normalised = x
    # The preprocessing layers alone, then the whole model in both backends.
    for model in (tf_model, pt_model):
        assert (model.rescaling is not None) is include_preprocessing
        assert (model.normalization is not None) is (include_preprocessing and mode == "imagenet")
    expected = testing.forward(tf_model, x)
    assert testing.max_relative_error(testing.forward(pt_model, x), expected) <= 1e-4
    reference = _tiny(PYTORCH, input_shape=(17, 23, 3), classes=5, preprocessing_mode=mode, include_preprocessing=False)
    reference.load_state_dict(pt_model.state_dict())
    normalised = normalised.astype(np.float32)
    assert testing.max_relative_error(testing.forward(reference, normalised), expected) <= 1e-4


@pytest.mark.usefixtures("tiny")
def test_one_channel_input_uses_symmetric_rescaling_like_keras_applications():
    for backend in (TENSORFLOW, PYTORCH):
        model = _tiny(backend, input_shape=(32, 32, 1), preprocessing_mode="imagenet")
        assert model.normalization is None and model.rescaling is not None
        assert model.rescaling.offset == -1


@pytest.mark.parametrize("pooling", [None, "avg", "max"])
@pytest.mark.usefixtures("tiny")
def test_headless_outputs_and_features(pooling):
    tf_model = _tiny(TENSORFLOW, input_shape=(None, None, 3), include_top=False, pooling=pooling)
    tf_model, pt_model = _calibrated_pair(tf_model, _pixels((4, 17, 23, 3)))
    x = _pixels((2, 17, 23, 3), seed=4)
    expected = testing.forward(tf_model, x)
    # 17x23 -> stem (stride 2) 9x12 -> second stage (stride 2) 5x6, with TensorFlow's ceil rule.
    assert expected.shape == ((2, 5, 6, 1280) if pooling is None else (2, 1280))
    assert testing.max_relative_error(testing.forward(pt_model, x), expected) <= 1e-4
    assert not any(n.startswith("head.") for n in slots_by_name(tf_model))
    import torch

    features_tf = np.asarray(tf_model.forward_features(x))
    with torch.no_grad():
        features_pt = pt_model.forward_features(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    assert features_tf.shape == (2, 5, 6, 1280)
    assert testing.max_relative_error(features_pt.transpose(0, 2, 3, 1), features_tf) <= 1e-4


@pytest.mark.usefixtures("tiny")
def test_features_only_returns_every_stage_output():
    import torch

    tf_model = _tiny(TENSORFLOW, input_shape=(None, None, 3), features_only=True)
    testing.randomize_weights(tf_model)  # shallow enough not to need calibration
    pt_model = to_backend(tf_model, PYTORCH)
    x = _pixels((2, 33, 30, 3), seed=5)
    tf_out = tf_model(x)
    with torch.no_grad():
        pt_out = pt_model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    assert isinstance(tf_out, list) and isinstance(pt_out, list) and len(tf_out) == len(pt_out) == 2
    assert [tuple(t.shape) for t in tf_out] == [(2, 17, 15, 8), (2, 9, 8, 16)]
    for a, b in zip(tf_out, pt_out):
        assert testing.max_relative_error(b.numpy().transpose(0, 2, 3, 1), np.asarray(a)) <= 1e-4
    assert not any(n.startswith(("top_", "head.")) for n in slots_by_name(pt_model))


@pytest.mark.usefixtures("tiny")
def test_drop_path_rates_grow_linearly_like_keras_applications():
    for backend in (TENSORFLOW, PYTORCH):
        model = _tiny(backend, drop_path_rate=0.2)
        rates = [block.dropout for block in model.blocks]
        assert rates == pytest.approx([0.0, 0.05, 0.1, 0.15])
        # Blocks with a residual carry a drop path with that rate.
        assert [b.drop.drop_prob if b.drop is not None else None for b in model.blocks] == pytest.approx(
            [0.0, 0.05, None, 0.15])


@pytest.mark.usefixtures("tiny")
def test_training_step_keeps_the_backends_equal():
    """BatchNorm statistics and gradients after one training-mode pass agree (dropout 0)."""
    from tests.blocks.harness import gradient_errors

    tf_model = _tiny(TENSORFLOW, input_shape=(17, 23, 3), classes=5, dropout_rate=0.0)
    tf_model, pt_model = _calibrated_pair(tf_model, _pixels((4, 17, 23, 3)))
    x = _pixels((4, 17, 23, 3), seed=6)
    upstream = np.random.default_rng(7).normal(size=(4, 5)).astype(np.float32)
    y_tf, g_tf = testing.gradients(tf_model, x, upstream)
    y_pt, g_pt = testing.gradients(pt_model, x, upstream)
    assert testing.max_relative_error(y_pt, y_tf) <= 1e-4
    errors = gradient_errors(g_pt, g_tf)
    assert max(errors.values()) <= 1e-3, max(errors, key=errors.get)
    tf_state, pt_state = testing.canonical_state(tf_model), testing.canonical_state(pt_model)
    for name in (n for n in tf_state if n.endswith("moving_variance")):
        assert testing.max_relative_error(pt_state[name], tf_state[name]) <= 1e-5, name
        # Means can be ~1e-8 where a BatchNorm follows a normalised input: compare on the scale of the std.
        mean = name.replace("moving_variance", "moving_mean")
        std = float(np.sqrt(tf_state[name].max()))
        assert testing.max_abs_error(pt_state[mean], tf_state[mean]) <= 1e-5 * std, mean


# The seed README's weight-mapper examples, run as written (models return plain tensors, not dicts).


def test_seed_tf_to_pt_example(tmp_path, monkeypatch):
    import tensorflow as tf
    import torch

    monkeypatch.chdir(tmp_path)
    dummy_input_tf = tf.ones([1, 224, 224, 3])
    dummy_input_torch = torch.ones(1, 3, 224, 224)
    tf_model = deepvision.models.EfficientNetV2B0(include_top=False, pooling="avg", input_shape=(224, 224, 3),
                                                  backend="tensorflow")
    # Change the BatchNorm statistics (a training-mode pass) so that a skipped BatchNorm would show.
    tf_model(np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32), training=True)
    tf_model.save("effnet.h5")

    from deepvision.models.classification.efficientnet import efficientnet_weight_mapper

    pt_model = efficientnet_weight_mapper.load_tf_to_pt(filepath="effnet.h5", dummy_input=dummy_input_tf)
    expected = tf_model(dummy_input_tf).numpy()
    actual = pt_model(dummy_input_torch).detach().cpu().numpy()
    assert np.allclose(expected, actual, rtol=1e-4, atol=1e-5)
    assert testing.max_relative_error(actual, expected) <= 1e-4


def test_seed_pt_to_tf_example(tmp_path, monkeypatch):
    import tensorflow as tf
    import torch

    monkeypatch.chdir(tmp_path)
    dummy_input_tf = tf.ones([1, 224, 224, 3])
    dummy_input_torch = torch.ones(1, 3, 224, 224)
    pt_model = deepvision.models.EfficientNetV2B0(include_top=False, pooling="avg", input_shape=(3, 224, 224),
                                                  backend="pytorch")
    pt_model.train()
    with torch.no_grad():  # training-mode pass: new BatchNorm statistics
        pt_model(torch.rand(2, 3, 224, 224) * 255)
    torch.save(pt_model.state_dict(), "effnet.pt")

    from deepvision.models.classification.efficientnet import efficientnet_weight_mapper

    kwargs = {"include_top": False, "pooling": "avg", "input_shape": (3, 224, 224)}
    tf_model = efficientnet_weight_mapper.load_pt_to_tf(filepath="effnet.pt", architecture="EfficientNetV2B0",
                                                        kwargs=kwargs, dummy_input=dummy_input_torch)
    pt_model.eval()
    expected = pt_model(dummy_input_torch).detach().cpu().numpy()
    actual = tf_model(dummy_input_tf).numpy()
    assert np.allclose(actual, expected, rtol=1e-4, atol=1e-5)
    assert testing.max_relative_error(actual, expected) <= 1e-4
    # Every BatchNorm statistic made it across (the original skipped one in this configuration).
    tf_state = testing.canonical_state(tf_model)
    for name, value in testing.canonical_state(pt_model).items():
        np.testing.assert_array_equal(tf_state[name], value, err_msg=name)
