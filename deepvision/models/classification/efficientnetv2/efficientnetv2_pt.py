"""PyTorch implementation of EfficientNetV2 (mirrors ``efficientnetv2_tf.py``).

The same network as ``keras.applications.EfficientNetV2*`` on (N, C, H, W) input, with TensorFlow's
"same" padding (asymmetric at stride 2) reproduced for any input size, Keras BatchNorm conventions,
and Keras's initialisers.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from deepvision.layers.core_pt import Activation, BatchNorm2d, conv2d
from deepvision.layers.fused_mbconv_pt import FusedMBConvPT
from deepvision.layers.mbconv_pt import MBConvPT
from deepvision.layers.squeeze_excitation_pt import init_conv_
from deepvision.models.base_pt import DeepVisionModulePT
from deepvision.models.classification.efficientnetv2 import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    block_plan,
    check_arguments,
    feature_levels,
    features_layout,
    stem_filters,
    top_filters,
)
from deepvision.models.features import check_feature_arguments, select_levels


class Rescaling(nn.Module):
    """``x * scale + offset`` (``keras.layers.Rescaling``)."""

    def __init__(self, scale: float, offset: float = 0.0) -> None:
        super().__init__()
        self.scale = scale
        self.offset = offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Keras adds the offset even when it is 0; x + 0.0 is exact, so skipping it changes nothing.
        x = x * self.scale
        return x + self.offset if self.offset else x

    def extra_repr(self) -> str:
        return f"scale={self.scale}, offset={self.offset}"


class Normalization(nn.Module):
    """``(x - mean) / max(sqrt(variance), 1e-7)`` per channel of (N, C, H, W) (``keras.layers.Normalization``)."""

    def __init__(self, mean: Sequence[float], variance: Sequence[float]) -> None:
        super().__init__()
        # Constants, not state: non-persistent buffers follow .to(device) but stay out of checkpoints.
        mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        std_t = torch.sqrt(torch.tensor(variance, dtype=torch.float32)).clamp_min(1e-7).view(1, -1, 1, 1)
        self.register_buffer("mean", mean_t, persistent=False)
        self.register_buffer("std", std_t, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class EfficientNetV2PT(DeepVisionModulePT):
    """EfficientNetV2 for (N, C, H, W) input; arguments as ``EfficientNetV2TF`` (``input_shape`` is (C, H, W)).

    Output: logits (N, classes) with ``include_top``; else (N, C) pooled features or the (N, C, h, w)
    feature map; a list of (N, C_i, h_i, w_i) with ``features_only`` (see ``feature_info``).
    """

    def __init__(
        self,
        width_coefficient: float,
        depth_coefficient: float,
        blocks_args: Sequence[dict[str, Any]],
        include_top: bool = True,
        classes: int = 1000,
        input_shape: Sequence[int | None] | None = None,
        pooling: str | None = None,
        drop_path_rate: float = 0.0,
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
        dropout_rate: float = 0.2,
        include_preprocessing: bool = True,
        preprocessing_mode: str = "imagenet",
        depth_divisor: int = 8,
        min_depth: int | None = 8,
        min_filter_ratio: float | None = 0.9,
        bn_momentum: float = 0.9,
        bn_epsilon: float = 1e-3,
        activation: str = "swish",
    ) -> None:
        arguments = dict(locals())
        arguments["blocks_args"] = copy.deepcopy(list(blocks_args))
        super().__init__()
        check_arguments(pooling, preprocessing_mode)
        check_feature_arguments(features_only, out_indices)
        self._store_config(arguments)
        channels = input_shape[0] if input_shape is not None else 3

        self.rescaling = self.normalization = None
        if include_preprocessing:
            if preprocessing_mode == "imagenet" and channels == 3:
                self.rescaling = Rescaling(1.0 / 255)
                self.normalization = Normalization(IMAGENET_MEAN, [s**2 for s in IMAGENET_STD])
            else:
                self.rescaling = Rescaling(1.0 / 128.0, offset=-1.0)

        stem = stem_filters(width_coefficient, blocks_args, depth_divisor, min_depth, min_filter_ratio)
        self.stem_conv = init_conv_(conv2d(channels, stem, 3, 2, use_bias=False))
        self.stem_bn = BatchNorm2d(stem, bn_momentum, bn_epsilon)
        self.stem_act = Activation(activation)

        plan = block_plan(width_coefficient, depth_coefficient, blocks_args, depth_divisor, min_depth, drop_path_rate,
                          min_filter_ratio)
        levels, positions, selected, pruned = feature_levels(plan), None, [], []
        built = len(plan)
        if features_only:
            selected, positions = select_levels(levels, out_indices, range(len(levels)))
            built, pruned = features_layout(plan, selected)
        self.blocks = nn.ModuleList(
            (FusedMBConvPT if spec["fused"] else MBConvPT)(
                spec["input_filters"], spec["output_filters"], spec["expand_ratio"], spec["kernel_size"],
                spec["strides"], spec["se_ratio"], bn_momentum, activation, spec["dropout"], bn_epsilon,
            )
            for spec in plan[:built]
        )
        self.features_only = features_only
        self._taps = [level.tap for level in selected]  # blocks run before each level is read

        self.top_conv = self.top_bn = self.top_act = self.pool = self.dropout = self.head = None
        if not features_only:
            features = top_filters(width_coefficient, depth_divisor, min_depth, min_filter_ratio)
            self.top_conv = init_conv_(conv2d(plan[-1]["output_filters"], features, 1, use_bias=False))
            self.top_bn = BatchNorm2d(features, bn_momentum, bn_epsilon)
            self.top_act = Activation(activation)
            if include_top:
                self.pool = GlobalPool("avg")
                if dropout_rate > 0:
                    self.dropout = nn.Dropout(dropout_rate)
                self.head = nn.Linear(features, classes)
                # Keras: VarianceScaling(1/3, "fan_out", "uniform") kernel, zero bias.
                limit = math.sqrt(3.0 * (1.0 / 3.0) / classes)
                with torch.no_grad():
                    nn.init.uniform_(self.head.weight, -limit, limit)
                    self.head.bias.zero_()
            elif pooling is not None:
                self.pool = GlobalPool(pooling)
        self._dv_init_features(levels, positions, pruned)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map before pooling, (N, C, h, w) (the last built block's output with ``features_only``)."""
        x = self._body(x, [])
        return x if self.top_conv is None else self.top_act(self.top_bn(self.top_conv(x)))

    def _body(self, x: torch.Tensor, taps: list[int], points: dict[int, torch.Tensor] | None = None) -> torch.Tensor:
        # Preprocessing, stem and the blocks; the outputs after ``tap`` blocks go into ``points``.
        if self.rescaling is not None:
            x = self.rescaling(x)
        if self.normalization is not None:
            x = self.normalization(x)
        x = self.stem_act(self.stem_bn(self.stem_conv(x)))
        for i, block in enumerate(self.blocks):
            x = self._dv_run_block(block, x)
            if points is not None and i + 1 in taps:
                points[i + 1] = x
        return x

    def forward_intermediates(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The ``features_only`` levels, (N, C_i, h_i, w_i) each (see ``feature_info``)."""
        points: dict[int, torch.Tensor] = {}
        self._body(x, self._taps, points)
        return [points[tap] for tap in self._taps]

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if self.features_only:
            return self.forward_intermediates(x)
        x = self.forward_features(x)
        if self.pool is not None:
            x = self.pool(x)
        if self.dropout is not None:
            x = self.dropout(x)
        if self.head is not None:
            x = self.head(x)
        return x


class GlobalPool(nn.Module):
    """Global average or max pooling of (N, C, H, W) to (N, C) (``keras.layers.GlobalAveragePooling2D``)."""

    def __init__(self, mode: str = "avg") -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3)) if self.mode == "avg" else x.amax((2, 3))

    def extra_repr(self) -> str:
        return self.mode
