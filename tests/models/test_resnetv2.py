"""ResNetV2 family (issue 4): feature API, pooling options, odd sizes, drop path and the stage layout
of keras.applications.

Counts, canonical names, file formats and small-input parity of every variant are the model
contract's (test_model_contract.py). Numbers are compared at 64x64 on calibrated networks
(parity-pitfalls.md). The full-size 224x224 check of the family (ResNet50V2, both backends against
keras.applications) is in test_resnetv2_keras_applications.py.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import deepvision
from deepvision import testing
from deepvision.adapters import count_params, slots_by_name
from deepvision.models.classification.resnetv2 import CALIBRATION_SHRINK, VARIANTS
from deepvision.models.classification.resnetv2.plan import block_plan, feature_levels
from deepvision.portable import to_backend
from deepvision.registry import build_from_neutral_config

pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")

NAMES = list(VARIANTS)
SMALL = {"input_shape": [64, 64, 3], "classes": 10}
TOLERANCE = 1e-4


def _inputs(shape, batch: int = 2, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype(np.float32)


def _nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


@functools.cache
def small_pair(name: str, **overrides):
    """A calibrated 64x64 PyTorch model and its Keras twin made through the canonical format."""
    config = {**SMALL, **overrides}
    pt_model = build_from_neutral_config(name, config, "pytorch")
    testing.randomize_weights(pt_model, seed=3)
    testing.calibrate_batch_norm(pt_model, _inputs(config["input_shape"], batch=4, seed=0), shrink=CALIBRATION_SHRINK[name])
    pt_model.eval()
    return config, pt_model, to_backend(pt_model, "tensorflow")


def _assert_close(actual: np.ndarray, expected: np.ndarray, tol: float = TOLERANCE) -> float:
    assert actual.shape == expected.shape
    error = testing.max_relative_error(actual, expected)
    assert error <= tol, error
    return error


@pytest.mark.parametrize("name", NAMES)
def test_stage_layout_of_keras_applications(name):
    """Stride on the LAST block of each stage (2, 2, 2, 1); projections where the width changes; the
    head reads the final features. The layout does not depend on the input size: built small in Keras,
    full-size (include_top=True, classes=1000) on PyTorch's meta device."""
    import keras

    with torch.device("meta"):
        pt_model = deepvision.models.create_model(name, backend="pytorch")
    tf_model = build_from_neutral_config(name, dict(SMALL), "tensorflow")
    try:
        assert slots_by_name(pt_model)["head.kernel"].shape == (pt_model.num_features, 1000)
        blocks, block_type = VARIANTS[name]
        plan = block_plan(blocks, [64, 128, 256, 512], [2, 2, 2, 1], block_type)
        assert len(pt_model.blocks) == len(tf_model.blocks) == sum(blocks) == len(plan)
        for spec, block, tf_block in zip(plan, pt_model.blocks, tf_model.blocks):
            assert (block.strides, block.conv_shortcut) == (spec.strides, spec.conv_shortcut)
            assert tf_block.get_config()["strides"] == spec.strides
            last = spec.index == blocks[spec.stage] - 1
            assert block.strides == (2 if last and spec.stage < 3 else 1)
            first_projects = spec.index == 0 and (block_type == "bottleneck" or spec.stage > 0)
            assert block.conv_shortcut == first_projects
            if block.strides > 1 and not block.conv_shortcut:
                assert isinstance(block.shortcut, torch.nn.MaxPool2d)
    finally:
        del tf_model, pt_model
        keras.backend.clear_session()


def test_calibrated_network_is_not_chaotic():
    """The deepest variant, calibrated: float64 vs float32 is far below the parity tolerance."""
    config, pt_model, tf_model = small_pair("ResNet152V2")
    x = _inputs(config["input_shape"])
    pt64 = to_backend(tf_model, "pytorch").double()
    with torch.no_grad():
        y64 = pt64(_nchw(x.astype(np.float64))).numpy()
    assert testing.max_relative_error(testing.forward(tf_model, x), y64) <= TOLERANCE / 10


def test_resnet34v2_trains_in_pytorch():
    config, pt_model, _ = small_pair("ResNet34V2")
    model = to_backend(to_backend(pt_model, "tensorflow"), "pytorch")  # a private copy to train
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.from_numpy(_inputs(config["input_shape"]).transpose(0, 3, 1, 2).copy())
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1]))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", ["ResNet18V2", "ResNet50V2"])
def test_odd_input_sizes(name):
    """Stride-2 stages at odd, non-square sizes (floor((n - 1) / 2) + 1 in both backends)."""
    _, pt_model, _ = small_pair(name)
    tf_model = deepvision.models.create_model(name, backend="tensorflow", input_shape=(None, None, 3), classes=10)
    state = testing.canonical_state(pt_model)
    for slot_name, slot in slots_by_name(tf_model).items():
        slot.write(state[slot_name])
    x = _inputs((65, 47, 3))
    _assert_close(testing.forward(pt_model, x), testing.forward(tf_model, x))


