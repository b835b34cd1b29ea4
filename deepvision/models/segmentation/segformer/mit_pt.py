"""PyTorch Mix Transformer encoder (mirrors ``mit_tf.py``): transformers' ``SegformerModel``, stage for stage.

Structure (channels-first)::

    stages.i (patch_embed -> blocks -> norm), i = 0..3, at strides 4, 8, 16, 32
    -> include_top: spatial mean of the last map -> head (Linear), as SegformerForImageClassification
       pooling "avg"/"max": pooled last map; None: the last map; features_only: the selected maps
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepvision.models.base_pt import DeepVisionModulePT
from deepvision.models.features import check_feature_arguments, select_levels
from deepvision.models.segmentation.segformer import feature_levels, resolve_pooling
from deepvision.models.segmentation.segformer.encoder_pt import build_stages


def _pool(x: torch.Tensor, mode: str) -> torch.Tensor:
    return x.mean(dim=(2, 3)) if mode == "avg" else x.amax(dim=(2, 3))


class MiTPT(DeepVisionModulePT):
    """Mix Transformer (MiT) encoder; same arguments as ``MiTTF`` except that ``input_shape`` is
    channels-first ``(C, H, W)``. Input ``(B, C, H, W)``; output logits ``(B, classes)``, pooled
    ``(B, C4)``, the last map ``(B, C4, H/32, W/32)`` or a list of maps."""

    def __init__(
        self,
        include_top: bool = False,
        classes: int = 1000,
        input_shape: Sequence[int | None] | None = None,
        pooling: str | None = None,
        drop_path_rate: float = 0.0,
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
        embed_dims: Sequence[int] = (32, 64, 160, 256),
        depths: Sequence[int] = (2, 2, 2, 2),
        num_heads: Sequence[int] = (1, 2, 5, 8),
        sr_ratios: Sequence[int] = (8, 4, 2, 1),
        patch_sizes: Sequence[int] = (7, 3, 3, 3),
        strides: Sequence[int] = (4, 2, 2, 2),
        mlp_ratio: int = 4,
        layer_norm_epsilon: float = 1e-5,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
    ) -> None:
        arguments = dict(locals())
        super().__init__()
        check_feature_arguments(features_only, out_indices)
        self.pool_mode = resolve_pooling(pooling)
        channels = int(input_shape[0]) if input_shape is not None else 3
        levels = feature_levels(embed_dims, strides)
        _, positions = select_levels(levels, out_indices, default=range(len(levels))) if features_only else ([], None)
        count = positions[-1] + 1 if features_only else len(levels)
        self.features_only = bool(features_only)
        self.positions = positions
        self.stages = build_stages(embed_dims, depths, num_heads, sr_ratios, patch_sizes, strides, mlp_ratio,
                                   layer_norm_epsilon, dropout, attention_dropout, drop_path_rate, channels, count)
        self.head = nn.Linear(int(embed_dims[-1]), classes) if include_top and not features_only else None
        self.num_features = int(embed_dims[-1])
        self._store_config(arguments)
        pruned = [f"stages.{i}" for i in range(count, len(levels))] + (["head"] if features_only else [])
        self._dv_init_features(levels, positions, pruned)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The stage maps ``[(B, C1, H/4, W/4), ..., (B, C4, H/32, W/32)]`` (those built)."""
        runner = self._dv_run_block if self.grad_checkpointing else None
        maps = []
        for stage in self.stages:
            x = stage(x, runner)
            maps.append(x)
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        maps = self.forward_features(x)
        if self.features_only:
            return [maps[p] for p in self.positions]
        if self.head is not None:
            return self.head(_pool(maps[-1], "avg"))
        return maps[-1] if self.pool_mode is None else _pool(maps[-1], self.pool_mode)
