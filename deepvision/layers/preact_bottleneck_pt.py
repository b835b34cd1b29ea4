"""PyTorch implementation of ``PreActBottleneck`` (mirrors ``preact_bottleneck_tf.py``), channels-first."""

from __future__ import annotations

import torch
from torch import nn

from deepvision.layers.core_pt import Activation, BatchNorm2d, conv2d
from deepvision.layers.preact_bottleneck import check_arguments
from deepvision.layers.stochastic_depth_pt import StochasticDepthPT


def shortcut_pt(input_filters: int, output_filters: int, strides: int, conv_shortcut: bool) -> nn.Module | None:
    """The shortcut module: 1x1 conv with bias (applied to the pre-activation), max-pool or ``None``."""
    if conv_shortcut:
        return conv2d(input_filters, output_filters, 1, strides, padding="valid", use_bias=True)
    if strides > 1:
        # keras.applications subsamples the raw input with a 1x1 max-pool.
        return nn.MaxPool2d(1, stride=strides)
    return None


class PreActBottleneckPT(nn.Module):
    """ResNetV2 bottleneck block: ``(B, input_filters, H, W) -> (B, 4 * filters, H', W')``.

    See ``deepvision.layers.PreActBottleneck`` for the arguments and the computation.
    """

    expansion = 4

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
    ) -> None:
        super().__init__()
        out = self.expansion * filters
        check_arguments("PreActBottleneck", input_filters, out, kernel_size, strides, conv_shortcut)
        self.input_filters = input_filters
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.conv_shortcut = conv_shortcut
        self.bn_momentum = bn_momentum
        self.bn_epsilon = bn_epsilon
        self.drop_path_rate = drop_path_rate

        self.preact_norm = BatchNorm2d(input_filters, bn_momentum, bn_epsilon)
        self.preact_act = Activation("relu")
        self.shortcut = shortcut_pt(input_filters, out, strides, conv_shortcut)
        self.conv1 = conv2d(input_filters, filters, 1, 1, padding="valid", use_bias=False)
        self.norm1 = BatchNorm2d(filters, bn_momentum, bn_epsilon)
        self.act1 = Activation("relu")
        self.pad2 = nn.ZeroPad2d(kernel_size // 2)
        self.conv2 = conv2d(filters, filters, kernel_size, strides, padding="valid", use_bias=False)
        self.norm2 = BatchNorm2d(filters, bn_momentum, bn_epsilon)
        self.act2 = Activation("relu")
        self.conv3 = conv2d(filters, out, 1, 1, padding="valid", use_bias=True)
        self.drop_path = StochasticDepthPT(drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preact = self.preact_act(self.preact_norm(x))
        if self.conv_shortcut:
            shortcut = self.shortcut(preact)
        elif self.shortcut is not None:
            shortcut = self.shortcut(x)
        else:
            shortcut = x
        y = self.act1(self.norm1(self.conv1(preact)))
        y = self.act2(self.norm2(self.conv2(self.pad2(y))))
        y = self.conv3(y)
        return shortcut + self.drop_path(y)

    def get_config(self) -> dict:
        return {
            "input_filters": self.input_filters,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "conv_shortcut": self.conv_shortcut,
            "bn_momentum": self.bn_momentum,
            "bn_epsilon": self.bn_epsilon,
            "drop_path_rate": self.drop_path_rate,
        }
