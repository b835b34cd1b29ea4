"""Backbones (issue 14), for every registered family whose classes take ``features_only``.

Driven by the registry: one representative per implementation class (the generic entry when the
family has one, for its small ``reference_config``), so a new family joins by registering and by
plugging into ``deepvision.models.features`` (see docs in that module). Checks:

- every level of the Keras and the PyTorch features model agrees within 1e-4 relative on calibrated
  weights, at an odd input size (97x131 for convolutional families; a ViT at a 5x7 patch grid with
  ``dynamic_img_size``);
- ``feature_info`` agrees with the returned shapes, in both backends, at several input sizes;
- portable round trip classifier -> features-only model -> file -> the other backend, bit-exact, with
  the classifier's extra tensors reported as excluded, and back into a classifier with the head missing;
- checkpointed (``set_grad_checkpointing(True)``) and plain training steps give the same gradients
  (1e-6) in both backends, and the same BatchNorm statistics.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import math

import numpy as np
import pytest

import deepvision
from deepvision import testing
from deepvision.models.features import FeatureInfo, FeatureLevel, select_levels
from deepvision.portable import load_portable, save_portable, to_backend
from deepvision.registry import build_from_neutral_config, get_architecture

ODD_SIZE = (97, 131)
SIZES = [(97, 131), (64, 64), (45, 70)]
GRIDS = [(5, 7), (4, 4), (3, 5)]  # patch grids for a ViT with dynamic_img_size


def _arguments(name: str) -> set[str]:
    return set(inspect.signature(getattr(deepvision.models, name)).parameters)


def _representatives() -> list[str]:
    """One architecture per implementation class that takes ``features_only`` (generic entry first)."""
    chosen: dict[str, str] = {}
    for name in deepvision.models.list_models():
        arch = get_architecture(name)
        if arch.family == "tests" or "features_only" not in _arguments(name):
            continue
        if arch.pytorch not in chosen or (not arch.fixed and get_architecture(chosen[arch.pytorch]).fixed):
            chosen[arch.pytorch] = name
    return sorted(chosen.values())


BACKBONES = _representatives()


def _per_model(names):
    return [pytest.param(n, marks=pytest.mark.xdist_group(f"backbone-{n}")) for n in names]


def _patch_size(name: str, config: dict) -> int | None:
    """The patch size of a ViT-like model (one whose position grid is fixed by ``input_shape``)."""
    if "dynamic_img_size" not in _arguments(name) and "dynamic_img_size" not in config:
        return None
    return int(config.get("patch_size") or get_architecture(name).fixed.get("patch_size"))


def _features_config(name: str) -> tuple[dict, list[tuple[int, int]]]:
    """The small features-only config of ``name`` and the (H, W) input sizes to test it at."""
    config = {**get_architecture(name).reference_config, "features_only": True}
    patch = _patch_size(name, config)
    if patch is not None:
        config["dynamic_img_size"] = True
        return config, [(patch * h, patch * w) for h, w in GRIDS]
    channels = config["input_shape"][-1]
    config["input_shape"] = [None, None, channels]
    return config, SIZES


def _calibration_shrink(name: str) -> tuple[str, ...]:
    package = importlib.import_module(get_architecture(name).pytorch.partition(":")[0].rpartition(".")[0])
    shrink = getattr(package, "CALIBRATION_SHRINK", ())
    return tuple(shrink.get(name, ())) if isinstance(shrink, dict) else tuple(shrink)


def _inputs(size: tuple[int, int], channels: int = 3, batch: int = 2, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, *size, channels)).astype(np.float32)


@pytest.fixture(scope="module", params=_per_model(BACKBONES))
def features_pair(request):
    """A calibrated small Keras features model and its PyTorch twin through the canonical format."""
    import keras

    name = request.param
    config, sizes = _features_config(name)
    tf_model = build_from_neutral_config(name, config, "tensorflow")
    testing.randomize_weights(tf_model, seed=3)
    testing.calibrate_batch_norm(tf_model, _inputs(sizes[0], batch=4, seed=0), shrink=_calibration_shrink(name))
    yield name, config, sizes, tf_model, to_backend(tf_model, "pytorch")
    keras.backend.clear_session()
    gc.collect()


def test_there_are_backbones_of_every_convolutional_and_transformer_family():
    families = {get_architecture(n).family for n in BACKBONES}
    assert {"resnetv2", "efficientnetv2", "vit"} <= families, families


def test_every_level_agrees_between_the_backends(features_pair):
    name, config, sizes, tf_model, pt_model = features_pair
    x = _inputs(sizes[0])
    tf_levels = testing.forward(tf_model, x)
    pt_levels = testing.forward(pt_model, x)
    assert isinstance(tf_levels, list) and len(tf_levels) == len(pt_levels) == len(tf_model.feature_info)
    for i, (a, b) in enumerate(zip(pt_levels, tf_levels)):
        assert a.shape == b.shape, (i, a.shape, b.shape)
        error = testing.max_relative_error(a, b)
        assert error <= 1e-4, f"{name} level {i} ({tf_model.feature_info[i]['module']}): {error:.2e}"


def test_feature_info_agrees_with_the_returned_shapes(features_pair):
    name, config, sizes, tf_model, pt_model = features_pair
    import torch

    info = tf_model.feature_info
    assert info.get_dicts() == pt_model.feature_info.get_dicts()
    assert info.out_indices == pt_model.feature_info.out_indices
    pt_model.eval()
    for size in sizes:
        x = _inputs(size, channels=config["input_shape"][-1], batch=1)
        tf_levels = tf_model(x, training=False)
        with torch.no_grad():
            pt_levels = pt_model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
        assert len(tf_levels) == len(pt_levels) == len(info)
        for level, tf_map, pt_map in zip(info, tf_levels, pt_levels):
            batch, height, width, channels = tuple(tf_map.shape)
            # The same map in both layouts, with the documented channels...
            assert tuple(pt_map.shape) == (batch, channels, height, width)
            assert channels == level["num_chs"], (name, size, level)
            # ...and the documented stride (rounded down or up, as the reference's padding does).
            for side, got in zip(size, (height, width)):
                assert math.floor(side / level["reduction"]) <= got <= math.ceil(side / level["reduction"]), \
                    (name, size, level, tuple(tf_map.shape))
    assert info.channels() == [level["num_chs"] for level in info]
    assert info.reduction() == [level["reduction"] for level in info]
    assert info.module_name() == [level["module"] for level in info]


def test_portable_round_trip_classifier_features_other_backend(tmp_path, features_pair):
    """Classifier file -> features model (extra tensors excluded) -> its file -> the other backend, bit-exact;
    the features file -> a classifier with strict=False reports the pruned tensors as missing."""
    name, config, sizes, _, _ = features_pair
    classifier_config = {k: v for k, v in config.items() if k not in ("features_only", "dynamic_img_size")}
    classifier_config["input_shape"] = list(get_architecture(name).reference_config["input_shape"])
    classifier = build_from_neutral_config(name, classifier_config, "tensorflow")
    testing.randomize_weights(classifier, seed=5)
    save_portable(classifier, tmp_path / "classifier.safetensors")
    source = testing.canonical_state(classifier)

    features, report = load_portable(tmp_path / "classifier.safetensors", "tensorflow",
                                     config_overrides={"features_only": True}, strict=False)
    assert report.ok, str(report)
    pruned = tuple(f"{prefix}." for prefix in features.pruned_modules)
    assert report.excluded == sorted(n for n in source if n.startswith(pruned))
    assert report.excluded, "a features model drops at least the classifier's head"
    # The strict default accepts it too: the extra tensors are excluded, not errors.
    load_portable(tmp_path / "classifier.safetensors", model=features)
    state = testing.canonical_state(features)
    assert set(state) == set(source) - set(report.excluded)
    save_portable(features, tmp_path / "features.safetensors")

    other = load_portable(tmp_path / "features.safetensors", "pytorch")
    assert other.feature_info.get_dicts() == features.feature_info.get_dicts()
    moved = testing.canonical_state(other)
    assert moved.keys() == state.keys()
    for tensor, value in state.items():
        assert np.array_equal(moved[tensor], value), tensor
        assert np.array_equal(value, source[tensor]), tensor

    target = build_from_neutral_config(name, classifier_config, "pytorch")
    _, back = load_portable(tmp_path / "features.safetensors", model=target, strict=False)
    assert not back.unexpected and not back.mismatched
    assert sorted(back.missing) == report.excluded


def _level_gradients(model, x: np.ndarray, upstream: list[np.ndarray]) -> tuple[list[np.ndarray], dict]:
    """Levels and gradients of ``sum_i sum(level_i * upstream_i)`` (training mode) w.r.t. every trainable tensor."""
    from deepvision.adapters import iter_slots
    from deepvision.backend import PYTORCH, backend_of

    slots = [s for s in iter_slots(model) if s.trainable]
    if backend_of(model) == PYTORCH:
        import torch

        model.train()
        for slot in slots:
            slot.variable.grad = None
        levels = model(testing.to_framework(x, PYTORCH))
        loss = sum((level * torch.from_numpy(u.transpose(0, 3, 1, 2).copy())).sum() for level, u in zip(levels, upstream))
        loss.backward()
        model.eval()
        return testing.from_framework(levels, PYTORCH), {s.name: s.to_canonical(s.variable.grad) for s in slots}
    import tensorflow as tf

    with tf.GradientTape() as tape:
        levels = model(x, training=True)
        loss = tf.add_n([tf.reduce_sum(level * tf.cast(u, level.dtype)) for level, u in zip(levels, upstream)])
    grads = tape.gradient(loss, [s.variable for s in slots])
    return [np.asarray(level) for level in levels], {s.name: s.to_canonical(g) for s, g in zip(slots, grads)}


def _float64_twin(name: str, config: dict, model):
    """The Keras model ``model`` rebuilt in float64 with the same weights."""
    import keras

    from deepvision.adapters import iter_slots

    state = testing.canonical_state(model)
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        twin = build_from_neutral_config(name, config, "tensorflow")
    finally:
        keras.config.set_dtype_policy(policy)
    for slot in iter_slots(twin):
        slot.write(state[slot.name].astype(np.float64))
    return twin


@pytest.mark.parametrize("backend", ["tensorflow", "pytorch"])
def test_gradient_checkpointing_gives_the_same_gradients(backend, features_pair):
    """PyTorch's non-reentrant checkpoint replays the same graph: equal in float32. Keras's
    ``tf.recompute_grad`` sums a block's gradient contributions in another order, which moves float32
    gradients by ~1e-6 relative (rounding, not math): Keras is compared in float64."""
    name, config, sizes, tf_model, pt_model = features_pair
    model = _float64_twin(name, config, tf_model) if backend == "tensorflow" else pt_model
    x = _inputs(sizes[-1], channels=config["input_shape"][-1], seed=4)
    if backend == "tensorflow":
        x = x.astype(np.float64)
    before = testing.canonical_state(model)
    shapes = [level.shape for level in testing.forward(model, x)]
    upstream = [np.random.default_rng(i).normal(size=s).astype(np.float32) for i, s in enumerate(shapes)]

    plain_levels, plain = _level_gradients(model, x, upstream)
    plain_state = testing.canonical_state(model)
    for tensor, value in before.items():  # undo the BatchNorm updates of the plain step
        _write(model, tensor, value)
    model.set_grad_checkpointing(True)
    try:
        assert model.grad_checkpointing
        levels, checkpointed = _level_gradients(model, x, upstream)
    finally:
        model.set_grad_checkpointing(False)
    for a, b in zip(levels, plain_levels):
        assert testing.max_relative_error(a, b) <= 1e-6
    assert checkpointed.keys() == plain.keys() and plain
    for tensor in plain:
        assert testing.max_relative_error(checkpointed[tensor], plain[tensor]) <= 1e-6, tensor
    # Moving statistics are updated once per step, as without checkpointing.
    state = testing.canonical_state(model)
    for tensor, value in plain_state.items():
        assert testing.max_relative_error(state[tensor], value) <= 1e-6, tensor
    for tensor, value in before.items():
        _write(model, tensor, value)


def _write(model, tensor: str, value: np.ndarray) -> None:
    from deepvision.adapters import slots_by_name

    slots_by_name(model)[tensor].write(value)


# ----------------------------------------------------------------------------------------------
# The mechanism itself (deepvision.models.features) and the documented levels
# ----------------------------------------------------------------------------------------------
def test_select_levels_counts_negative_indices_from_the_end_and_refuses_bad_ones():
    levels = [FeatureLevel(8 * (i + 1), 2 ** (i + 1), f"blocks.{i}", i) for i in range(5)]
    selected, positions = select_levels(levels, [-1, 0], default=range(5))
    assert positions == [0, 4] and [level.module for level in selected] == ["blocks.0", "blocks.4"]
    assert select_levels(levels, None, default=range(-3, 0))[1] == [2, 3, 4]
    with pytest.raises(ValueError, match="out of range"):
        select_levels(levels, [5], default=range(5))
    with pytest.raises(ValueError, match="twice"):
        select_levels(levels, [1, -4], default=range(5))
    info = FeatureInfo(selected, positions)
    assert info.channels() == [8, 40] and info.reduction() == [2, 32] and info.channels(-1) == 40
    assert info[0] == {"num_chs": 8, "reduction": 2, "module": "blocks.0"}


@pytest.mark.parametrize("backend", ["tensorflow", "pytorch"])
def test_out_indices_needs_features_only(backend):
    with pytest.raises(ValueError, match="features_only=True"):
        deepvision.models.ResNet18V2(out_indices=[0], backend=backend)
    with pytest.raises(ValueError, match="out of range"):
        deepvision.models.ResNet18V2(features_only=True, out_indices=[7], backend=backend)


def test_documented_levels_of_the_existing_families():
    """timm's levels where timm has the network; ResNetV2 at reductions 2..32 (PyTorch on the meta device)."""
    import torch

    expected = {
        # tf_efficientnetv2_b0 in timm: blocks.0, 1, 2, 4, 5 (stages); ours are the stages' last blocks.
        "EfficientNetV2B0": ([16, 32, 48, 112, 192], [2, 4, 8, 16, 32],
                             ["blocks.0", "blocks.2", "blocks.4", "blocks.12", "blocks.20"]),
        "EfficientNetV2S": ([24, 48, 64, 160, 256], [2, 4, 8, 16, 32],
                            ["blocks.1", "blocks.5", "blocks.9", "blocks.24", "blocks.39"]),
        "ResNet50V2": ([64, 256, 512, 1024, 2048], [2, 4, 8, 16, 32],
                       ["stem_conv", "blocks.1", "blocks.5", "blocks.11", "post_norm"]),
        "ResNet18V2": ([64, 64, 128, 256, 512], [2, 4, 8, 16, 32],
                       ["stem_conv", "blocks.0", "blocks.2", "blocks.4", "post_norm"]),
        "ViTB16": ([768] * 3, [16] * 3, ["blocks.9", "blocks.10", "blocks.11"]),
    }
    with torch.device("meta"):
        for name, (channels, reductions, modules) in expected.items():
            model = deepvision.models.create_model(name, backend="pytorch", features_only=True)
            info = model.feature_info
            assert (info.channels(), info.reduction(), info.module_name()) == (channels, reductions, modules), name
            # Nothing after the last level is built.
            assert model.head is None and all(not n.startswith("head.") for n, _ in model.named_parameters())
            classifier = deepvision.models.create_model(name, backend="pytorch")
            assert classifier.feature_info.get_dicts()[-len(info):] == info.get_dicts() or name.startswith("ViT")
    vit = deepvision.models.create_model("ViTB16", backend="pytorch", features_only=True, out_indices=[2, 5],
                                         input_shape=(3, 32, 32))
    assert len(vit.blocks) == 6 and vit.norm is None
    assert vit.pruned_modules == tuple(f"blocks.{i}" for i in range(6, 12)) + ("norm", "head")


