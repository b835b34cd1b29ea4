"""MirroredStrategy over two logical CPU devices trains a tiny ViT like a single device does.

Run in a fresh interpreter (``tf.config.set_logical_device_configuration`` fails once TensorFlow
has initialised); prints one JSON line: replica count, per-epoch losses and the largest per-tensor
relative weight difference from single-device training with the same global batch.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from deepvision.portable import load_portable, save_portable  # noqa: E402
from deepvision.registry import build_from_neutral_config  # noqa: E402
from deepvision.testing import max_relative_error  # noqa: E402
from deepvision.training import to_tf_dataset  # noqa: E402

CONFIG = dict(patch_size=4, project_dim=32, num_layers=2, num_heads=2, mlp_dim=64, include_top=True, classes=10,
              input_shape=[16, 16, 3])
GLOBAL_BATCH, EPOCHS = 8, 3


def train(strategy: tf.distribute.Strategy, weights: list | None) -> tuple[list, list, list[float], keras.Model]:
    rng = np.random.default_rng(0)
    x = rng.random((32, 16, 16, 3), dtype=np.float32)
    y = rng.integers(0, 10, 32).astype(np.int64)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = build_from_neutral_config("ViT", CONFIG, "tensorflow")
        if weights is not None:
            model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    initial = model.get_weights()
    # MirroredStrategy splits each global batch of the dataset over the replicas.
    history = model.fit(to_tf_dataset(x, y, GLOBAL_BATCH), epochs=EPOCHS, verbose=0)
    return initial, model.get_weights(), history.history["loss"], model


def main() -> int:
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    initial, distributed, loss, model = train(mirrored, None)
    _, single, _, _ = train(tf.distribute.OneDeviceStrategy("/cpu:0"), initial)
    diff = max(max_relative_error(a, b) for a, b in zip(distributed, single))
    # A model trained under the strategy (mirrored variables) saves like any other.
    with tempfile.TemporaryDirectory() as folder:
        path = save_portable(model, Path(folder) / "mirrored.safetensors")
        reloaded = load_portable(path, backend="tensorflow").get_weights()
    saved_exactly = all(np.array_equal(a, b) for a, b in zip(reloaded, distributed))
    print(json.dumps({"replicas": mirrored.num_replicas_in_sync, "loss": loss, "max_rel_diff": diff,
                      "saved_exactly": saved_exactly}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
