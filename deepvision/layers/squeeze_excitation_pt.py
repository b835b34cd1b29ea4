"""PyTorch implementation of ``SqueezeExcitation`` (mirrors ``squeeze_excitation_tf.py``)."""

from __future__ import annotations

import math

import torch
from torch import nn

from deepvision import checks
from deepvision.layers.core_pt import Activation, conv2d


def init_conv_(conv: nn.Conv2d, scale: float = 2.0) -> nn.Conv2d:
    """Initialise like Keras's ``VarianceScaling(scale, "fan_out", "truncated_normal")``, bias zero.

    Keras computes the fans from its own kernel layout: (kh, kw, in/groups, out) for a conv and
    (kh, kw, in, multiplier) for a depthwise conv, so fan_out = kh * kw * (out or multiplier).
    """
    kh, kw = conv.kernel_size
    depthwise = conv.groups > 1 and conv.groups == conv.in_channels
    outputs = conv.out_channels // conv.in_channels if depthwise else conv.out_channels
    # 0.8796... is the std of a unit normal truncated to [-2, 2], which Keras divides by.
    std = math.sqrt(scale / max(1, kh * kw * outputs)) / 0.87962566103423978
    with torch.no_grad():
        # Inverse-CDF sampling of N(0, std) truncated to +-2 std: one pass, unlike torch's
        # rejection-sampling trunc_normal_ (5 s for EfficientNetV2S here).
        edge = math.erf(2.0 / math.sqrt(2.0))
        conv.weight.uniform_(-edge, edge).erfinv_().mul_(std * math.sqrt(2.0)).clamp_(-2.0 * std, 2.0 * std)
        if conv.bias is not None:
            conv.bias.zero_()
    return conv


class SqueezeExcitationPT(nn.Module):
    """Squeeze-and-excitation on (N, C, H, W) input; returns (N, C, H, W)."""

    def __init__(
        self, filters: int, bottleneck_filters: int, activation: str = "swish", gate_activation: str = "sigmoid"
    ) -> None:
        super().__init__()
        self.filters = filters
        self.bottleneck_filters = bottleneck_filters
        self.activation = activation
        self.gate_activation = gate_activation
        self.conv_reduce = init_conv_(conv2d(filters, bottleneck_filters, 1))
        self.act = Activation(activation, inplace=True)
        self.conv_expand = init_conv_(conv2d(bottleneck_filters, filters, 1))
        self.gate = Activation(gate_activation, inplace=True)

    def check_input(self, shape) -> None:
        """Raise ``deepvision.checks.InputShapeError`` unless ``shape`` is ``(N, filters, H, W)``."""
        checks.check_image("SqueezeExcitation", shape, checks.CHANNELS_FIRST, channels=self.filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x.shape)
        scale = x.mean((2, 3), keepdim=True)  # (N, C, 1, 1)
        scale = self.gate(self.conv_expand(self.act(self.conv_reduce(scale))))
        return x * scale

    def get_config(self) -> dict:
        return {
            "filters": self.filters,
            "bottleneck_filters": self.bottleneck_filters,
            "activation": self.activation,
            "gate_activation": self.gate_activation,
        }