# ----------------------------------------------------------------------------------------------
# ViT: dynamic_img_size (the position embedding resampled at call time)
# ----------------------------------------------------------------------------------------------
VIT_SMALL = {"input_shape": [32, 32, 3], "classes": 10, "patch_size": 8, "project_dim": 32, "num_layers": 2,
             "num_heads": 4, "mlp_dim": 64, "dynamic_img_size": True}


@pytest.fixture(scope="module")
def dynamic_vit():
    tf_model = build_from_neutral_config("ViT", VIT_SMALL, "tensorflow")
    testing.randomize_weights(tf_model, seed=2)
    return tf_model, to_backend(tf_model, "pytorch")


def test_dynamic_img_size_resamples_like_the_numpy_resampler(dynamic_vit):
    from deepvision.models.classification.vit.resample import resample_position_embedding

    tf_model, pt_model = dynamic_vit
    embedding = testing.canonical_state(tf_model)["patch_embed.position_embedding"]
    for grid in [(5, 7), (2, 3), (8, 8), (4, 6), (4, 4)]:  # up, down, both, one axis, unchanged
        expected = resample_position_embedding(embedding, grid, (4, 4))
        tf_value = np.asarray(tf_model.patch_embed.resampled_position_embedding(grid))
        pt_value = pt_model.patch_embed.resampled_position_embedding(grid).detach().numpy()
        assert tf_value.shape == pt_value.shape == (1, 1 + grid[0] * grid[1], 32)
        assert np.abs(tf_value - expected).max() <= 1e-5 and np.abs(pt_value - expected).max() <= 1e-5, grid


