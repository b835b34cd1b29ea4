"""Data helpers: the digits, the same batch order in both backends, the DDP shard sampler, scoring."""

from __future__ import annotations

import numpy as np
import pytest

from deepvision.training import load_digits_images


def test_digits_shapes_split_and_layouts():
    (x_train, y_train), (x_test, y_test) = load_digits_images(32)
    assert x_train.shape == (1438, 32, 32, 3) and x_test.shape == (359, 32, 32, 3)
    assert x_train.dtype == np.float32 and 0.0 <= x_train.min() and x_train.max() <= 1.0
    assert set(np.unique(y_train)) == set(range(10)) and y_train.dtype == np.int64
    # Fixed split: the same arrays every time; channels-first is the same data transposed.
    (again, y_again), _ = load_digits_images(32)
    np.testing.assert_array_equal(again, x_train)
    np.testing.assert_array_equal(y_again, y_train)
    (first, _), _ = load_digits_images(32, channels_first=True, channels=1)
    np.testing.assert_array_equal(first[:, 0], x_train[..., 0])
    # Upscaling keeps the 8x8 originals: a 2x bilinear upscale averaged back is close to them
    # (only edges blur).
    (x8, _), _ = load_digits_images(8, channels=1)
    (x16, _), _ = load_digits_images(16, channels=1)
    assert np.abs(x16.reshape(-1, 8, 2, 8, 2, 1).mean((2, 4)) - x8).mean() < 0.1
    assert abs(float(x16.mean()) - float(x8.mean())) < 1e-3


@pytest.mark.parametrize("shuffle", [False, True])
def test_tf_dataset_and_dataloader_give_the_same_batches(shuffle):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(21, 4, 4, 3)).astype(np.float32)
    y = np.arange(21, dtype=np.int64)
    from deepvision.training import to_dataloader, to_tf_dataset

    dataset = to_tf_dataset(x, y, batch_size=5, shuffle=shuffle, seed=3)
    loader = to_dataloader(x, y, batch_size=5, shuffle=shuffle, seed=3)
    for _epoch in range(2):  # a new order each epoch when shuffling, the same in both
        tf_batches = [(bx.numpy(), by.numpy()) for bx, by in dataset]
        pt_batches = [(bx.numpy(), by.numpy()) for bx, by in loader]
        assert [len(b[1]) for b in tf_batches] == [5, 5, 5, 5, 1]
        for (tx, ty), (px, py) in zip(tf_batches, pt_batches, strict=True):
            np.testing.assert_array_equal(ty, py)
            np.testing.assert_array_equal(tx, px.transpose(0, 2, 3, 1))  # NCHW for PyTorch
    orders = [np.concatenate([by.numpy() for _, by in dataset]) for _ in range(2)]
    assert (not np.array_equal(orders[0], orders[1])) == shuffle


def test_shard_sampler_splits_each_global_batch():
    from deepvision.training import ShardSampler

    shards = [list(ShardSampler(20, global_batch_size=8, num_replicas=2, rank=r)) for r in range(2)]
    # Two global batches of 8 (the last 4 samples are dropped); each process holds 4 per batch.
    assert shards[0] == [0, 1, 2, 3, 8, 9, 10, 11] and shards[1] == [4, 5, 6, 7, 12, 13, 14, 15]
    assert len(ShardSampler(20, 8, 2, 0)) == 8
    with pytest.raises(ValueError, match="divisible"):
        ShardSampler(20, global_batch_size=7, num_replicas=2, rank=0)


def test_plot_history_writes_png(tmp_path):
    from deepvision.training import plot_history

    stages = [("Keras", {"loss": [1.0, 0.5], "accuracy": [0.5, 0.8], "val_loss": [1.1, 0.7]}),
              ("Lightning", {"loss": [0.4], "accuracy": [0.9], "val_accuracy": [0.85]})]
    path = plot_history(stages, tmp_path / "figs" / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_import_is_framework_free():
    import subprocess
    import sys

    code = ("import sys, deepvision.training as t; dir(t); "
            "print([m for m in sys.modules if m.startswith(('torch', 'tensorflow', 'keras', 'pytorch_lightning'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
