"""PyTorch implementation of ``FusedMBConv`` (mirrors ``fused_mbconv_tf.py``; structure in ``fused_mbconv.py``)."""

from __future__ import annotations

import torch
from torch import nn

from deepvision.layers.core_pt import Activation, BatchNorm2d, conv2d
from deepvision.layers.mbconv import MBCONV_ARGUMENTS, se_filters
from deepvision.layers.squeeze_excitation_pt import SqueezeExcitationPT, init_conv_
from deepvision.layers.stochastic_depth_pt import StochasticDepthPT


class FusedMBConvPT(nn.Module):
    """Fused-MBConv on (N, C, H, W) input."""

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
    ) -> None:
        super().__init__()
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
        expand = expand_ratio != 1
        if expand:
            self.expand_conv = init_conv_(conv2d(input_filters, filters, kernel_size, strides, use_bias=False))
            self.expand_bn = BatchNorm2d(filters, bn_momentum, bn_epsilon)
            self.expand_act = Activation(activation)
        else:
            self.expand_conv = self.expand_bn = self.expand_act = None
        squeeze = se_filters(input_filters, se_ratio)
        self.se = SqueezeExcitationPT(filters, squeeze, activation) if squeeze else None
        # Without expansion the project conv is the block's only (kxk, strided) conv.
        self.project_conv = init_conv_(
            conv2d(filters, output_filters, 1 if expand else kernel_size, 1 if expand else strides, use_bias=False)
        )
        self.project_bn = BatchNorm2d(output_filters, bn_momentum, bn_epsilon)
        self.project_act = None if expand else Activation(activation)
        self.residual = strides == 1 and input_filters == output_filters
        self.drop = StochasticDepthPT(dropout) if self.residual else None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expand_conv is not None:
            x = self.expand_act(self.expand_bn(self.expand_conv(x)))
        if self.se is not None:
            x = self.se(x)
        x = self.project_bn(self.project_conv(x))
        if self.project_act is not None:
            x = self.project_act(x)
        if self.residual:
            x = self.drop(x) + inputs
        return x

    def get_config(self) -> dict:
        return {name: getattr(self, name) for name in MBCONV_ARGUMENTS}
