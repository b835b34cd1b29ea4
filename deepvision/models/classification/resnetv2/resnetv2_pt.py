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
from deepvision.models.classification.resnetv2.plan import (
    BLOCK_TYPES,
    BN_EPSILON,
    BN_MOMENTUM,
    STEM_FILTERS,
    block_plan,
    check_pooling,
    feature_levels,
    features_layout,
)
from deepvision.models.features import check_feature_arguments, select_levels

_BLOCKS = {"bottleneck": PreActBottleneckPT, "basic": PreActBasicBlockPT}


class ResNetV2PT(DeepVisionModulePT):
    """Pre-activation ResNet (ResNetV2), generic over stage depths and block type.

    Same arguments as ``ResNetV2TF`` (see there), except that ``input_shape`` is channels-first
    ``(C, H, W)`` (``None``: ``(3, 224, 224)``; only ``C`` is used, any spatial size runs).

    Input ``(B, C, H, W)`` float; output logits ``(B, classes)``, features ``(B, F, H/32, W/32)``,
    pooled ``(B, F)``, or a list of ``(B, F_i, H_i, W_i)`` with ``features_only=True``.
    """

    def __init__(
        self,
        include_top: bool = True,
        classes: int = 1000,
        input_shape: Sequence[int | None] | None = None,
        pooling: str | None = None,
        drop_path_rate: float = 0.0,
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
        stackwise_blocks: Sequence[int] = (3, 4, 6, 3),
        stackwise_filters: Sequence[int] = (64, 128, 256, 512),
        stackwise_strides: Sequence[int] = (2, 2, 2, 1),
        block_type: str = "bottleneck",
        bn_momentum: float = BN_MOMENTUM,
        bn_epsilon: float = BN_EPSILON,
    ) -> None:
        arguments = dict(locals())
        super().__init__()
        check_pooling(pooling)
        check_feature_arguments(features_only, out_indices)
        plan = block_plan(stackwise_blocks, stackwise_filters, stackwise_strides, block_type, drop_path_rate)
        levels, positions, selected = feature_levels(plan, block_type), None, []
        built_blocks, post, pruned = len(plan), True, []
        if features_only:
            selected, positions = select_levels(levels, out_indices, range(len(levels)))
            built_blocks, post, pruned = features_layout(plan, selected)
        in_channels = int(input_shape[0]) if input_shape is not None else 3
        channels = int(stackwise_filters[-1]) * BLOCK_TYPES[block_type]
        self.features_only = features_only
        self._taps = [level.tap for level in selected]  # see plan.feature_levels

        self.stem_pad = nn.ZeroPad2d(3)
        self.stem_conv = conv2d(in_channels, STEM_FILTERS, 7, 2, padding="valid", use_bias=True)
        self.stem_pool_pad = nn.ZeroPad2d(1)
        self.stem_pool = nn.MaxPool2d(3, stride=2)
        self.blocks = nn.ModuleList([
            _BLOCKS[block_type](
                spec.input_filters, spec.filters, strides=spec.strides, conv_shortcut=spec.conv_shortcut,
                bn_momentum=bn_momentum, bn_epsilon=bn_epsilon, drop_path_rate=spec.drop_path_rate,
            )
            for spec in plan[:built_blocks]
        ])
        self.post_norm = BatchNorm2d(channels, bn_momentum, bn_epsilon) if post else None
        self.post_act = Activation("relu") if post else None
        self.pool = None
        self.head = None
        if features_only:
            pass
        elif include_top or pooling == "avg":
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        elif pooling == "max":
            self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(1))
        if include_top and not features_only:
            self.head = nn.Linear(channels, classes)
        self.num_features = channels
        self._store_config(arguments)
        self._dv_init_features(levels, positions, pruned)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem_pool(self.stem_pool_pad(self.stem_conv(self.stem_pad(x))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map before pooling: ``(B, C, H, W) -> (B, F, H/32, W/32)`` (post-norm, relu)."""
        x = self._stem(x)
        for block in self.blocks:
            x = self._dv_run_block(block, x)
        return self.post_act(self.post_norm(x))

    def forward_intermediates(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The ``features_only`` levels, (B, F_i, H_i, W_i) each (see ``feature_info``)."""
        taps, points = set(self._taps), {}
        x = self.stem_conv(self.stem_pad(x))
        points[0] = x
        x = self.stem_pool(self.stem_pool_pad(x))
        points[1] = x
        for i, block in enumerate(self.blocks):
            x = self._dv_run_block(block, x)
            if 2 + i in taps:
                points[2 + i] = x
        if self.post_norm is not None:
            points[2 + len(self.blocks)] = self.post_act(self.post_norm(x))
        return [points[tap] for tap in self._taps]

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if self.features_only:
            return self.forward_intermediates(x)
        x = self.forward_features(x)
        if self.pool is not None:
            x = self.pool(x)
        if self.head is not None:
            x = self.head(x)
        return x
