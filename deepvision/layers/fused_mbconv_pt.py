"""PyTorch implementation of ``FusedMBConv`` (mirrors ``fused_mbconv_tf.py``; structure in ``fused_mbconv.py``).

The arguments, expansion, squeeze-excitation, projection, residual and config are
``mbconv_pt.MBConvBlockPT``'s; this module adds where the fused block puts its kxk conv.
"""

from __future__ import annotations

import torch

from deepvision.layers.core_pt import Activation
from deepvision.layers.mbconv_pt import MBConvBlockPT


class FusedMBConvPT(MBConvBlockPT):
    """Fused-MBConv on (N, C, H, W) input."""

    block = "FusedMBConv"

    def _build_layers(self, filters: int) -> None:
        expand = self.expand_ratio != 1
        self._add_expand(filters, self.kernel_size, self.strides)
        self._add_se(filters)
        # Without expansion the project conv is the block's only (kxk, strided) conv, with an activation.
        self._add_project(filters, 1 if expand else self.kernel_size, 1 if expand else self.strides)
        self.project_act = None if expand else Activation(self.activation, inplace=True)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project_bn(self.project_conv(self._se(self._expand(x))))
        return x if self.project_act is None else self.project_act(x)
