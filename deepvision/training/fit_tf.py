"""``keras_fit``: compile a Keras model if needed and fit it on numpy arrays or a ``tf.data`` dataset."""

from __future__ import annotations

import sys
from typing import Any

import keras
import numpy as np

from deepvision.training.console import is_terminal
from deepvision.training.data_tf import to_tf_dataset


def default_compile(model: keras.Model, optimizer: Any = "adam", learning_rate: float = 1e-3,
                    jit_compile: bool | str = "auto") -> keras.Model:
    """Compile for classification on logits: ``SparseCategoricalCrossentropy(from_logits=True)``
    (batch mean, the same as PyTorch's ``CrossEntropyLoss``) and top-1 ``accuracy``.

    ``optimizer`` is a ``keras.optimizers.Optimizer`` or a name (``"adam"``, ``"adamw"``,
    ``"sgd"``, ``"rmsprop"``) built with ``learning_rate``.
    """
    if isinstance(optimizer, str):
        classes = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW, "sgd": keras.optimizers.SGD,
                   "rmsprop": keras.optimizers.RMSprop}
        if optimizer.lower() not in classes:
            raise ValueError(f"Unknown optimizer {optimizer!r}; valid names: {sorted(classes)}")
        optimizer = classes[optimizer.lower()](learning_rate=learning_rate)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return model


def keras_fit(
    model: keras.Model,
    x: Any,
    y: np.ndarray | None = None,
    *,
    validation_data: Any = None,
    epochs: int = 1,
    batch_size: int = 32,
    optimizer: Any = "adam",
    learning_rate: float = 1e-3,
    shuffle: bool = False,
    seed: int = 0,
    jit_compile: bool | str = "auto",
    verbose: int | str = "auto",
    callbacks: list | None = None,
    steps_per_epoch: int | None = None,
) -> keras.callbacks.History:
    """Fit a Keras model; compiles it first (see :func:`default_compile`) when it is not compiled.

    Args:
        model: a compiled or uncompiled ``keras.Model`` returning logits.
        x: channels-last images ``(N, H, W, C)`` with labels ``y``, or a ``tf.data.Dataset`` of
            ``(images, labels)`` batches (then ``y`` must be ``None``).
        validation_data: ``(x_val, y_val)`` arrays or a dataset.
        shuffle, seed: the sample order (see :func:`deepvision.training.to_tf_dataset`); the
            default keeps the array order, so a run is reproducible and comparable with PyTorch.
        verbose: Keras's progress bar (``1``), one line per epoch (``2``) or nothing (``0``);
            ``"auto"``: the bar when standard output is a terminal, else one line per epoch (a
            bar in a log file or CI job leaves every redraw behind).

    Returns:
        Keras's ``History`` (``history.history["loss"]``, ``["accuracy"]``, ``["val_loss"]``, ...).
    """
    if verbose == "auto":
        verbose = 1 if is_terminal(sys.stdout) else 2
    if not getattr(model, "compiled", False) or model.optimizer is None:
        default_compile(model, optimizer, learning_rate, jit_compile)
    if y is not None:
        x = to_tf_dataset(x, y, batch_size, shuffle=shuffle, seed=seed)
    if isinstance(validation_data, (tuple, list)):
        validation_data = to_tf_dataset(*validation_data, batch_size=batch_size)
    # shuffle=False: the dataset already holds the order (Keras would only warn that it ignores it).
    return model.fit(x, validation_data=validation_data, epochs=epochs, verbose=verbose, callbacks=callbacks,
                     steps_per_epoch=steps_per_epoch, shuffle=False)
