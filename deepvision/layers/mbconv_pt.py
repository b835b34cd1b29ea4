"""PyTorch implementation of ``MBConv`` (mirrors ``mbconv_tf.py``; see ``mbconv.py`` for the structure).

:class:`MBConvBlockPT` is what MBConv and FusedMBConv share (arguments, expansion, squeeze-excitation,
projection, residual with drop path, config); each block adds only the layers in which they differ.
"""

from __future__ import annotations

import torch
from torch import nn

from deepvision import checks
from deepvision.layers.core_pt import Activation, BatchNorm2d, conv2d, depthwise_conv2d
from deepvision.layers.mbconv import MBCONV_ARGUMENTS, se_filters
from deepvision.layers.squeeze_excitation_pt import SqueezeExcitationPT, init_conv_
from deepvision.layers.stochastic_depth_pt import StochasticDepthPT


class MBConvBlockPT(nn.Module):
    """An inverted-residual block on (N, C, H, W) input.

    Subclasses set ``block`` (the public name) and implement ``_build_layers(filters)`` (creating
    the sublayers in canonical order with :meth:`_add_expand`, :meth:`_add_se`, :meth:`_add_project`)
    and ``_branch(x)``.
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
        self._build_layers(input_filters * expand_ratio)
        self.residual = strides == 1 and input_filters == output_filters
        self.drop = StochasticDepthPT(dropout) if self.residual else None

    def _bn(self, channels: int) -> BatchNorm2d:
        return BatchNorm2d(channels, self.bn_momentum, self.bn_epsilon)

    def _add_expand(self, filters: int, kernel_size: int, strides: int) -> None:
        # Only an expanding block has the expand conv (keras.applications' naming, kept in both blocks).
        if self.expand_ratio != 1:
            self.expand_conv = init_conv_(conv2d(self.input_filters, filters, kernel_size, strides, use_bias=False))
            self.expand_bn = self._bn(filters)
            self.expand_act = Activation(self.activation, inplace=True)
        else:
            self.expand_conv = self.expand_bn = self.expand_act = None

    def _add_se(self, filters: int) -> None:
        squeeze = se_filters(self.input_filters, self.se_ratio)
        self.se = SqueezeExcitationPT(filters, squeeze, self.activation) if squeeze else None

    def _add_project(self, filters: int, kernel_size: int, strides: int) -> None:
        self.project_conv = init_conv_(conv2d(filters, self.output_filters, kernel_size, strides, use_bias=False))
        self.project_bn = self._bn(self.output_filters)

    def _expand(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.expand_conv is None else self.expand_act(self.expand_bn(self.expand_conv(x)))

    def _se(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.se is None else self.se(x)

    def check_input(self, shape) -> None:
        """Raise ``deepvision.checks.InputShapeError`` unless ``shape`` is ``(N, input_filters, H, W)``."""
        checks.check_image(self.block, shape, checks.CHANNELS_FIRST, channels=self.input_filters)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.check_input(inputs.shape)
        x = self._branch(inputs)
        if self.residual:
            x = self.drop(x) + inputs
        return x

    def get_config(self) -> dict:
        return {name: getattr(self, name) for name in MBCONV_ARGUMENTS}


class MBConvPT(MBConvBlockPT):
    """MBConv on (N, C, H, W) input."""

    block = "MBConv"

    def _build_layers(self, filters: int) -> None:
        self._add_expand(filters, 1, 1)
        self.depthwise_conv = init_conv_(depthwise_conv2d(filters, self.kernel_size, self.strides, use_bias=False))
        self.depthwise_bn = self._bn(filters)
        self.depthwise_act = Activation(self.activation, inplace=True)
        self._add_se(filters)
        self._add_project(filters, 1, 1)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        x = self.depthwise_act(self.depthwise_bn(self.depthwise_conv(self._expand(x))))
        return self.project_bn(self.project_conv(self._se(x)))
