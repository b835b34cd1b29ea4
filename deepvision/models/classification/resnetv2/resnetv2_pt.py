"""PyTorch ResNetV2 (mirrors ``resnetv2_tf.py``): keras.applications' ResNetV2, layer for layer.

Structure (channels-first)::

    stem_pad (zero 3) -> stem_conv (7x7/2, bias) -> stem_pool_pad (zero 1) -> stem_pool (max 3x3/2)
    -> blocks (PreActBottleneck or PreActBasicBlock; stride on the last block of a stage)
    -> post_norm (BN, eps 1.001e-5) -> post_act (relu) -> pool (global avg) -> head (Linear)

``nn.MaxPool2d(padding=1)`` would pad with -inf; keras.applications zero-pads the (possibly negative)
stem output before pooling, so this model does the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepvision.layers.core_pt import Activation, BatchNorm2d, conv2d
from deepvision.layers.preact_basic_block_pt import PreActBasicBlockPT
from deepvision.layers.preact_bottleneck_pt import PreActBottleneckPT
from deepvision.models.base_pt import DeepVisionModulePT
from deepvision.models.classification.resnetv2.plan import BLOCK_TYPES, STEM_FILTERS, block_plan, feature_taps

BN_EPSILON = 1.001e-5
BN_MOMENTUM = 0.99
_BLOCKS = {"bottleneck": PreActBottleneckPT, "basic": PreActBasicBlockPT}


class ResNetV2PT(DeepVisionModulePT):
    """Pre-activation ResNet (ResNetV2), generic over stage depths and block type.

    Same arguments as ``ResNetV2TF`` (see there), except that ``input_shape`` is channels-first
    ``(C, H, W)`` (``None``: ``(3, 224, 224)``; only ``C`` is used, any spatial size runs).

    Input ``(B, C, H, W)`` float; output logits ``(B, classes)``, features ``(B, F, H/32, W/32)``,
    pooled ``(B, F)``, or a list of ``(B, F_i, H_i, W_i)`` with ``as_backbone=True``.
    """

    def __init__(
        self,
        include_top: bool = True,
        classes: int = 1000,
        input_shape: Sequence[int | None] | None = None,
        pooling: str | None = None,
        drop_path_rate: float = 0.0,
        as_backbone: bool = False,
        stackwise_blocks: Sequence[int] = (3, 4, 6, 3),
        stackwise_filters: Sequence[int] = (64, 128, 256, 512),
        stackwise_strides: Sequence[int] = (2, 2, 2, 1),
        block_type: str = "bottleneck",
    ) -> None:
        arguments = dict(locals())
        super().__init__()
        if pooling not in (None, "avg", "max"):
            raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
        plan = block_plan(stackwise_blocks, stackwise_filters, stackwise_strides, block_type, drop_path_rate)
        in_channels = int(input_shape[0]) if input_shape is not None else 3
        channels = int(stackwise_filters[-1]) * BLOCK_TYPES[block_type]
        self.as_backbone = as_backbone
        self._taps = feature_taps(plan)[:-1]  # the last stage's map is the normalised output

        self.stem_pad = nn.ZeroPad2d(3)
        self.stem_conv = conv2d(in_channels, STEM_FILTERS, 7, 2, padding="valid", use_bias=True)
        self.stem_pool_pad = nn.ZeroPad2d(1)
        self.stem_pool = nn.MaxPool2d(3, stride=2)
        self.blocks = nn.ModuleList([
            _BLOCKS[block_type](
                spec.input_filters, spec.filters, strides=spec.strides, conv_shortcut=spec.conv_shortcut,
                bn_momentum=BN_MOMENTUM, bn_epsilon=BN_EPSILON, drop_path_rate=spec.drop_path_rate,
            )
            for spec in plan
        ])
        self.post_norm = BatchNorm2d(channels, BN_MOMENTUM, BN_EPSILON)
        self.post_act = Activation("relu")
        self.pool = None
        self.head = None
        if as_backbone:
            pass
        elif include_top or pooling == "avg":
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        elif pooling == "max":
            self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(1))
        if include_top and not as_backbone:
            self.head = nn.Linear(channels, classes)
        self.num_features = channels
        self._store_config(arguments)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem_pool(self.stem_pool_pad(self.stem_conv(self.stem_pad(x))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map before pooling: ``(B, C, H, W) -> (B, F, H/32, W/32)`` (post-norm, relu)."""
        x = self._stem(x)
        for block in self.blocks:
            x = block(x)
        return self.post_act(self.post_norm(x))

    def forward_backbone(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-stage feature maps (strides 4, 8, 16, 32 for the standard configs; the last normalised)."""
        x, features = self._stem(x), []
        for i, block in enumerate(self.blocks):
            features.extend(x for tap in self._taps if tap == i)
            x = block(x)
        features.append(self.post_act(self.post_norm(x)))
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if self.as_backbone:
            return self.forward_backbone(x)
        x = self.forward_features(x)
        if self.pool is not None:
            x = self.pool(x)
        if self.head is not None:
            x = self.head(x)
        return x