@pytest.mark.parametrize("name", ["ResNet18V2", "ResNet50V2"])
def test_features_only_returns_the_maps_at_each_stride(name):
    config, pt_small, _ = small_pair(name)
    backbone = {**config, "features_only": True}
    pt_model = build_from_neutral_config(name, backbone, "pytorch")
    tf_model = build_from_neutral_config(name, backbone, "tensorflow")
    state = testing.canonical_state(pt_small)
    # The backbone has no head; every other tensor is shared with the classifier.
    assert set(slots_by_name(pt_model)) == {n for n in state if not n.startswith("head.")}
    for model in (pt_model, tf_model):
        for slot_name, slot in slots_by_name(model).items():
            slot.write(state[slot_name])
    pt_model.eval()
    x = _inputs(config["input_shape"])
    with torch.no_grad():
        pt_maps = [m.numpy().transpose(0, 2, 3, 1) for m in pt_model(_nchw(x))]
    tf_maps = [np.asarray(m) for m in tf_model(x, training=False)]
    width = 4 if VARIANTS[name][1] == "bottleneck" else 1
    expected = [(2, 32, 32, 64)] + [(2, 64 // s, 64 // s, c * width) for s, c in zip((4, 8, 16, 32), (64, 128, 256, 512))]
    assert [m.shape for m in tf_maps] == [m.shape for m in pt_maps] == expected
    for a, b in zip(pt_maps, tf_maps):
        _assert_close(a, b)
    # The last map is the normalised feature map that forward_features returns.
    _assert_close(pt_maps[-1], testing.from_framework(pt_small.forward_features(_nchw(x)), "pytorch"))


def test_feature_levels_are_at_each_resolution():
    plan = block_plan([3, 4, 6, 3], [64, 128, 256, 512], [2, 2, 2, 1], "bottleneck")
    levels = feature_levels(plan, "bottleneck")
    # The stem conv; before the strided last block of stages 1-3; the normalised end of the last stage.
    assert [level.module for level in levels] == ["stem_conv", "blocks.1", "blocks.5", "blocks.11", "post_norm"]
    assert [level.tap for level in levels] == [0, 3, 7, 13, 18]
    assert [level.reduction for level in levels] == [2, 4, 8, 16, 32]
    assert [level.num_chs for level in levels] == [64, 256, 512, 1024, 2048]


@pytest.mark.parametrize("name", ["ResNet18V2", "ResNet50V2"])
def test_forward_features_and_pooling_options(name):
    config, pt_model, tf_model = small_pair(name)
    x = _inputs(config["input_shape"])
    x_pt = _nchw(x)
    pt_model.eval()
    with torch.no_grad():
        pt_features = testing.from_framework(pt_model.forward_features(x_pt), "pytorch")
    tf_features = np.asarray(tf_model.forward_features(x))
    assert tf_features.shape == (2, 2, 2, pt_model.num_features)
    _assert_close(pt_features, tf_features)
    state = testing.canonical_state(pt_model)
    for pooling, reduce in ((None, None), ("avg", np.mean), ("max", np.max)):
        variant = {**config, "include_top": False, "pooling": pooling}
        models = [build_from_neutral_config(name, variant, backend) for backend in ("pytorch", "tensorflow")]
        outputs = []
        for model in models:
            slots = slots_by_name(model)
            assert set(slots) == {n for n in state if not n.startswith("head.")}
            for slot_name, slot in slots.items():
                slot.write(state[slot_name])
            outputs.append(testing.forward(model, x))
        expected = tf_features if reduce is None else reduce(tf_features, axis=(1, 2))
        for out in outputs:
            _assert_close(out, expected)
    # With the top, the head reads the average-pooled features.
    logits = testing.forward(tf_model, x)
    head = tf_features.mean(axis=(1, 2)) @ state["head.kernel"] + state["head.bias"]
    _assert_close(logits, head, 1e-5)


def test_drop_path_is_inactive_in_inference_and_grows_linearly():
    config, pt_model, _ = small_pair("ResNet18V2")
    dropped = build_from_neutral_config("ResNet18V2", {**config, "drop_path_rate": 0.2}, "pytorch")
    rates = [block.drop_path.drop_prob for block in dropped.blocks]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.2) and rates == sorted(rates)
    state = testing.canonical_state(pt_model)
    for slot_name, slot in slots_by_name(dropped).items():
        slot.write(state[slot_name])
    x = _inputs(config["input_shape"])
    assert testing.max_abs_error(testing.forward(dropped, x), testing.forward(pt_model, x)) == 0.0
    tf_dropped = to_backend(dropped, "tensorflow")
    assert [b.drop_path.drop_prob for b in tf_dropped.blocks] == rates


def test_public_factories_and_config_round_trip():
    tf_model = deepvision.models.ResNet18V2(include_top=True, classes=10, input_shape=(64, 64, 3), backend="tensorflow")
    pt_model = deepvision.models.ResNet18V2(include_top=True, classes=10, input_shape=(3, 64, 64), backend="pytorch")
    assert deepvision.registry.architecture_of(tf_model).name == "ResNet18V2"
    assert deepvision.registry.config_of(tf_model) == deepvision.registry.config_of(pt_model)
    rebuilt = type(tf_model).from_config(tf_model.get_config())
    assert deepvision.registry.architecture_of(rebuilt).name == "ResNet18V2"
    assert count_params(rebuilt) == count_params(tf_model)
    with pytest.raises(TypeError):
        deepvision.models.ResNet18V2(block_type="bottleneck", backend="pytorch")
    with pytest.raises(ValueError):
        deepvision.models.ResNet18V2(pooling="token", include_top=False, backend="pytorch")


def test_import_is_framework_free():
    import subprocess
    import sys

    code = ("import sys, deepvision, deepvision.models; deepvision.models.list_models(); "
            "import deepvision.models.classification.resnetv2.plan, deepvision.importers.keras_applications_resnetv2; "
            "print([m for m in sys.modules if m.startswith(('torch', 'tensorflow', 'keras'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
