"""PyTorch SegFormer (mirrors ``segformer_tf.py``): transformers' ``SegformerForSemanticSegmentation``.

Structure (channels-first)::

    stages.i (MiT encoder, strides 4, 8, 16, 32) -> decode_head (SegFormerHead, all-MLP decoder)
    -> logits (B, classes, H/4, W/4), before any upsampling (see deepvision.layers.upsample)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from deepvision.layers.segformer_head_pt import SegFormerHeadPT
from deepvision.models.base_pt import DeepVisionModulePT
from deepvision.models.features import check_feature_arguments, select_levels
from deepvision.models.segmentation.segformer import feature_levels, resolve_pooling
from deepvision.models.segmentation.segformer.encoder_pt import build_stages


class SegFormerPT(DeepVisionModulePT):
    """SegFormer; same arguments as ``SegFormerTF`` except that ``input_shape`` is channels-first
    ``(C, H, W)``. Input ``(B, C, H, W)``; output logits ``(B, classes, h, w)`` (the first stage's
    grid, 1/4 of the input), or the encoder's outputs without the head."""

    def __init__(
        self,
        include_top: bool = True,
        classes: int = 150,
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
        decoder_dim: int = 256,
        head_dropout: float = 0.1,
        batch_norm_momentum: float = 0.9,
        batch_norm_epsilon: float = 1e-5,
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
        self.decode_head = (SegFormerHeadPT(classes, embed_dims, decoder_dim, head_dropout, batch_norm_momentum,
                                            batch_norm_epsilon) if include_top and not features_only else None)
        self.num_features = int(embed_dims[-1])
        self._store_config(arguments)
        pruned = [f"stages.{i}" for i in range(count, len(levels))] + (["decode_head"] if features_only else [])
        self._dv_init_features(levels, positions, pruned)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's stage maps ``[(B, C1, H/4, W/4), ..., (B, C4, H/32, W/32)]`` (those built)."""
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
        if self.decode_head is not None:
            return self.decode_head(maps)
        if self.pool_mode is None:
            return maps[-1]
        return maps[-1].mean(dim=(2, 3)) if self.pool_mode == "avg" else maps[-1].amax(dim=(2, 3))
