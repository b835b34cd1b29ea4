"""PyTorch implementation of ``OverlappingPatchEmbedding`` (mirrors ``overlapping_patch_embedding_tf.py``)."""

from __future__ import annotations

import torch
from torch import nn


class OverlappingPatchEmbeddingPT(nn.Module):
    """(B, C, H, W) -> (B, D, h, w): strided conv with padding ``patch_size // 2``, LayerNorm on channels."""

    def __init__(self, project_dim: int, patch_size: int = 7, stride: int = 4, input_dim: int = 3,
                 layer_norm_epsilon: float = 1e-5) -> None:
        super().__init__()
        self.project_dim = int(project_dim)
        self.patch_size = int(patch_size)
        self.stride = int(stride)
        self.input_dim = int(input_dim)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.projection = nn.Conv2d(self.input_dim, self.project_dim, self.patch_size, stride=self.stride,
                                    padding=self.patch_size // 2, bias=True)
        self.norm = nn.LayerNorm(self.project_dim, eps=self.layer_norm_epsilon)

    def forward_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """(B, C, H, W) -> tokens (B, h*w, D) in row-major order, and the grid ``h``, ``w``."""
        x = self.projection(x)
        height, width = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), height, width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens, height, width = self.forward_tokens(x)
        return tokens_to_grid(tokens, height, width)

    def get_config(self) -> dict:
        return {
            "project_dim": self.project_dim,
            "patch_size": self.patch_size,
            "stride": self.stride,
            "input_dim": self.input_dim,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }


def tokens_to_grid(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Row-major tokens (B, h*w, D) -> channels-first feature map (B, D, h, w)."""
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[-1], height, width)


def grid_to_tokens(x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """Channels-first feature map (B, D, h, w) -> row-major tokens (B, h*w, D), ``h``, ``w``."""
    height, width = x.shape[-2:]
    return x.flatten(2).transpose(1, 2), height, width
