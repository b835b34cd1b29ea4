"""The Keras side: compile/fit on tf.data, XLA (jit_compile=True), mixed_bfloat16, MirroredStrategy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from deepvision.registry import build_from_neutral_config  # noqa: E402
from deepvision.training import to_tf_dataset  # noqa: E402
from tests.training.conftest import CNN, rel_err, tiny_vit_config  # noqa: E402


def _data(n: int = 16, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, size, size, 3), dtype=np.float32), rng.integers(0, 10, n).astype(np.int64)


def _tiny_vit(seed: int = 0):
    keras.utils.set_random_seed(seed)
    return build_from_neutral_config("ViT", tiny_vit_config(16), "tensorflow")


def test_seed_keras_pipeline_on_tf_data():
    # The seed README's Keras pipeline (tf.data, compile with a loss/optimizer/metrics, fit with
    # validation) on a small in-memory dataset; models return logits, hence from_logits=True. A
    # tiny ViT keeps it fast (the hand-off tests fit the CNN in Keras).
    x, y = _data(16)
    train_set = to_tf_dataset(x, y, batch_size=8)
    test_set = to_tf_dataset(*_data(8, seed=1), batch_size=8)
    tf_model = _tiny_vit()
    tf_model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.Adam(learning_rate=1e-4),
        metrics=["accuracy"],
    )
    history = tf_model.fit(train_set, epochs=1, validation_data=test_set, verbose=0)
    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(np.isfinite(history.history["loss"]))


def test_keras_fit_helper_compiles_and_records():
    from deepvision.training import keras_fit

    model = _tiny_vit()
    x, y = _data(32)
    history = keras_fit(model, x, y, validation_data=_data(8, seed=1), epochs=3, batch_size=8,
                        learning_rate=3e-3, verbose=0)
    assert model.loss.get_config()["from_logits"]
    assert len(history.history["val_accuracy"]) == 3
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_jit_compile_matches_eager_graph():
    # XLA training gives the same weights as the default (non-XLA) graph after two SGD steps.
    x, y = _data(16)
    weights = None
    results = []
    for jit in (False, True):
        model = _tiny_vit()
        if weights is None:
            weights = model.get_weights()
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit,
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(to_tf_dataset(x, y, 8), epochs=1, verbose=0)
        assert model.jit_compile is jit
        results.append(model.get_weights())
    assert max(rel_err(a, b) for a, b in zip(results[1], results[0])) < 1e-4


@pytest.fixture
def mixed_bfloat16():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        # The global policy would leak into every later test of this process.
        keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("name", ["ViT", CNN])
def test_mixed_bfloat16(mixed_bfloat16, name):
    config = tiny_vit_config(16) if name == "ViT" else {"classes": 10, "input_shape": [16, 16, 3]}
    model = build_from_neutral_config(name, config, "tensorflow")
    # The body computes in bfloat16 with float32 variables; the head computes in float32.
    assert model.head.dtype_policy.compute_dtype == "float32"
    assert all(w.dtype == "float32" for w in model.weights)
    x, y = _data(8)
    logits = model(x)
    assert keras.ops.convert_to_numpy(logits).dtype == np.float32
    model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert model.compute_loss(x, y, logits).dtype == "float32"
    if name != "ViT":
        return  # one fit is enough (bf16 on a CPU is slow for the 11M-parameter CNN)
    history = model.fit(to_tf_dataset(x, y, 4), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_policy_was_reset():
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.subprocess
def test_mirrored_strategy_two_logical_cpus():
    # Logical devices can only be set before TensorFlow initialises: a fresh interpreter.
    script = Path(__file__).with_name("mirrored_script.py")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["loss"][-1] < result["loss"][0]
    # Two replicas with half the batch each equal one device with the whole batch.
    assert result["max_rel_diff"] < 1e-5, result
    assert result["saved_exactly"]  # save_portable of a model with mirrored variables