def test_dynamic_img_size_logits_agree_and_refuse_sizes_off_the_patch_grid(dynamic_vit):
    tf_model, pt_model = dynamic_vit
    for size in [(40, 56), (16, 24), (32, 32)]:
        x = _inputs(size)
        assert testing.max_relative_error(testing.forward(pt_model, x), testing.forward(tf_model, x)) <= 1e-5, size
    # At the native grid it is the fixed-size model.
    fixed = build_from_neutral_config("ViT", {**VIT_SMALL, "dynamic_img_size": False}, "pytorch")
    fixed.load_state_dict(pt_model.state_dict())
    x = _inputs((32, 32))
    np.testing.assert_array_equal(testing.forward(fixed, x), testing.forward(pt_model, x))
    for model in (tf_model, pt_model):
        with pytest.raises(ValueError, match="not divisible by the patch size 8"):
            testing.forward(model, _inputs((36, 40)))


def test_dynamic_img_size_compiles_with_xla_and_is_differentiable(dynamic_vit):
    import tensorflow as tf

    tf_model, _ = dynamic_vit
    x = tf.constant(_inputs((40, 56)))
    embedding = tf_model.patch_embed.position_embedding

    def step(images):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf_model(images, training=False) ** 2)
        return loss, tape.gradient(loss, embedding.value)

    eager_loss, eager_grad = step(x)
    loss, grad = tf.function(step, jit_compile=True)(x)
    assert float(tf.reduce_sum(tf.abs(grad))) > 0
    assert testing.max_relative_error(loss.numpy(), eager_loss.numpy()) <= 1e-5
    assert testing.max_relative_error(grad.numpy(), eager_grad.numpy()) <= 1e-4


