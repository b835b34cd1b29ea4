"""Keras counterparts of ``core_pt.py``: the same helpers with the same names and arguments."""

from __future__ import annotations

import keras
from keras import ops

from deepvision.layers.core import ACTIVATIONS, activation_name

__all__ = ["ACTIVATIONS", "FUNCTIONS", "Activation", "CheckedLayer", "activation_name", "batch_norm", "conv2d", "depthwise_conv2d"]


class CheckedLayer(keras.layers.Layer):
    """A Keras layer that checks its input (``check_input``, see ``deepvision.checks``) before Keras
    builds or calls it, so a wrong input fails with deepvision's message, the same as in PyTorch,
    and never builds weights of the wrong shape."""

    def __call__(self, *args, **kwargs):
        inputs = args[0] if args else kwargs.get("inputs")
        self.check_input(getattr(inputs, "shape", None))
        return super().__call__(*args, **kwargs)

    def check_input(self, shape) -> None:
        """Raise ``deepvision.checks.InputShapeError`` for an input this layer cannot take."""


class Activation(keras.layers.Layer):
    """An activation by name; ``gelu`` is exact (erf), ``gelu_tanh`` the tanh approximation."""

    def __init__(self, activation: str | None = "linear", **kwargs) -> None:
        super().__init__(**kwargs)
        self.activation = activation_name(activation)

    def call(self, x):
        return FUNCTIONS[self.activation](x)

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self.activation}


# One function per name of ``core.ACTIVATIONS`` (mirrors ``core_pt.FUNCTIONS``).
FUNCTIONS = {
    "linear": lambda x: x,
    "relu": ops.relu,
    "swish": ops.silu,
    "gelu": lambda x: ops.gelu(x, approximate=False),
    "gelu_tanh": lambda x: ops.gelu(x, approximate=True),
    "sigmoid": ops.sigmoid,
    # Keras 3's hard_sigmoid: relu6(x + 3) / 6.
    "hard_sigmoid": lambda x: ops.relu6(x + 3.0) / 6.0,
    "tanh": ops.tanh,
    "softmax": lambda x: ops.softmax(x, axis=-1),
}


def batch_norm(momentum: float = 0.99, epsilon: float = 1e-3, **kwargs) -> keras.layers.BatchNormalization:
    """Channels-last BatchNormalization (mirrors ``core_pt.BatchNorm2d``; no channel count needed)."""
    return keras.layers.BatchNormalization(axis=-1, momentum=momentum, epsilon=epsilon, **kwargs)


def conv2d(
    in_channels: int,
    filters: int,
    kernel_size: int,
    strides: int = 1,
    padding: str = "same",
    groups: int = 1,
    use_bias: bool = True,
    dilation: int = 1,
    **kwargs,
) -> keras.layers.Conv2D:
    """Channels-last Conv2D; ``in_channels`` is unused but kept so calls mirror PyTorch's."""
    del in_channels
    if padding not in ("same", "valid"):
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
    return keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, groups=groups, use_bias=use_bias,
        dilation_rate=dilation, data_format="channels_last", **kwargs,
    )


def depthwise_conv2d(
    channels: int, kernel_size: int, strides: int = 1, padding: str = "same", use_bias: bool = True, **kwargs
) -> keras.layers.DepthwiseConv2D:
    """Depthwise conv (multiplier 1), channels-last."""
    del channels
    return keras.layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding=padding, use_bias=use_bias, data_format="channels_last", **kwargs
    )
