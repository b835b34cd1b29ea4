"""Keras implementation of ``SqueezeExcitation`` (mirrors ``squeeze_excitation_pt.py``)."""

from __future__ import annotations

import keras

from deepvision import checks
from deepvision.layers.core_tf import Activation, CheckedLayer, conv2d

# keras.applications' EfficientNet convolution initialiser (truncated normal, fan-out scaled); the
# PyTorch blocks reproduce it with ``squeeze_excitation_pt.init_conv_``.
CONV_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"},
}


@keras.saving.register_keras_serializable(package="deepvision")
class SqueezeExcitationTF(CheckedLayer):
    """Squeeze-and-excitation on (N, H, W, C) input; returns (N, H, W, C)."""

    def __init__(
        self,
        filters: int,
        bottleneck_filters: int,
        activation: str = "swish",
        gate_activation: str = "sigmoid",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = filters
        self.bottleneck_filters = bottleneck_filters
        self.activation = activation
        self.gate_activation = gate_activation
        self.conv_reduce = conv2d(
            filters, bottleneck_filters, 1, kernel_initializer=CONV_KERNEL_INITIALIZER, name="conv_reduce"
        )
        self.act = Activation(activation, name="act")
        self.conv_expand = conv2d(
            bottleneck_filters, filters, 1, kernel_initializer=CONV_KERNEL_INITIALIZER, name="conv_expand"
        )
        self.gate = Activation(gate_activation, name="gate")

    def check_input(self, shape) -> None:
        """Raise ``deepvision.checks.InputShapeError`` unless ``shape`` is ``(N, H, W, filters)``."""
        checks.check_image("SqueezeExcitation", shape, checks.CHANNELS_LAST, channels=self.filters)

    def call(self, inputs):
        scale = keras.ops.mean(inputs, axis=(1, 2), keepdims=True)  # (N, 1, 1, C)
        scale = self.gate(self.conv_expand(self.act(self.conv_reduce(scale))))
        return inputs * scale

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "bottleneck_filters": self.bottleneck_filters,
            "activation": self.activation,
            "gate_activation": self.gate_activation,
        }
