"""``lightning_fit``: compile a deepvision PyTorch model if needed and fit it with a Lightning Trainer."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader

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
        for key, value in trainer.callback_metrics.items():
            if key.endswith("_step") or key == "train_loss":
                continue
            self.history.setdefault(_HISTORY_KEYS.get(key, key), []).append(float(value))


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
        # One line per epoch that stays, as Keras's bar does.
        callbacks.append(pl.callbacks.TQDMProgressBar(leave=True))
    options["callbacks"] = callbacks
    trainer = pl.Trainer(accelerator=accelerator, devices=devices, max_epochs=epochs, precision=precision,
                         enable_progress_bar=progress_bar, **options)
    trainer.fit(model, train, val)
    history.trainer = trainer
    return history
