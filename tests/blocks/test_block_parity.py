"""Every public block, proven equal in both backends through the canonical format."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import deepvision
from deepvision import testing
from deepvision.adapters import count_params, slots_by_name
from deepvision.backend import PYTORCH, TENSORFLOW
from deepvision.portable import load_portable, save_portable, to_backend
from tests.blocks.harness import BlockCase, build_pair, gradient_errors, sample_input

pytest.importorskip("tensorflow")
pytest.importorskip("torch")


def _collect() -> list[BlockCase]:
    cases = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.startswith("cases_"):
            cases.extend(importlib.import_module(f"tests.blocks.{info.name}").CASES)
    return cases


CASES = _collect()
pytestmark = pytest.mark.xdist_group("blocks")


@pytest.fixture(scope="module", params=CASES, ids=str)
def pair(request):
    case = request.param
    tf_block, pt_block = build_pair(case)
    return case, tf_block, pt_block


def test_every_public_block_has_cases():
    covered = {case.block for case in CASES}
    assert set(deepvision.layers.BLOCKS) <= covered, set(deepvision.layers.BLOCKS) - covered


def test_names_shapes_and_counts_agree(pair):
    case, tf_block, pt_block = pair
    tf_slots, pt_slots = slots_by_name(tf_block), slots_by_name(pt_block)
    assert {n: s.shape for n, s in tf_slots.items()} == {n: s.shape for n, s in pt_slots.items()}
    assert count_params(tf_block) == count_params(pt_block)
    # The PyTorch count of parameters plus statistics is the same number, counted by torch itself.
    torch_total = sum(p.numel() for p in pt_block.parameters()) + sum(
        b.numel() for n, b in pt_block.named_buffers() if b.is_floating_point()
    )
    assert torch_total == count_params(tf_block)["total"]


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_forward_parity(pair, training):
    case, tf_block, pt_block = pair
    if training and not case.training_parity:
        pytest.skip("stochastic in training mode")
    x = sample_input(case)
    # Training mode updates BatchNorm statistics: work on copies so other tests see the originals.
    tf_copy, pt_copy = (to_backend(pt_block, TENSORFLOW), to_backend(tf_block, PYTORCH)) if training else (tf_block, pt_block)
    expected = testing.forward(tf_copy, x, training=training)
    actual = testing.forward(pt_copy, x, training=training)
    assert actual.shape == expected.shape
    assert testing.max_abs_error(actual, expected) <= 1e-5 * max(1.0, float(np.abs(expected).max()))


def test_gradient_parity(pair):
    case, tf_block, pt_block = pair
    if not case.training_parity:
        pytest.skip("stochastic in training mode")
    if not any(slot.trainable for slot in slots_by_name(tf_block).values()):
        pytest.skip("no trainable weights")  # weightless blocks: torch has nothing to differentiate
    tf_copy, pt_copy = to_backend(pt_block, TENSORFLOW), to_backend(tf_block, PYTORCH)
    x = sample_input(case)
    y = testing.forward(tf_block, x)
    upstream = np.random.default_rng(2).normal(size=y.shape).astype(np.float32)
    _, tf_grads = testing.gradients(tf_copy, x, upstream)
    _, pt_grads = testing.gradients(pt_copy, x, upstream)
    if not tf_grads:
        pytest.skip("no trainable weights")
    assert set(tf_grads) == set(pt_grads)
    errors = gradient_errors(pt_grads, tf_grads, case.gradient_floor)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= 1e-4, (worst, errors[worst])


def test_batch_norm_statistics_after_a_training_step(pair):
    case, tf_block, pt_block = pair
    if not case.has_batch_norm:
        pytest.skip("no BatchNorm")
    tf_copy, pt_copy = to_backend(pt_block, TENSORFLOW), to_backend(tf_block, PYTORCH)
    before = testing.canonical_state(tf_copy)
    x = sample_input(case, seed=5)
    testing.forward(tf_copy, x, training=True)
    testing.forward(pt_copy, x, training=True)
    tf_state, pt_state = testing.canonical_state(tf_copy), testing.canonical_state(pt_copy)
    stats = [n for n in tf_state if n.endswith(("moving_mean", "moving_variance"))]
    assert stats and any(not np.array_equal(before[n], tf_state[n]) for n in stats)
    for name in stats:
        assert testing.max_relative_error(pt_state[name], tf_state[name]) <= 1e-6, name


def test_round_trip_is_bit_exact(pair):
    case, tf_block, pt_block = pair
    back = to_backend(pt_block, TENSORFLOW)
    original, returned = testing.canonical_state(tf_block), testing.canonical_state(back)
    assert original.keys() == returned.keys()
    for name in original:
        np.testing.assert_array_equal(original[name], returned[name], err_msg=name)


def test_module_converters_and_portable_files(pair, tmp_path):
    case, tf_block, pt_block = pair
    module = importlib.import_module(f"deepvision.layers.{deepvision.layers.BLOCKS[case.block]}")
    pt_again = module.tf_to_pt(tf_block)
    tf_again = module.pt_to_tf(pt_block)
    with pytest.raises(TypeError):
        module.tf_to_pt(pt_block)
    path = save_portable(pt_block, tmp_path / "block.safetensors")
    loaded = load_portable(path, backend="tensorflow")
    x = sample_input(case)
    expected = testing.forward(tf_block, x)
    for other in (pt_again, tf_again, loaded):
        assert testing.max_abs_error(testing.forward(other, x), expected) <= 1e-5 * max(1.0, float(np.abs(expected).max()))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_weights_load_into_float32_and_back(pair, tmp_path, dtype):
    case, tf_block, pt_block = pair
    import ml_dtypes

    first = save_portable(tf_block, tmp_path / "half.safetensors", dtype=dtype)
    pt_loaded = load_portable(first, backend=PYTORCH)
    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.float16
    for name, value in testing.canonical_state(pt_loaded).items():
        assert value.dtype == np.float32, name
        rounded = testing.canonical_state(tf_block)[name].astype(np_dtype).astype(np.float32)
        np.testing.assert_array_equal(value, rounded, err_msg=name)
    second = save_portable(pt_loaded, tmp_path / "again.safetensors", dtype=dtype)
    import interchange

    with interchange.open_checkpoint(first) as a, interchange.open_checkpoint(second) as b:
        for name in a.names:
            assert a.dtype(name) == dtype
            np.testing.assert_array_equal(a.get(name).view(np.uint16), b.get(name).view(np.uint16), err_msg=name)
