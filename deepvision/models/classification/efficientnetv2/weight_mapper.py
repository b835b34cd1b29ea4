"""The seed's EfficientNetV2 weight mapper, implemented through the canonical format.

```python
from deepvision.models.classification.efficientnet import efficientnet_weight_mapper
pt_model = efficientnet_weight_mapper.load_tf_to_pt(filepath="effnet.h5", dummy_input=dummy_input_tf)
tf_model = efficientnet_weight_mapper.load_pt_to_tf(filepath="effnet.pt", architecture="EfficientNetV2B0",
                                                    kwargs={"include_top": False, "pooling": "avg",
                                                            "input_shape": (3, 224, 224)},
                                                    dummy_input=dummy_input_torch)
```

There is no pairwise TF<->PT mapping here: the source model's tensors go to canonical names and
layouts and into the target model (``deepvision.portable.to_backend``), as for every other model.
Importing this module imports no framework.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from deepvision.backend import PYTORCH, TENSORFLOW

logger = logging.getLogger("deepvision")

# Above this relative difference on the dummy input, the converted model is reported as different.
_TOLERANCE = 1e-4


def load_tf_to_pt(filepath: str | os.PathLike, dummy_input: Any = None) -> Any:
    """A PyTorch EfficientNetV2 with the weights of a saved Keras one.

    Args:
        filepath: a file written by a deepvision Keras EfficientNetV2's ``save()`` (``.h5`` or ``.keras``),
            or a portable ``.safetensors`` checkpoint.
        dummy_input: optional channels-last batch (``tf.Tensor`` or array, (N, H, W, C)); when given,
            both models are run on it and a difference above 1e-4 (relative) is logged as a warning.

    Returns:
        The PyTorch model (a LightningModule) in eval mode.
    """
    from deepvision.models.keras_io import load_keras_model
    from deepvision.portable import load_portable, to_backend

    if os.fspath(filepath).endswith(".safetensors"):
        return load_portable(filepath, backend=PYTORCH)
    tf_model = load_keras_model(filepath)
    pt_model = to_backend(tf_model, PYTORCH)
    if dummy_input is not None:
        _check(tf_model, pt_model, _to_numpy(dummy_input))
    return pt_model


def load_pt_to_tf(
    filepath: str | os.PathLike, architecture: str, kwargs: dict[str, Any] | None = None, dummy_input: Any = None
) -> Any:
    """A Keras EfficientNetV2 with the weights of a PyTorch ``state_dict`` file.

    Args:
        filepath: a file written by ``torch.save(pt_model.state_dict(), filepath)``.
        architecture: the registered name, e.g. ``"EfficientNetV2B0"``.
        kwargs: the PyTorch model's constructor arguments (``input_shape`` channels-first), e.g.
            ``{"include_top": False, "pooling": "avg", "input_shape": (3, 224, 224)}``.
        dummy_input: optional channels-first batch (``torch.Tensor`` or array, (N, C, H, W)); when
            given, both models are run on it and a difference above 1e-4 (relative) is logged.

    Returns:
        The Keras model.
    """
    from deepvision.adapters.torch_adapter import from_numpy
    from deepvision.io_utils import read_state_dict
    from deepvision.models import create_model
    from deepvision.portable import to_backend

    pt_model = create_model(architecture, backend=PYTORCH, **(kwargs or {}))
    # The one reader of PyTorch files: a Lightning checkpoint's "state_dict" is unwrapped there.
    state = read_state_dict(filepath)
    pt_model.load_state_dict({k: from_numpy(v) for k, v in state.items()}, strict=True)
    pt_model.eval()
    tf_model = to_backend(pt_model, TENSORFLOW)
    if dummy_input is not None:
        x = _to_numpy(dummy_input)
        _check(tf_model, pt_model, np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x)
    return tf_model


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    elif hasattr(x, "numpy"):
        x = x.numpy()
    return np.asarray(x, dtype=np.float32)


def _check(tf_model: Any, pt_model: Any, x_channels_last: np.ndarray) -> float:
    """Run both models on the same input (inference mode) and warn when they differ."""
    from deepvision import testing

    expected = testing.forward(tf_model, x_channels_last)
    actual = testing.forward(pt_model, x_channels_last)
    error = testing.max_relative_error(actual, expected)
    if error > _TOLERANCE:
        logger.warning("deepvision: the converted EfficientNetV2 differs from its source by %.3g (relative) "
                       "on the dummy input", error)
    return error
