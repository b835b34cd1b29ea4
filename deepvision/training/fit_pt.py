"""``lightning_fit``: compile a deepvision PyTorch model if needed and fit it with a Lightning Trainer."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader

from deepvision.training.console import is_terminal
from deepvision.training.data_pt import to_dataloader

# Lightning's logged names -> Keras's History names, so both backends' curves plot alike.
_HISTORY_KEYS = {
    "train_loss_epoch": "loss",
    "train_accuracy": "accuracy",
    "val_loss": "val_loss",
    "val_accuracy": "val_accuracy",
}


class HistoryCallback(pl.Callback):
    """Records the epoch metrics as Keras's ``History`` does: ``history["loss"]``, ``["val_accuracy"]``, ...

    Keys: ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` (what the deepvision training
    steps log as ``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``); other
    epoch-level values keep their Lightning names.
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning has computed every epoch aggregate (validation included) by this hook.
        self.epoch.append(trainer.current_epoch)
        for key, value in _epoch_metrics(trainer).items():
            self.history.setdefault(key, []).append(value)


def _epoch_metrics(trainer: pl.Trainer) -> dict[str, float]:
    # The epoch aggregates under their Keras names (per-step values are skipped), Keras's order first.
    metrics = {_HISTORY_KEYS.get(key, key): float(value) for key, value in trainer.callback_metrics.items()
               if not key.endswith("_step") and key != "train_loss"}
    order = list(_HISTORY_KEYS.values())
    return dict(sorted(metrics.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


class EpochLineProgress(pl.callbacks.ProgressBar):
    """Progress as one line per epoch (Keras's ``verbose=2``), for output that is not a terminal.

    A terminal bar redraws itself with carriage returns; in a log file or a CI job each redraw is
    kept, thousands per epoch. This prints, on the global-zero process only::

        Epoch 1/2 - 45 steps - 12.3 s - loss: 2.1450 - accuracy: 0.2931 - val_loss: 1.9000 - val_accuracy: 0.3510

    Args:
        stream: where the lines go (default ``sys.stdout``, where Keras and Lightning's bars print).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self._stream = stream
        self._enabled = True
        self._started = 0.0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Validation at the end of the epoch has run by this hook (see HistoryCallback).
        if not self._enabled or not trainer.is_global_zero:
            return
        total = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs >= 0 else "?"
        parts = [f"Epoch {trainer.current_epoch + 1}/{total}", f"{trainer.num_training_batches} steps",
                 f"{time.perf_counter() - self._started:.1f} s"]
        parts += [f"{key}: {value:.4f}" for key, value in _epoch_metrics(trainer).items()]
        print(" - ".join(parts), file=self._stream or sys.stdout, flush=True)


def lightning_fit(
    model: pl.LightningModule,
    x: Any,
    y: np.ndarray | None = None,
    *,
    validation_data: Any = None,
    epochs: int = 1,
    batch_size: int = 32,
    optimizer: Any = None,
    learning_rate: float = 1e-3,
    shuffle: bool = False,
    seed: int = 0,
    precision: str | int = "32-true",
    accelerator: str = "cpu",
    devices: int | str = 1,
    progress_bar: bool = True,
    **trainer_kwargs: Any,
) -> HistoryCallback:
    """Fit a deepvision PyTorch model with ``pl.Trainer``; the Lightning twin of :func:`keras_fit`.

    Args:
        model: a deepvision PyTorch model (a ``DeepVisionModulePT``) returning logits.
        x: channels-last images ``(N, H, W, C)`` with labels ``y`` (transposed to NCHW here, so
            the same arrays feed both backends), or a ``DataLoader`` of ``(NCHW images, labels)``.
        validation_data: ``(x_val, y_val)`` channels-last arrays, or a ``DataLoader``.
        optimizer: ``None`` keeps what ``model.compile`` configured, compiling with Adam when the
            model was never compiled; else anything ``model.compile(optimizer=...)`` takes (a
            name, a class, a factory or an optimizer built on ``model.parameters()``).
        shuffle, seed: the sample order, the same as ``keras_fit(..., shuffle=, seed=)`` uses.
        precision: Lightning's precision, e.g. ``"bf16-mixed"``.
        progress_bar: show progress: Lightning's bar (one kept line per epoch) when standard
            output is a terminal, else one plain line per epoch (:class:`EpochLineProgress`), not
            a stream of carriage-return redraws; ``False`` shows nothing. A ``ProgressBar`` in
            ``callbacks`` is used as given.
        trainer_kwargs: more ``pl.Trainer`` arguments (``max_steps``, ``logger``, ...). Defaults
            here: no logger files, no checkpoint files, no model summary.

    Returns:
        The :class:`HistoryCallback`: ``.history`` is a Keras-style dict of per-epoch lists;
        ``.trainer`` is the Trainer that ran.
    """
    if optimizer is not None or "_dv_optimizer_spec" not in model.__dict__:
        # Keep a compiled loss and metrics; a schedule belonged to the old optimizer.
        model.compile(loss=model.__dict__.get("_dv_loss"), optimizer=optimizer,
                      metrics=model.__dict__.get("_dv_metrics_spec"), learning_rate=learning_rate)
    train = x if isinstance(x, DataLoader) else to_dataloader(x, y, batch_size, shuffle=shuffle, seed=seed)
    val = validation_data
    if isinstance(val, (tuple, list)):
        val = to_dataloader(*val, batch_size=batch_size)
    history = HistoryCallback()
    options = dict(logger=False, enable_checkpointing=False, enable_model_summary=False)
    options.update(trainer_kwargs)
    callbacks = [history, *options.get("callbacks", [])]
    if progress_bar and not any(isinstance(c, pl.callbacks.ProgressBar) for c in callbacks):
        # A terminal: one bar per epoch that stays, as Keras's does. Elsewhere (logs, CI): plain lines.
        callbacks.append(pl.callbacks.TQDMProgressBar(leave=True) if is_terminal(sys.stdout)
                         else EpochLineProgress())
    options["callbacks"] = callbacks
    trainer = pl.Trainer(accelerator=accelerator, devices=devices, max_epochs=epochs, precision=precision,
                         enable_progress_bar=progress_bar, **options)
    trainer.fit(model, train, val)
    history.trainer = trainer
    return history
