"""Loss and top-1 accuracy of a model of either backend on numpy arrays (inference mode)."""

from __future__ import annotations

from typing import Any

import numpy as np


def predict_logits(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's float32 outputs for channels-last images ``x`` ``(N, H, W, C)``, in inference mode."""
    from deepvision.testing import forward

    return np.concatenate([forward(model, x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def evaluate(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> dict[str, float]:
    """``{"loss": mean softmax cross-entropy, "accuracy": top-1}`` on ``(x, y)``.

    The logits come from the model's own framework (float32, inference mode); the loss and
    accuracy are computed from them here in float64, the same way for both backends.
    """
    logits = predict_logits(model, x, batch_size).astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    labels = np.asarray(y, dtype=np.int64)
    loss = float(-log_probs[np.arange(len(labels)), labels].mean())
    accuracy = float((logits.argmax(axis=1) == labels).mean())
    return {"loss": loss, "accuracy": accuracy}
