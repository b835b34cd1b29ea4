"""Training helpers for both backends, and the data the demo trains on.

``import deepvision.training`` imports no framework; each helper imports its own on first use.

- :func:`load_digits_images`: scikit-learn's handwritten digits, upscaled (no download), fixed split.
- :func:`to_tf_dataset` / :func:`to_dataloader`: numpy arrays (channels-last) as a ``tf.data``
  dataset / a PyTorch ``DataLoader`` (channels-first), batches in the same order in both.
- :class:`ShardSampler`: an ordered sampler that gives each DDP process its slice of every global
  batch, so that DDP training equals single-process training with the same global batch.
- :func:`keras_fit` / :func:`lightning_fit`: compile-if-needed and fit on numpy arrays or datasets,
  returning a Keras-style history (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` per epoch).
  Progress: a bar on a terminal, one line per epoch otherwise (logs, CI).
- :func:`evaluate`: loss and top-1 accuracy of a model of either backend on numpy arrays.
- :func:`plot_history`: the training-curves figure.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_digits_images": "deepvision.training.digits",
    "resize_images": "deepvision.training.digits",
    "DIGIT_CLASSES": "deepvision.training.digits",
    "to_tf_dataset": "deepvision.training.data_tf",
    "to_dataloader": "deepvision.training.data_pt",
    "ShardSampler": "deepvision.training.data_pt",
    "PermutationSampler": "deepvision.training.data_pt",
    "keras_fit": "deepvision.training.fit_tf",
    "lightning_fit": "deepvision.training.fit_pt",
    "HistoryCallback": "deepvision.training.fit_pt",
    "EpochLineProgress": "deepvision.training.fit_pt",
    "evaluate": "deepvision.training.scoring",
    "predict_logits": "deepvision.training.scoring",
    "plot_history": "deepvision.training.plots",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy: the framework behind a helper is imported only when the helper is used.
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'deepvision.training' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
