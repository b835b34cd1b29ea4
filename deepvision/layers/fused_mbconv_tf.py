"""Keras implementation of ``FusedMBConv`` (mirrors ``fused_mbconv_pt.py``; structure in ``fused_mbconv.py``)."""

from __future__ import annotations

import keras

from deepvision.layers.core_tf import Activation, batch_norm, conv2d
from deepvision.layers.mbconv import MBCONV_ARGUMENTS, se_filters
from deepvision.layers.squeeze_excitation_tf import CONV_KERNEL_INITIALIZER, SqueezeExcitationTF
from deepvision.layers.stochastic_depth_tf import StochasticDepthTF


@keras.saving.register_keras_serializable(package="deepvision")
class FusedMBConvTF(keras.layers.Layer):
    """Fused-MBConv on (N, H, W, C) input."""

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
        expand = expand_ratio != 1
        if expand:
            self.expand_conv = conv2d(
                input_filters, filters, kernel_size, strides, use_bias=False, name="expand_conv", **conv_init
            )
            self.expand_bn = batch_norm(bn_momentum, bn_epsilon, name="expand_bn")
            self.expand_act = Activation(activation, name="expand_act")
        else:
            self.expand_conv = self.expand_bn = self.expand_act = None
        squeeze = se_filters(input_filters, se_ratio)
        self.se = SqueezeExcitationTF(filters, squeeze, activation, name="se") if squeeze else None
        # Without expansion the project conv is the block's only (kxk, strided) conv.
        self.project_conv = conv2d(
            filters, output_filters, 1 if expand else kernel_size, 1 if expand else strides,
            use_bias=False, name="project_conv", **conv_init,
        )
        self.project_bn = batch_norm(bn_momentum, bn_epsilon, name="project_bn")
        self.project_act = None if expand else Activation(activation, name="project_act")
        self.residual = strides == 1 and input_filters == output_filters
        self.drop = StochasticDepthTF(dropout, name="drop") if self.residual else None

    def call(self, inputs, training=None):
        x = inputs
        if self.expand_conv is not None:
            x = self.expand_act(self.expand_bn(self.expand_conv(x), training=training))
        if self.se is not None:
            x = self.se(x)
        x = self.project_bn(self.project_conv(x), training=training)
        if self.project_act is not None:
            x = self.project_act(x)
        if self.residual:
            x = self.drop(x, training=training) + inputs
        return x

    def get_config(self) -> dict:
        return {**super().get_config(), **{name: getattr(self, name) for name in MBCONV_ARGUMENTS}}
