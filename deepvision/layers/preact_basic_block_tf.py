"""Keras implementation of ``PreActBasicBlock`` (mirrors ``preact_basic_block_pt.py``), channels-last."""

from __future__ import annotations

import keras

from deepvision.layers.core_tf import Activation, batch_norm, conv2d
from deepvision.layers.preact_bottleneck import check_arguments
from deepvision.layers.preact_bottleneck_tf import shortcut_tf
from deepvision.layers.stochastic_depth_tf import StochasticDepthTF


@keras.saving.register_keras_serializable(package="deepvision")
class PreActBasicBlockTF(keras.layers.Layer):
    """ResNetV2 basic block: ``(B, H, W, input_filters) -> (B, H', W', filters)``.

    See ``deepvision.layers.PreActBasicBlock`` for the arguments and the computation.
    """

    expansion = 1

    def __init__(
        self,
        input_filters: int,
        filters: int,
        kernel_size: int = 3,
        strides: int = 1,
        conv_shortcut: bool = False,
        bn_momentum: float = 0.99,
        bn_epsilon: float = 1.001e-5,
        drop_path_rate: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        check_arguments("PreActBasicBlock", input_filters, filters, kernel_size, strides, conv_shortcut)
        self.input_filters = input_filters
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.conv_shortcut = conv_shortcut
        self.bn_momentum = bn_momentum
        self.bn_epsilon = bn_epsilon
        self.drop_path_rate = drop_path_rate

        self.preact_norm = batch_norm(bn_momentum, bn_epsilon)
        self.preact_act = Activation("relu")
        self.shortcut = shortcut_tf(input_filters, filters, strides, conv_shortcut)
        self.pad1 = keras.layers.ZeroPadding2D(kernel_size // 2)
        self.conv1 = conv2d(input_filters, filters, kernel_size, 1, padding="valid", use_bias=False)
        self.norm1 = batch_norm(bn_momentum, bn_epsilon)
        self.act1 = Activation("relu")
        self.pad2 = keras.layers.ZeroPadding2D(kernel_size // 2)
        self.conv2 = conv2d(filters, filters, kernel_size, strides, padding="valid", use_bias=False)
        self.drop_path = StochasticDepthTF(drop_path_rate)

    def build(self, input_shape) -> None:
        batch, height, width, _ = input_shape
        self.preact_norm.build(input_shape)
        if self.conv_shortcut:
            self.shortcut.build(input_shape)
        self.conv1.build(self.pad1.compute_output_shape(input_shape))
        inner = (batch, height, width, self.filters)
        self.norm1.build(inner)
        self.conv2.build(self.pad2.compute_output_shape(inner))
        self.built = True

    def call(self, inputs, training=None):
        preact = self.preact_act(self.preact_norm(inputs, training=training))
        if self.conv_shortcut:
            shortcut = self.shortcut(preact)
        elif self.shortcut is not None:
            shortcut = self.shortcut(inputs)
        else:
            shortcut = inputs
        x = self.act1(self.norm1(self.conv1(self.pad1(preact)), training=training))
        x = self.conv2(self.pad2(x))
        return shortcut + self.drop_path(x, training=training)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        size = [None if s is None else (s - 1) // self.strides + 1 for s in (height, width)]
        return (batch, *size, self.filters)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "input_filters": self.input_filters,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "conv_shortcut": self.conv_shortcut,
            "bn_momentum": self.bn_momentum,
            "bn_epsilon": self.bn_epsilon,
            "drop_path_rate": self.drop_path_rate,
        }
