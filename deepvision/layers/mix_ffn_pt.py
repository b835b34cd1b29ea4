"""PyTorch implementation of ``MixFFN`` (mirrors ``mix_ffn_tf.py``)."""

from __future__ import annotations

import torch
from torch import nn

from deepvision.layers.core_pt import Activation, activation_name
from deepvision.layers.overlapping_patch_embedding_pt import grid_to_tokens, tokens_to_grid


class MixFFNPT(nn.Module):
    """(B, C, H, W) -> (B, out, H, W); :meth:`forward_tokens` works on row-major tokens (B, H*W, C)."""

    def __init__(self, hidden_dim: int, output_dim: int, input_dim: int | None = None, activation: str = "gelu",
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden_dim = int(hidden_dim)
        self.output_dim = int(output_dim)
        self.input_dim = None if input_dim is None else int(input_dim)
        self.activation = activation_name(activation)
        self.dropout = float(dropout)
        self.fc1 = nn.Linear(self.input_dim or self.output_dim, self.hidden_dim, bias=True)
        self.dwconv = nn.Conv2d(self.hidden_dim, self.hidden_dim, 3, stride=1, padding=1, groups=self.hidden_dim,
                                bias=True)
        self.act = Activation(self.activation)
        self.drop = nn.Dropout(self.dropout)
        self.fc2 = nn.Linear(self.hidden_dim, self.output_dim, bias=True)

    def forward_tokens(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Row-major tokens (B, height*width, C) -> (B, height*width, out)."""
        x, _, _ = grid_to_tokens(self.dwconv(tokens_to_grid(self.fc1(x), height, width)))
        x = self.drop(self.act(x))
        return self.drop(self.fc2(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens, height, width = grid_to_tokens(x)
        return tokens_to_grid(self.forward_tokens(tokens, height, width), height, width)

    def get_config(self) -> dict:
        return {
            "hidden_dim": self.hidden_dim,
            "output_dim": self.output_dim,
            "input_dim": self.input_dim,
            "activation": self.activation,
            "dropout": self.dropout,
        }
