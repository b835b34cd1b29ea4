"""PyTorch implementation of ``HierarchicalTransformerEncoder`` (mirrors ``hierarchical_transformer_encoder_tf.py``)."""

from __future__ import annotations

import torch
from torch import nn

from deepvision.layers.core_pt import activation_name
from deepvision.layers.efficient_multi_head_attention_pt import EfficientMultiHeadAttentionPT
from deepvision.layers.mix_ffn_pt import MixFFNPT
from deepvision.layers.overlapping_patch_embedding_pt import grid_to_tokens, tokens_to_grid
from deepvision.layers.stochastic_depth_pt import StochasticDepthPT


class HierarchicalTransformerEncoderPT(nn.Module):
    """(B, D, H, W) -> (B, D, H, W); :meth:`forward_tokens` works on row-major tokens (B, H*W, D)."""

    def __init__(self, project_dim: int, num_heads: int, mlp_dim: int, sr_ratio: int = 1,
                 layer_norm_epsilon: float = 1e-5, activation: str = "gelu", dropout: float = 0.0,
                 attention_dropout: float = 0.0, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.project_dim = int(project_dim)
        self.num_heads = int(num_heads)
        self.mlp_dim = int(mlp_dim)
        self.sr_ratio = int(sr_ratio)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.activation = activation_name(activation)
        self.dropout = float(dropout)
        self.attention_dropout = float(attention_dropout)
        self.drop_path_rate = float(drop_path_rate)
        self.norm1 = nn.LayerNorm(self.project_dim, eps=self.layer_norm_epsilon)
        self.attn = EfficientMultiHeadAttentionPT(self.project_dim, self.num_heads, self.sr_ratio,
                                                  self.layer_norm_epsilon, self.attention_dropout, self.dropout)
        self.norm2 = nn.LayerNorm(self.project_dim, eps=self.layer_norm_epsilon)
        self.mlp = MixFFNPT(self.mlp_dim, self.project_dim, self.project_dim, self.activation, self.dropout)
        self.drop_path = StochasticDepthPT(self.drop_path_rate)

    def forward_tokens(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Row-major tokens (B, height*width, D) -> (B, height*width, D)."""
        x = x + self.drop_path(self.attn.forward_tokens(self.norm1(x), height, width))
        return x + self.drop_path(self.mlp.forward_tokens(self.norm2(x), height, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens, height, width = grid_to_tokens(x)
        return tokens_to_grid(self.forward_tokens(tokens, height, width), height, width)

    def get_config(self) -> dict:
        return {
            "project_dim": self.project_dim,
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "sr_ratio": self.sr_ratio,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "activation": self.activation,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "drop_path_rate": self.drop_path_rate,
        }
