"""PyTorch implementation of ``PreActBottleneck`` (mirrors ``preact_bottleneck_tf.py``), channels-first.

:class:`PreActBlockPT` is what the two ResNetV2 blocks share (arguments, pre-activation, shortcut,
drop path, config); ``PreActBottleneckPT`` and ``PreActBasicBlockPT`` add only their residual branch.
"""

from __future__ import annotations

import torch
from torch import nn

from deepvision import checks
from deepvision.layers.core_pt import Activation, BatchNorm2d, conv2d
from deepvision.layers.preact_bottleneck import PREACT_ARGUMENTS, check_arguments
from deepvision.layers.stochastic_depth_pt import StochasticDepthPT


def shortcut_pt(input_filters: int, output_filters: int, strides: int, conv_shortcut: bool) -> nn.Module | None:
    """The shortcut module: 1x1 conv with bias (applied to the pre-activation), max-pool or ``None``."""
    if conv_shortcut:
        return conv2d(input_filters, output_filters, 1, strides, padding="valid", use_bias=True)
    if strides > 1:
        # keras.applications subsamples the raw input with a 1x1 max-pool.
        return nn.MaxPool2d(1, stride=strides)
    return None


class PreActBlockPT(nn.Module):
    """A pre-activation residual block ``(B, input_filters, H, W) -> (B, expansion * filters, H', W')``.

    Subclasses set ``block`` (the public name) and ``expansion`` and implement ``_build_branch`` /
    ``_branch``: the layers between the pre-activation and the residual sum.
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
    ) -> None:
        super().__init__()
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
        self.preact_norm = BatchNorm2d(input_filters, bn_momentum, bn_epsilon)
        self.preact_act = Activation("relu")
        self.shortcut = shortcut_pt(input_filters, out, strides, conv_shortcut)
        self._build_branch()
        self.drop_path = StochasticDepthPT(drop_path_rate)

    def check_input(self, shape) -> None:
        """Raise ``deepvision.checks.InputShapeError`` unless ``shape`` is ``(B, input_filters, H, W)``."""
        checks.check_image(self.block, shape, checks.CHANNELS_FIRST, channels=self.input_filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x.shape)
        preact = self.preact_act(self.preact_norm(x))
        if self.conv_shortcut:
            shortcut = self.shortcut(preact)
        elif self.shortcut is not None:
            shortcut = self.shortcut(x)
        else:
            shortcut = x
        return shortcut + self.drop_path(self._branch(preact))

    def get_config(self) -> dict:
        return {name: getattr(self, name) for name in PREACT_ARGUMENTS}


class PreActBottleneckPT(PreActBlockPT):
    """ResNetV2 bottleneck block: ``(B, input_filters, H, W) -> (B, 4 * filters, H', W')``.

    See ``deepvision.layers.PreActBottleneck`` for the arguments and the computation.
    """

    block = "PreActBottleneck"
    expansion = 4

    def _build_branch(self) -> None:
        filters, m, eps = self.filters, self.bn_momentum, self.bn_epsilon
        self.conv1 = conv2d(self.input_filters, filters, 1, 1, padding="valid", use_bias=False)
        self.norm1 = BatchNorm2d(filters, m, eps)
        self.act1 = Activation("relu")
        self.pad2 = nn.ZeroPad2d(self.kernel_size // 2)
        self.conv2 = conv2d(filters, filters, self.kernel_size, self.strides, padding="valid", use_bias=False)
        self.norm2 = BatchNorm2d(filters, m, eps)
        self.act2 = Activation("relu")
        self.conv3 = conv2d(filters, self.expansion * filters, 1, 1, padding="valid", use_bias=True)

    def _branch(self, preact: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.norm1(self.conv1(preact)))
        y = self.act2(self.norm2(self.conv2(self.pad2(y))))
        return self.conv3(y)
