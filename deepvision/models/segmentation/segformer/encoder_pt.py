"""PyTorch Mix Transformer encoder, shared by ``MiTPT`` and ``SegFormerPT`` (mirrors ``encoder_tf.py``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from deepvision.layers.hierarchical_transformer_encoder_pt import HierarchicalTransformerEncoderPT
from deepvision.layers.overlapping_patch_embedding_pt import OverlappingPatchEmbeddingPT, tokens_to_grid
from deepvision.models.base_pt import DeepVisionModulePT
from deepvision.models.segmentation.segformer import (
    STAGE_KEYS,
    EncoderLayout,
    check_encoder_config,
    drop_path_rates,
)


class MiTStagePT(nn.Module):
    """(B, C_in, H, W) -> (B, D, h, w): overlapping patch embedding, MiT blocks, LayerNorm."""

    def __init__(self, input_dim: int, project_dim: int, depth: int, num_heads: int, sr_ratio: int,
                 patch_size: int, stride: int, mlp_ratio: int, layer_norm_epsilon: float, dropout: float,
                 attention_dropout: float, drop_path_rates: Sequence[float]) -> None:
        super().__init__()
        self.patch_embed = OverlappingPatchEmbeddingPT(project_dim, patch_size, stride, input_dim, layer_norm_epsilon)
        self.blocks = nn.ModuleList([
            HierarchicalTransformerEncoderPT(project_dim, num_heads, int(project_dim) * int(mlp_ratio), sr_ratio,
                                             layer_norm_epsilon, "gelu", dropout, attention_dropout, rate)
            for rate in drop_path_rates
        ])
        self.norm = nn.LayerNorm(int(project_dim), eps=float(layer_norm_epsilon))

    def forward(self, x: torch.Tensor, run_block: Callable | None = None) -> torch.Tensor:
        """``run_block(block, feature_map)``: the model's checkpointing runner; ``None`` runs the blocks on tokens."""
        tokens, height, width = self.patch_embed.forward_tokens(x)
        if run_block is None:
            for block in self.blocks:
                tokens = block.forward_tokens(tokens, height, width)
        else:
            # Checkpointing runs whole modules: go through the blocks' feature-map forward.
            grid = tokens_to_grid(tokens, height, width)
            for block in self.blocks:
                grid = run_block(block, grid)
            tokens = grid.flatten(2).transpose(1, 2)
        return tokens_to_grid(self.norm(tokens), height, width)


def build_stages(embed_dims, depths, num_heads, sr_ratios, patch_sizes, strides, mlp_ratio, layer_norm_epsilon,
                 dropout, attention_dropout, drop_path_rate, in_channels: int, count: int) -> nn.ModuleList:
    """The first ``count`` stages of a MiT encoder (``count`` < 4 when a features model prunes later ones)."""
    check_encoder_config(embed_dims, depths, num_heads, sr_ratios, patch_sizes, strides)
    rates = drop_path_rates(drop_path_rate, depths)
    stages, previous = [], int(in_channels)
    for i in range(count):
        stages.append(MiTStagePT(previous, embed_dims[i], depths[i], num_heads[i], sr_ratios[i], patch_sizes[i],
                                 strides[i], mlp_ratio, layer_norm_epsilon, dropout, attention_dropout, rates[i]))
        previous = int(embed_dims[i])
    return nn.ModuleList(stages)


def pool(x: torch.Tensor, mode: str) -> torch.Tensor:
    """``(B, C, h, w) -> (B, C)``: spatial mean (``"avg"``) or max (``"max"``)."""
    return x.mean(dim=(2, 3)) if mode == "avg" else x.amax(dim=(2, 3))


class MiTEncoderPT(DeepVisionModulePT):
    """What ``MiTPT`` and ``SegFormerPT`` share: the stages, level selection and ``forward_features``.

    A subclass calls :meth:`_dv_build_encoder` with its constructor arguments, assigns its top module
    (``head`` / ``decode_head``, after ``stages``: the order defines the canonical names), then
    :meth:`_dv_finish_encoder`.
    """

    def _dv_build_encoder(self, arguments: dict) -> EncoderLayout:
        layout = EncoderLayout(arguments)
        self.pool_mode = layout.pool_mode
        self.features_only = layout.features_only
        self.positions = layout.positions
        shape = arguments["input_shape"]
        if shape is not None and shape[0] is None:
            raise ValueError(f"input_shape is channels-first (C, H, W) in PyTorch, e.g. (3, None, None); got {shape}")
        channels = int(shape[0]) if shape is not None else 3
        self.stages = build_stages(*(arguments[k] for k in STAGE_KEYS), channels, layout.count)
        return layout

    def _dv_finish_encoder(self, arguments: dict, layout: EncoderLayout, top: str) -> None:
        self.num_features = int(arguments["embed_dims"][-1])
        self._store_config(arguments)
        self._dv_init_features(layout.levels, layout.positions, layout.pruned(top))

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The stage maps ``[(B, C1, H/4, W/4), ..., (B, C4, H/32, W/32)]`` (those built)."""
        runner = self._dv_run_block if self.grad_checkpointing else None
        maps = []
        for stage in self.stages:
            x = stage(x, runner)
            maps.append(x)
        return maps

    def _dv_encoder_output(self, maps: list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        """The output without a top: the selected maps, the pooled last map, or the last map."""
        if self.features_only:
            return [maps[p] for p in self.positions]
        return maps[-1] if self.pool_mode is None else pool(maps[-1], self.pool_mode)