def test_dynamic_img_size_compiles_with_torch_compile_and_is_differentiable(dynamic_vit):
    """One graph (fullgraph=True: the interpolation matrices are constants of the trace), forward and
    backward (aot_eager runs AOTAutograd's joint graph without C++ code generation, to stay fast)."""
    import torch

    _, pt_model = dynamic_vit
    pt_model.eval()
    x = torch.from_numpy(_inputs((40, 56)).transpose(0, 3, 1, 2).copy())
    compiled = torch.compile(pt_model.forward, fullgraph=True, backend="aot_eager")
    eager = pt_model(x)
    out = compiled(x)
    assert testing.max_relative_error(out.detach().numpy(), eager.detach().numpy()) <= 1e-6
    out.pow(2).sum().backward()
    grad = pt_model.patch_embed.position_embedding.grad
    assert grad is not None and float(grad.abs().sum()) > 0
    pt_model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("backend", ["tensorflow", "pytorch"])
def test_checkpointing_recomputes_every_block(backend, monkeypatch):
    """With checkpointing, a training step runs each block's forward twice (once more in the backward)."""
    model = build_from_neutral_config("ViT", {**VIT_SMALL, "features_only": True, "out_indices": [-1]}, backend)
    calls = {"n": 0}
    x = _inputs((32, 32))
    upstream = [np.ones((2, 4, 4, 32), np.float32)]
    if backend == "pytorch":
        for block in model.blocks:
            # A pre-hook: the recomputation stops early, once it has what the backward needs.
            block.register_forward_pre_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
    else:
        block_class = type(model.blocks[0])
        original = block_class.call

        def counting(self, *args, **kwargs):
            calls["n"] += 1
            return original(self, *args, **kwargs)

        monkeypatch.setattr(block_class, "call", counting)
    _level_gradients(model, x, upstream)
    assert calls["n"] == 2
    model.set_grad_checkpointing(True)
    calls["n"] = 0
    _level_gradients(model, x, upstream)
    assert calls["n"] == 4


