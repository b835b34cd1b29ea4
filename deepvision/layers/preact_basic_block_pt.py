"""PyTorch implementation of ``PreActBasicBlock`` (mirrors ``preact_basic_block_tf.py``), channels-first.

The arguments, pre-activation, shortcut and drop path are ``preact_bottleneck_pt.PreActBlockPT``'s;
this module adds the two-conv branch.
"""

from __future__ import annotations

import torch
from torch import nn

from deepvision.layers.core_pt import Activation, BatchNorm2d, conv2d
from deepvision.layers.preact_bottleneck_pt import PreActBlockPT


class PreActBasicBlockPT(PreActBlockPT):
    """ResNetV2 basic block: ``(B, input_filters, H, W) -> (B, filters, H', W')``.

    See ``deepvision.layers.PreActBasicBlock`` for the arguments and the computation.
    """

    block = "PreActBasicBlock"
    expansion = 1

    def _build_branch(self) -> None:
        filters, k = self.filters, self.kernel_size
        self.pad1 = nn.ZeroPad2d(k // 2)
        self.conv1 = conv2d(self.input_filters, filters, k, 1, padding="valid", use_bias=False)
        self.norm1 = BatchNorm2d(filters, self.bn_momentum, self.bn_epsilon)
        self.act1 = Activation("relu")
        self.pad2 = nn.ZeroPad2d(k // 2)
        self.conv2 = conv2d(filters, filters, k, self.strides, padding="valid", use_bias=False)

    def _branch(self, preact: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.norm1(self.conv1(self.pad1(preact))))
        return self.conv2(self.pad2(y))
