"""Keras implementation of ``FusedMBConv`` (mirrors ``fused_mbconv_pt.py``; structure in ``fused_mbconv.py``).

The arguments, expansion, squeeze-excitation, projection, residual and config are
``mbconv_tf.MBConvBlockTF``'s; this module adds where the fused block puts its kxk conv.
"""

from __future__ import annotations

import keras

from deepvision.layers.core_tf import Activation
from deepvision.layers.mbconv_tf import MBConvBlockTF


@keras.saving.register_keras_serializable(package="deepvision")
class FusedMBConvTF(MBConvBlockTF):
    """Fused-MBConv on (N, H, W, C) input."""

    block = "FusedMBConv"

    def _build_layers(self, filters: int) -> None:
        expand = self.expand_ratio != 1
        self._add_expand(filters, self.kernel_size, self.strides)
        self._add_se(filters)
        # Without expansion the project conv is the block's only (kxk, strided) conv, with an activation.
        self._add_project(filters, 1 if expand else self.kernel_size, 1 if expand else self.strides)
        self.project_act = None if expand else Activation(self.activation, name="project_act")

    def _branch(self, x, training=None):
        x = self.project_bn(self.project_conv(self._se(self._expand(x, training))), training=training)
        return x if self.project_act is None else self.project_act(x)
