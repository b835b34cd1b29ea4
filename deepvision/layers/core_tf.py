"""Keras counterparts of ``core_pt.py``: the same helpers with the same names and arguments."""

from __future__ import annotations

import keras

ACTIVATIONS = ("linear", "relu", "swish", "gelu", "gelu_tanh", "sigmoid", "hard_sigmoid", "tanh", "softmax")


def activation_name(name: str | None) -> str:
    """Normalise an activation name (same rule as ``core_pt.activation_name``)."""
    name = "linear" if name is None else str(name).lower()
    name = {"silu": "swish"}.get(name, name)
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}. Valid: {sorted(ACTIVATIONS)} (or 'silu').")
    return name


class Activation(keras.layers.Layer):
    """An activation by name; ``gelu`` is exact (erf), ``gelu_tanh`` the tanh approximation."""

    def __init__(self, activation: str | None = "linear", **kwargs) -> None:
        super().__init__(**kwargs)
        self.activation = activation_name(activation)

    def call(self, x):
        ops = keras.ops
        if self.activation == "linear":
            return x
        if self.activation == "gelu":
            return ops.gelu(x, approximate=False)
        if self.activation == "gelu_tanh":
            return ops.gelu(x, approximate=True)
        if self.activation == "swish":
            return ops.silu(x)
        if self.activation == "hard_sigmoid":
            return ops.relu6(x + 3.0) / 6.0
        if self.activation == "softmax":
            return ops.softmax(x, axis=-1)
        return getattr(ops, self.activation)(x)

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self.activation}


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
