"""Framework-neutral array helpers shared by the evaluation tools.

Nothing here imports TensorFlow or PyTorch: a tensor is recognised by the frameworks that are
already imported (a tensor of a framework that was never imported cannot exist).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np


def is_torch_tensor(obj: Any) -> bool:
    """True for a ``torch.Tensor`` (without importing torch)."""
    if "torch" not in sys.modules:
        return False
    import torch

    return isinstance(obj, torch.Tensor)


def is_tf_tensor(obj: Any) -> bool:
    """True for a TensorFlow tensor or variable, or a Keras variable (without importing them)."""
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        if isinstance(obj, (tf.Tensor, tf.Variable)):
            return True
    if "keras" in sys.modules:
        import keras

        if isinstance(obj, keras.Variable):
            return True
    return False


def to_numpy(obj: Any) -> np.ndarray:
    """``obj`` (numpy array, list, torch tensor, TensorFlow tensor) as a numpy array on the host."""
    if isinstance(obj, np.ndarray):
        return obj
    if is_torch_tensor(obj):
        return obj.detach().cpu().numpy()
    if is_tf_tensor(obj):
        import keras

        return np.asarray(keras.ops.convert_to_numpy(obj))
    return np.asarray(obj)


def model_output_tensor(output: Any) -> Any:
    """The tensor of a model's output: the output itself, or ``output["output"]`` for a dict."""
    if isinstance(output, dict):
        if "output" not in output:
            raise TypeError(
                f"The model returned a dict without an 'output' entry (keys: {sorted(output)}); "
                "expected a tensor or a dict with an 'output' tensor."
            )
        return output["output"]
    if isinstance(output, (list, tuple)):
        raise TypeError(
            f"The model returned a {type(output).__name__}; expected a tensor or a dict with an "
            "'output' tensor."
        )
    return output
