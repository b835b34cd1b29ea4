"""Keras implementation of ``PreActBasicBlock`` (mirrors ``preact_basic_block_pt.py``), channels-last.

The arguments, pre-activation, shortcut, drop path and config are
``preact_bottleneck_tf.PreActBlockTF``'s; this module adds the two-conv branch.
"""

from __future__ import annotations

import keras

from deepvision.layers.core_tf import Activation, batch_norm, conv2d
from deepvision.layers.preact_bottleneck_tf import PreActBlockTF


@keras.saving.register_keras_serializable(package="deepvision")
class PreActBasicBlockTF(PreActBlockTF):
    """ResNetV2 basic block: ``(B, H, W, input_filters) -> (B, H', W', filters)``.

    See ``deepvision.layers.PreActBasicBlock`` for the arguments and the computation.
    """

    block = "PreActBasicBlock"
    expansion = 1

    def _build_branch(self) -> None:
        filters, k = self.filters, self.kernel_size
        self.pad1 = keras.layers.ZeroPadding2D(k // 2)
        self.conv1 = conv2d(self.input_filters, filters, k, 1, padding="valid", use_bias=False)
        self.norm1 = batch_norm(self.bn_momentum, self.bn_epsilon)
        self.act1 = Activation("relu")
        self.pad2 = keras.layers.ZeroPadding2D(k // 2)
        self.conv2 = conv2d(filters, filters, k, self.strides, padding="valid", use_bias=False)

    def _build_branch_weights(self, input_shape) -> None:
        batch, height, width, _ = input_shape
        self.conv1.build(self.pad1.compute_output_shape(input_shape))
        inner = (batch, height, width, self.filters)
        self.norm1.build(inner)
        self.conv2.build(self.pad2.compute_output_shape(inner))

    def _branch(self, preact, training=None):
        x = self.act1(self.norm1(self.conv1(self.pad1(preact)), training=training))
        return self.conv2(self.pad2(x))
