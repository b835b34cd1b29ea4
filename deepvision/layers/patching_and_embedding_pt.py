"""PyTorch implementation of ``PatchingAndEmbedding`` (mirrors ``patching_and_embedding_tf.py``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepvision.layers.core_pt import conv2d
from deepvision.layers.patching_and_embedding import DEFAULT_IMAGE_SHAPE


class PatchingAndEmbeddingPT(nn.Module):
    """(B, C, H, W) images -> (B, 1 + N, D) tokens: patch conv, class token, position embedding."""

    def __init__(self, project_dim: int, patch_size: int, input_shape: Sequence[int] | None = None) -> None:
        super().__init__()
        if input_shape is None:
            height, width, channels = DEFAULT_IMAGE_SHAPE
        else:
            channels, height, width = tuple(input_shape)
        if height is None or width is None:
            raise ValueError("PatchingAndEmbedding needs a fixed image size (its position embedding has one entry per patch).")
        self.project_dim = int(project_dim)
        self.patch_size = int(patch_size)
        self._image_shape = None if input_shape is None else tuple(input_shape)
        self.grid = (int(height) // self.patch_size, int(width) // self.patch_size)
        self.num_patches = self.grid[0] * self.grid[1]
        self.projection = conv2d(channels, self.project_dim, self.patch_size, strides=self.patch_size,
                                 padding="valid", use_bias=True)
        self.class_token = nn.Parameter(torch.empty(1, 1, self.project_dim))
        self.position_embedding = nn.Parameter(torch.empty(1, 1 + self.num_patches, self.project_dim))
        nn.init.normal_(self.class_token, std=1e-6)
        nn.init.trunc_normal_(self.position_embedding, std=0.02, a=-0.04, b=0.04)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.projection(images)  # (B, D, h, w)
        if tuple(x.shape[-2:]) != self.grid:
            raise ValueError(
                f"PatchingAndEmbedding was made for a {self.grid[0]}x{self.grid[1]} patch grid but got "
                f"images of {images.shape[-2]}x{images.shape[-1]}: pass input_shape to match."
            )
        # (B, D, h*w) -> (B, h*w, D): patches in row-major order (a bare reshape would scramble them).
        x = x.flatten(2).transpose(1, 2)
        cls = self.class_token.expand(x.shape[0], -1, -1).to(x.dtype)
        x = torch.cat([cls, x], dim=1)
        return x + self.position_embedding.to(x.dtype)

    def get_config(self) -> dict:
        return {
            "project_dim": self.project_dim,
            "patch_size": self.patch_size,
            "input_shape": None if self._image_shape is None else list(self._image_shape),
        }
