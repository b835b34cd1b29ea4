"""Keras implementation of ``MBConv`` (mirrors ``mbconv_pt.py``; see ``mbconv.py`` for the structure)."""

from __future__ import annotations

import keras

from deepvision.layers.core_tf import Activation, batch_norm, conv2d, depthwise_conv2d
from deepvision.layers.mbconv import MBCONV_ARGUMENTS, se_filters
from deepvision.layers.squeeze_excitation_tf import CONV_KERNEL_INITIALIZER, SqueezeExcitationTF
from deepvision.layers.stochastic_depth_tf import StochasticDepthTF


@keras.saving.register_keras_serializable(package="deepvision")
class MBConvTF(keras.layers.Layer):
    """MBConv on (N, H, W, C) input."""

    def __init__(
        self,
        input_filters: int,
        output_filters: int,
        expand_ratio: int = 1,
        kernel_size: int = 3,
        strides: int = 1,
        se_ratio: float = 0.0,
        bn_momentum: float = 0.9,
        activation: str = "swish",
        dropout: float = 0.0,
        bn_epsilon: float = 1e-3,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.input_filters = input_filters
        self.output_filters = output_filters
        self.expand_ratio = expand_ratio
        self.kernel_size = kernel_size
        self.strides = strides
        self.se_ratio = se_ratio
        self.bn_momentum = bn_momentum
        self.activation = activation
        self.dropout = dropout
        self.bn_epsilon = bn_epsilon
        filters = input_filters * expand_ratio
        conv_init = {"kernel_initializer": CONV_KERNEL_INITIALIZER}
        # Sublayer names equal the attribute names, so Keras paths read like canonical names.
        if expand_ratio != 1:
            self.expand_conv = conv2d(input_filters, filters, 1, use_bias=False, name="expand_conv", **conv_init)
            self.expand_bn = batch_norm(bn_momentum, bn_epsilon, name="expand_bn")
            self.expand_act = Activation(activation, name="expand_act")
        else:
            self.expand_conv = self.expand_bn = self.expand_act = None
        self.depthwise_conv = depthwise_conv2d(
            filters, kernel_size, strides, use_bias=False, name="depthwise_conv",
            depthwise_initializer=CONV_KERNEL_INITIALIZER,
        )
        self.depthwise_bn = batch_norm(bn_momentum, bn_epsilon, name="depthwise_bn")
        self.depthwise_act = Activation(activation, name="depthwise_act")
        squeeze = se_filters(input_filters, se_ratio)
        self.se = SqueezeExcitationTF(filters, squeeze, activation, name="se") if squeeze else None
        self.project_conv = conv2d(filters, output_filters, 1, use_bias=False, name="project_conv", **conv_init)
        self.project_bn = batch_norm(bn_momentum, bn_epsilon, name="project_bn")
        self.residual = strides == 1 and input_filters == output_filters
        self.drop = StochasticDepthTF(dropout, name="drop") if self.residual else None

    def call(self, inputs, training=None):
        x = inputs
        if self.expand_conv is not None:
            x = self.expand_act(self.expand_bn(self.expand_conv(x), training=training))
        x = self.depthwise_act(self.depthwise_bn(self.depthwise_conv(x), training=training))
        if self.se is not None:
            x = self.se(x)
        x = self.project_bn(self.project_conv(x), training=training)
        if self.residual:
            x = self.drop(x, training=training) + inputs
        return x

    def get_config(self) -> dict:
        return {**super().get_config(), **{name: getattr(self, name) for name in MBCONV_ARGUMENTS}}
