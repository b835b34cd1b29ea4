"""PyTorch implementation of ``MultiHeadSelfAttention`` (mirrors ``multi_head_self_attention_tf.py``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepvision import checks
from deepvision.layers.multi_head_self_attention import check_arguments


class MultiHeadSelfAttentionPT(nn.Module):
    """Tokens (B, N, D) -> (B, N, D); fused qkv Linear (D -> 3D), ``scaled_dot_product_attention``, proj Linear."""

    def __init__(self, project_dim: int, num_heads: int, attention_dropout: float = 0.0,
                 projection_dropout: float = 0.0) -> None:
        super().__init__()
        check_arguments(project_dim, num_heads)
        self.project_dim = int(project_dim)
        self.num_heads = int(num_heads)
        self.head_dim = self.project_dim // self.num_heads
        self.attention_dropout = float(attention_dropout)
        self.projection_dropout = float(projection_dropout)
        self.qkv = nn.Linear(self.project_dim, 3 * self.project_dim, bias=True)
        self.proj = nn.Linear(self.project_dim, self.project_dim, bias=True)
        self.proj_drop = nn.Dropout(self.projection_dropout)

    def check_input(self, shape) -> None:
        """Raise ``deepvision.checks.InputShapeError`` unless ``shape`` is ``(B, N, project_dim)``."""
        checks.check_tokens("MultiHeadSelfAttention", shape, dim=self.project_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x.shape)
        batch, tokens, _ = x.shape
        # (B, N, 3D) -> (3, B, heads, N, head_dim): q, k, v along the output axis, heads contiguous.
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        dropout = self.attention_dropout if self.training else 0.0  # functional dropout: off in eval mode
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        out = out.transpose(1, 2).reshape(batch, tokens, self.project_dim)
        return self.proj_drop(self.proj(out))

    def get_config(self) -> dict:
        return {
            "project_dim": self.project_dim,
            "num_heads": self.num_heads,
            "attention_dropout": self.attention_dropout,
            "projection_dropout": self.projection_dropout,
        }