def test_keras_features_model_is_functional_summary_save_and_fit_with_checkpointing(tmp_path):
    """summary(), a .keras round trip and fit() on the list of levels; fit with checkpointing (traced,
    tf.recompute_grad inside tf.function) ends at the same weights and BatchNorm statistics as without."""
    import io
    from contextlib import redirect_stdout

    import keras

    config = {"input_shape": [None, None, 3], "features_only": True, "out_indices": [1, 2]}
    models = [build_from_neutral_config("ResNet18V2", config, "tensorflow") for _ in range(2)]
    testing.randomize_weights(models[0], seed=1)
    state = testing.canonical_state(models[0])
    for tensor, value in state.items():
        _write(models[1], tensor, value)
    model = models[0]
    assert isinstance(model, keras.Model) and len(model.outputs) == 2
    text = io.StringIO()
    with redirect_stdout(text):
        model.summary()
    assert "Total params" in text.getvalue()
    x = _inputs((45, 70), batch=4)
    model.save(tmp_path / "features.keras")
    reloaded = keras.models.load_model(tmp_path / "features.keras")
    for a, b in zip(reloaded(x), model(x)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    targets = [np.zeros(level.shape, np.float32) for level in testing.forward(model, x)]
    models[1].set_grad_checkpointing(True)
    for m in models:
        m.compile(optimizer=keras.optimizers.SGD(0.01), loss=["mse", "mse"])
        m.fit(x, targets, batch_size=4, epochs=1, verbose=0)
    plain, checkpointed = testing.canonical_state(models[0]), testing.canonical_state(models[1])
    for tensor, value in plain.items():
        assert not np.array_equal(value, state[tensor]) or "moving" not in tensor, f"{tensor} did not train"
        assert testing.max_relative_error(checkpointed[tensor], value) <= 1e-5, tensor
