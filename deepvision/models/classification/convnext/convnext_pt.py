"""PyTorch implementation of ConvNeXt (mirrors ``convnext_tf.py``; structure in the family ``__init__``).

The same network as timm's ``convnext_*`` (and keras.applications' ``ConvNeXt*``) on (N, C, H, W)
input; the stem and downsampling LayerNorms normalise over channels, as timm's ``LayerNorm2d``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deepvision.layers.convnext_block_pt import ConvNeXtBlockPT
from deepvision.layers.core_pt import conv2d
from deepvision.models.base_pt import DeepVisionModulePT
from deepvision.models.classification.convnext import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    check_config,
    drop_path_rates,
    feature_levels,
    pruned_modules,
    stage_of_blocks,
)
from deepvision.models.classification.efficientnetv2.efficientnetv2_pt import GlobalPool, Normalization
from deepvision.models.features import check_feature_arguments, select_levels


class ChannelLayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` over the channels of (N, C, H, W) maps (timm's ``LayerNorm2d``), or of (N, C) vectors."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class ConvNeXtPT(DeepVisionModulePT):
    """ConvNeXt for (N, C, H, W) input; arguments as ``ConvNeXtTF`` (``input_shape`` is (C, H, W)).

    Output: logits (N, classes) with ``include_top``; pooled (N, C) or (N, C, h, w) features otherwise;
    a list of the selected stage outputs (N, C_s, H/s, W/s) with ``features_only``.
    """

    def __init__(
        self,
        depths: Sequence[int] = (3, 3, 9, 3),
        projection_dims: Sequence[int] = (96, 192, 384, 768),
        include_top: bool = True,
        classes: int = 1000,
        input_shape: Sequence[int | None] | None = None,
        pooling: str | None = None,
        drop_path_rate: float = 0.0,
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
        layer_scale_init_value: float | None = 1e-6,
        layer_norm_epsilon: float = 1e-6,
        include_preprocessing: bool = True,
    ) -> None:
        arguments = dict(locals())
        arguments["depths"] = [int(d) for d in depths]
        arguments["projection_dims"] = [int(c) for c in projection_dims]
        super().__init__()
        check_config(depths, projection_dims, pooling)
        check_feature_arguments(features_only, out_indices)
        levels = feature_levels(depths, projection_dims)
        selected, positions = (select_levels(levels, out_indices, default=range(len(levels)))
                               if features_only else ([], None))
        stages_built = positions[-1] + 1 if features_only else 4
        self._store_config(arguments)
        channels = input_shape[0] if input_shape is not None else 3
        eps = float(layer_norm_epsilon)

        self.normalization = None
        if include_preprocessing and channels == 3:
            self.normalization = Normalization([m * 255 for m in IMAGENET_MEAN], [(s * 255) ** 2 for s in IMAGENET_STD])
        self.stem_conv = conv2d(channels, projection_dims[0], 4, 4, padding="valid")
        self.stem_norm = ChannelLayerNorm(projection_dims[0], eps=eps)

        rates = drop_path_rates(drop_path_rate, depths)
        stages = [s for s in stage_of_blocks(depths) if s < stages_built]
        self.downsample_norms = nn.ModuleList(ChannelLayerNorm(projection_dims[s - 1], eps=eps)
                                              for s in range(1, stages_built))
        self.downsample_convs = nn.ModuleList(conv2d(projection_dims[s - 1], projection_dims[s], 2, 2, padding="valid")
                                              for s in range(1, stages_built))
        self.blocks = nn.ModuleList(ConvNeXtBlockPT(projection_dims[s], rates[k], layer_scale_init_value, eps)
                                    for k, s in enumerate(stages))
        self._stages = stages
        self._positions = positions

        self.pool = self.head_norm = self.head = None
        if not features_only:
            if include_top or pooling is not None:
                self.pool = GlobalPool("avg" if include_top else pooling)
            self.head_norm = ChannelLayerNorm(projection_dims[-1], eps=eps)
            if include_top:
                self.head = nn.Linear(projection_dims[-1], classes)
        self._dv_init_features(levels, positions, pruned_modules(depths, stages_built, features_only))

    def _stage_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.normalization is not None:
            x = self.normalization(x)
        x = self.stem_norm(self.stem_conv(x))
        outputs = []
        stages = self._stages
        for k, block in enumerate(self.blocks):
            stage = stages[k]
            if stage > 0 and stages[k - 1] != stage:
                x = self.downsample_convs[stage - 1](self.downsample_norms[stage - 1](x))
            x = self._dv_run_block(block, x)
            if k + 1 == len(stages) or stages[k + 1] != stage:
                outputs.append(x)
        return outputs

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's output before pooling and ``head_norm``, (N, C, h, w) (timm's ``forward_features``)."""
        return self._stage_outputs(x)[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        outputs = self._stage_outputs(x)
        if self._positions is not None:
            return [outputs[p] for p in self._positions]
        x = outputs[-1]
        if self.pool is not None:
            x = self.pool(x)
        x = self.head_norm(x)
        if self.head is not None:
            x = self.head(x)
        return x
