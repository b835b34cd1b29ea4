"""Keras implementation of ``PreActBottleneck`` (mirrors ``preact_bottleneck_pt.py``), channels-last.

:class:`PreActBlockTF` is what the two ResNetV2 blocks share (arguments, pre-activation, shortcut,
drop path, build, config); ``PreActBottleneckTF`` and ``PreActBasicBlockTF`` add only their branch.
"""

from __future__ import annotations

import keras

from deepvision import checks
from deepvision.layers.core_tf import Activation, CheckedLayer, batch_norm, conv2d
from deepvision.layers.preact_bottleneck import PREACT_ARGUMENTS, check_arguments
from deepvision.layers.stochastic_depth_tf import StochasticDepthTF


def shortcut_tf(input_filters: int, output_filters: int, strides: int, conv_shortcut: bool):
    """The shortcut layer: 1x1 conv with bias (applied to the pre-activation), max-pool or ``None``."""
    if conv_shortcut:
        return conv2d(input_filters, output_filters, 1, strides, padding="valid", use_bias=True)
    if strides > 1:
        # keras.applications subsamples the raw input with a 1x1 max-pool.
        return keras.layers.MaxPooling2D(1, strides=strides)
    return None


class PreActBlockTF(CheckedLayer):
    """A pre-activation residual block ``(B, H, W, input_filters) -> (B, H', W', expansion * filters)``.

    Subclasses set ``block`` (the public name) and ``expansion`` and implement ``_build_branch``,
    ``_build_branch_weights`` and ``_branch``: the layers between the pre-activation and the sum.
    """

    block = "PreActBlock"
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
        out = self.expansion * filters
        check_arguments(self.block, input_filters, out, kernel_size, strides, conv_shortcut)
        self.input_filters = input_filters
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.conv_shortcut = conv_shortcut
        self.bn_momentum = bn_momentum
        self.bn_epsilon = bn_epsilon
        self.drop_path_rate = drop_path_rate

        # Attribute order = canonical order: pre-activation, shortcut, branch, drop path.
        self.preact_norm = batch_norm(bn_momentum, bn_epsilon)
        self.preact_act = Activation("relu")
        self.shortcut = shortcut_tf(input_filters, out, strides, conv_shortcut)
        self._build_branch()
        self.drop_path = StochasticDepthTF(drop_path_rate)

    def check_input(self, shape) -> None:
        """Raise ``deepvision.checks.InputShapeError`` unless ``shape`` is ``(B, H, W, input_filters)``."""
        checks.check_image(self.block, shape, checks.CHANNELS_LAST, channels=self.input_filters)

    def build(self, input_shape) -> None:
        # Build every sublayer from the input shape, so weights exist before the first call.
        self.preact_norm.build(input_shape)
        if self.conv_shortcut:
            self.shortcut.build(input_shape)
        self._build_branch_weights(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        preact = self.preact_act(self.preact_norm(inputs, training=training))
        if self.conv_shortcut:
            shortcut = self.shortcut(preact)
        elif self.shortcut is not None:
            shortcut = self.shortcut(inputs)
        else:
            shortcut = inputs
        return shortcut + self.drop_path(self._branch(preact, training), training=training)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        size = [None if s is None else (s - 1) // self.strides + 1 for s in (height, width)]
        return (batch, *size, self.expansion * self.filters)

    def get_config(self) -> dict:
        return {**super().get_config(), **{name: getattr(self, name) for name in PREACT_ARGUMENTS}}


@keras.saving.register_keras_serializable(package="deepvision")
class PreActBottleneckTF(PreActBlockTF):
    """ResNetV2 bottleneck block: ``(B, H, W, input_filters) -> (B, H', W', 4 * filters)``.

    See ``deepvision.layers.PreActBottleneck`` for the arguments and the computation.
    """

    block = "PreActBottleneck"
    expansion = 4

    def _build_branch(self) -> None:
        filters, m, eps = self.filters, self.bn_momentum, self.bn_epsilon
        self.conv1 = conv2d(self.input_filters, filters, 1, 1, padding="valid", use_bias=False)
        self.norm1 = batch_norm(m, eps)
        self.act1 = Activation("relu")
        self.pad2 = keras.layers.ZeroPadding2D(self.kernel_size // 2)
        self.conv2 = conv2d(filters, filters, self.kernel_size, self.strides, padding="valid", use_bias=False)
        self.norm2 = batch_norm(m, eps)
        self.act2 = Activation("relu")
        self.conv3 = conv2d(filters, self.expansion * filters, 1, 1, padding="valid", use_bias=True)

    def _build_branch_weights(self, input_shape) -> None:
        batch, height, width, _ = input_shape
        self.conv1.build(input_shape)
        inner = (batch, height, width, self.filters)
        self.norm1.build(inner)
        self.conv2.build(self.pad2.compute_output_shape(inner))
        strided = self.conv2.compute_output_shape(self.pad2.compute_output_shape(inner))
        self.norm2.build(strided)
        self.conv3.build(strided)

    def _branch(self, preact, training=None):
        x = self.act1(self.norm1(self.conv1(preact), training=training))
        x = self.act2(self.norm2(self.conv2(self.pad2(x)), training=training))
        return self.conv3(x)
