"""Keras implementation of ``MBConv`` (mirrors ``mbconv_pt.py``; see ``mbconv.py`` for the structure).

:class:`MBConvBlockTF` is what MBConv and FusedMBConv share (arguments, expansion, squeeze-excitation,
projection, residual with drop path, config); each block adds only the layers in which they differ.
"""

from __future__ import annotations

import keras

from deepvision import checks
from deepvision.layers.core_tf import Activation, CheckedLayer, batch_norm, conv2d, depthwise_conv2d
from deepvision.layers.mbconv import MBCONV_ARGUMENTS, se_filters
from deepvision.layers.squeeze_excitation_tf import CONV_KERNEL_INITIALIZER, SqueezeExcitationTF
from deepvision.layers.stochastic_depth_tf import StochasticDepthTF


class MBConvBlockTF(CheckedLayer):
    """An inverted-residual block on (N, H, W, C) input.

    Subclasses set ``block`` (the public name) and implement ``_build_layers(filters)`` (creating
    the sublayers in canonical order with :meth:`_add_expand`, :meth:`_add_se`, :meth:`_add_project`)
    and ``_branch(x, training)``. Sublayer names equal the attribute names, so Keras paths read like
    canonical names.
    """

    block = "MBConvBlock"

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
        self._build_layers(input_filters * expand_ratio)
        self.residual = strides == 1 and input_filters == output_filters
        self.drop = StochasticDepthTF(dropout, name="drop") if self.residual else None

    def _bn(self, name: str) -> keras.layers.BatchNormalization:
        return batch_norm(self.bn_momentum, self.bn_epsilon, name=name)

    def _add_expand(self, filters: int, kernel_size: int, strides: int) -> None:
        # Only an expanding block has the expand conv (keras.applications' naming, kept in both blocks).
        if self.expand_ratio != 1:
            self.expand_conv = conv2d(self.input_filters, filters, kernel_size, strides, use_bias=False,
                                      name="expand_conv", kernel_initializer=CONV_KERNEL_INITIALIZER)
            self.expand_bn = self._bn("expand_bn")
            self.expand_act = Activation(self.activation, name="expand_act")
        else:
            self.expand_conv = self.expand_bn = self.expand_act = None

    def _add_se(self, filters: int) -> None:
        squeeze = se_filters(self.input_filters, self.se_ratio)
        self.se = SqueezeExcitationTF(filters, squeeze, self.activation, name="se") if squeeze else None

    def _add_project(self, filters: int, kernel_size: int, strides: int) -> None:
        self.project_conv = conv2d(filters, self.output_filters, kernel_size, strides, use_bias=False,
                                   name="project_conv", kernel_initializer=CONV_KERNEL_INITIALIZER)
        self.project_bn = self._bn("project_bn")

    def _expand(self, x, training=None):
        if self.expand_conv is None:
            return x
        return self.expand_act(self.expand_bn(self.expand_conv(x), training=training))

    def _se(self, x):
        return x if self.se is None else self.se(x)

    def check_input(self, shape) -> None:
        """Raise ``deepvision.checks.InputShapeError`` unless ``shape`` is ``(N, H, W, input_filters)``."""
        checks.check_image(self.block, shape, checks.CHANNELS_LAST, channels=self.input_filters)

    def call(self, inputs, training=None):
        x = self._branch(inputs, training)
        if self.residual:
            x = self.drop(x, training=training) + inputs
        return x

    def get_config(self) -> dict:
        return {**super().get_config(), **{name: getattr(self, name) for name in MBCONV_ARGUMENTS}}


@keras.saving.register_keras_serializable(package="deepvision")
class MBConvTF(MBConvBlockTF):
    """MBConv on (N, H, W, C) input."""

    block = "MBConv"

    def _build_layers(self, filters: int) -> None:
        self._add_expand(filters, 1, 1)
        self.depthwise_conv = depthwise_conv2d(filters, self.kernel_size, self.strides, use_bias=False,
                                               name="depthwise_conv", depthwise_initializer=CONV_KERNEL_INITIALIZER)
        self.depthwise_bn = self._bn("depthwise_bn")
        self.depthwise_act = Activation(self.activation, name="depthwise_act")
        self._add_se(filters)
        self._add_project(filters, 1, 1)

    def _branch(self, x, training=None):
        x = self.depthwise_act(self.depthwise_bn(self.depthwise_conv(self._expand(x, training)), training=training))
        return self.project_bn(self.project_conv(self._se(x)), training=training)
