"""PyTorch Mix Transformer stages, shared by ``MiTPT`` and ``SegFormerPT`` (mirrors ``encoder_tf.py``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from deepvision.layers.hierarchical_transformer_encoder_pt import HierarchicalTransformerEncoderPT
from deepvision.layers.overlapping_patch_embedding_pt import OverlappingPatchEmbeddingPT, tokens_to_grid
from deepvision.models.segmentation.segformer import check_encoder_config, drop_path_rates


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
