"""PyTorch implementation of ``TransformerEncoder`` (mirrors ``transformer_encoder_tf.py``)."""

from __future__ import annotations

import torch
from torch import nn

from deepvision import checks
from deepvision.layers.core_pt import activation_name
from deepvision.layers.mlp_pt import MLPPT
from deepvision.layers.multi_head_self_attention_pt import MultiHeadSelfAttentionPT
from deepvision.layers.stochastic_depth_pt import StochasticDepthPT


class TransformerEncoderPT(nn.Module):
    """Pre-norm block on (B, N, D): norm1 -> attn -> residual, norm2 -> mlp -> residual."""

    def __init__(self, project_dim: int, mlp_dim: int, num_heads: int, mlp_dropout: float = 0.0,
                 attention_dropout: float = 0.0, activation: str = "gelu", layer_norm_epsilon: float = 1e-6,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.project_dim = int(project_dim)
        self.mlp_dim = int(mlp_dim)
        self.num_heads = int(num_heads)
        self.mlp_dropout = float(mlp_dropout)
        self.attention_dropout = float(attention_dropout)
        self.activation = activation_name(activation)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.drop_path_rate = float(drop_path_rate)
        self.norm1 = nn.LayerNorm(self.project_dim, eps=self.layer_norm_epsilon)
        self.attn = MultiHeadSelfAttentionPT(self.project_dim, self.num_heads, self.attention_dropout,
                                             projection_dropout=self.mlp_dropout)
        self.norm2 = nn.LayerNorm(self.project_dim, eps=self.layer_norm_epsilon)
        self.mlp = MLPPT(self.mlp_dim, self.project_dim, self.activation, self.mlp_dropout, input_dim=self.project_dim)
        self.drop_path = StochasticDepthPT(self.drop_path_rate)

    def check_input(self, shape) -> None:
        """Raise ``deepvision.checks.InputShapeError`` unless ``shape`` is ``(B, N, project_dim)``."""
        checks.check_tokens("TransformerEncoder", shape, dim=self.project_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x.shape)
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def get_config(self) -> dict:
        return {
            "project_dim": self.project_dim,
            "mlp_dim": self.mlp_dim,
            "num_heads": self.num_heads,
            "mlp_dropout": self.mlp_dropout,
            "attention_dropout": self.attention_dropout,
            "activation": self.activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "drop_path_rate": self.drop_path_rate,
        }
