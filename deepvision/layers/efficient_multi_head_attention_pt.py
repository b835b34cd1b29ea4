"""PyTorch implementation of ``EfficientMultiHeadAttention`` (mirrors ``efficient_multi_head_attention_tf.py``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepvision.layers.overlapping_patch_embedding_pt import grid_to_tokens, tokens_to_grid


class EfficientMultiHeadAttentionPT(nn.Module):
    """(B, D, H, W) -> (B, D, H, W); :meth:`forward_tokens` works on row-major tokens (B, H*W, D)."""

    def __init__(self, project_dim: int, num_heads: int, sr_ratio: int = 1, layer_norm_epsilon: float = 1e-5,
                 attention_dropout: float = 0.0, projection_dropout: float = 0.0) -> None:
        super().__init__()
        if project_dim % num_heads:
            raise ValueError(f"project_dim={project_dim} is not divisible by num_heads={num_heads}")
        self.project_dim = int(project_dim)
        self.num_heads = int(num_heads)
        self.head_dim = self.project_dim // self.num_heads
        self.sr_ratio = int(sr_ratio)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.attention_dropout = float(attention_dropout)
        self.projection_dropout = float(projection_dropout)
        self.query = nn.Linear(self.project_dim, self.project_dim, bias=True)
        self.key = nn.Linear(self.project_dim, self.project_dim, bias=True)
        self.value = nn.Linear(self.project_dim, self.project_dim, bias=True)
        if self.sr_ratio > 1:
            self.reduction = nn.Conv2d(self.project_dim, self.project_dim, self.sr_ratio, stride=self.sr_ratio,
                                       padding=0, bias=True)
            self.reduction_norm = nn.LayerNorm(self.project_dim, eps=self.layer_norm_epsilon)
        else:
            self.reduction = self.reduction_norm = None
        self.proj = nn.Linear(self.project_dim, self.project_dim, bias=True)
        self.proj_drop = nn.Dropout(self.projection_dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        # (B, N, D) -> (B, heads, N, head_dim)
        return x.reshape(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def forward_tokens(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Row-major tokens (B, height*width, D) -> (B, height*width, D)."""
        q = self._heads(self.query(x))
        source = x
        if self.reduction is not None:
            reduced, _, _ = grid_to_tokens(self.reduction(tokens_to_grid(x, height, width)))
            source = self.reduction_norm(reduced)
        k, v = self._heads(self.key(source)), self._heads(self.value(source))
        dropout = self.attention_dropout if self.training else 0.0  # functional dropout: off in eval mode
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        out = out.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.project_dim)
        return self.proj_drop(self.proj(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens, height, width = grid_to_tokens(x)
        return tokens_to_grid(self.forward_tokens(tokens, height, width), height, width)

    def get_config(self) -> dict:
        return {
            "project_dim": self.project_dim,
            "num_heads": self.num_heads,
            "sr_ratio": self.sr_ratio,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "attention_dropout": self.attention_dropout,
            "projection_dropout": self.projection_dropout,
        }
