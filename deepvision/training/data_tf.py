"""numpy arrays -> ``tf.data.Dataset`` in a known order (the PyTorch twin is ``data_pt.to_dataloader``)."""

from __future__ import annotations

from typing import Any

import numpy as np


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The sample order of ``epoch`` when shuffling: the same in both backends for the same seed."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def to_tf_dataset(
    x: np.ndarray,
    y: np.ndarray | None = None,
    batch_size: int = 32,
    *,
    shuffle: bool = False,
    seed: int = 0,
    drop_remainder: bool = False,
) -> Any:
    """A batched ``tf.data.Dataset`` of ``(x, y)`` (or ``x``) in a known order.

    Args:
        x: channels-last images ``(N, H, W, C)`` (any array the model takes).
        y: labels ``(N,)`` or ``(N, classes)``; ``None`` for inputs only.
        batch_size: samples per batch.
        shuffle: ``False`` keeps the array order; ``True`` draws a new order each epoch with
            :func:`epoch_permutation` (``seed``, epoch number), the same orders as
            ``to_dataloader(..., shuffle=True, seed=seed)`` gives in PyTorch.
        drop_remainder: drop the last, smaller batch.

    Returns:
        A dataset with ``prefetch``; iterate it once per epoch (``model.fit`` does).
    """
    import tensorflow as tf

    tensors = (x,) if y is None else (x, y)
    if not shuffle:
        dataset = tf.data.Dataset.from_tensor_slices(tensors)
    else:
        n = len(x)
        state = {"epoch": 0}

        def order() -> np.ndarray:
            # Called once per pass over the dataset (one pass = one epoch): a fresh permutation.
            perm = epoch_permutation(n, seed, state["epoch"])
            state["epoch"] += 1
            return perm

        constants = tuple(tf.constant(t) for t in tensors)
        indices = tf.data.Dataset.range(1).flat_map(
            lambda _: tf.data.Dataset.from_tensor_slices(tf.reshape(tf.py_function(order, [], tf.int64), [n]))
        )
        # Known length: progress bars show it and Keras need not count the first epoch.
        indices = indices.apply(tf.data.experimental.assert_cardinality(n))
        dataset = indices.map(lambda i: tuple(tf.gather(t, i) for t in constants))
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if y is None:
        # Elements are 1-tuples; map unpacks them, so this yields the bare input batch.
        dataset = dataset.map(lambda inputs: inputs)
    return dataset.prefetch(tf.data.AUTOTUNE)
