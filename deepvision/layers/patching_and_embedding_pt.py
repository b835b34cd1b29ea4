"""PyTorch implementation of ``PatchingAndEmbedding`` (mirrors ``patching_and_embedding_tf.py``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from deepvision import checks
from deepvision.layers.core_pt import conv2d
from deepvision.layers.patching_and_embedding import DEFAULT_IMAGE_SHAPE, check_image_size, check_images
from deepvision.models.classification.vit.resample import interpolation_matrices


class PatchingAndEmbeddingPT(nn.Module):
    """(B, C, H, W) images -> (B, 1 + N, D) tokens: patch conv, class token, position embedding."""

    def __init__(self, project_dim: int, patch_size: int, input_shape: Sequence[int] | None = None,
                 dynamic_img_size: bool = False) -> None:
        super().__init__()
        if input_shape is None:
            height, width, channels = DEFAULT_IMAGE_SHAPE
        else:
            channels, height, width = tuple(input_shape)
        check_image_size(height, width)
        self.channels = int(channels)
        self.project_dim = int(project_dim)
        self.patch_size = int(patch_size)
        self._image_shape = None if input_shape is None else tuple(input_shape)
        self.dynamic_img_size = bool(dynamic_img_size)
        self.grid = (int(height) // self.patch_size, int(width) // self.patch_size)
        self.num_patches = self.grid[0] * self.grid[1]
        self.projection = conv2d(channels, self.project_dim, self.patch_size, strides=self.patch_size,
                                 padding="valid", use_bias=True)
        self.class_token = nn.Parameter(torch.empty(1, 1, self.project_dim))
        self.position_embedding = nn.Parameter(torch.empty(1, 1 + self.num_patches, self.project_dim))
        nn.init.normal_(self.class_token, std=1e-6)
        nn.init.trunc_normal_(self.position_embedding, std=0.02, a=-0.04, b=0.04)

    def check_input(self, shape) -> None:
        """Raise ``deepvision.checks.InputShapeError`` for images this block cannot embed (see ``check_images``)."""
        check_images(shape, checks.CHANNELS_FIRST, channels=self.channels, patch_size=self.patch_size, grid=self.grid,
                     dynamic_img_size=self.dynamic_img_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.check_input(images.shape)
        x = self.projection(images)  # (B, D, h, w)
        grid = (int(x.shape[-2]), int(x.shape[-1]))
        # (B, D, h*w) -> (B, h*w, D): patches in row-major order (a bare reshape would scramble them).
        x = x.flatten(2).transpose(1, 2)
        cls = self.class_token.expand(x.shape[0], -1, -1).to(x.dtype)
        x = torch.cat([cls, x], dim=1)
        return x + self.resampled_position_embedding(grid).to(x.dtype)

    def resampled_position_embedding(self, grid: tuple[int, int]) -> torch.Tensor:
        """The position embedding (1, 1 + gh*gw, D) for a (gh, gw) patch grid (differentiable).

        The class token's entry is kept; the patch part is resized from ``self.grid`` with the
        numpy resampler's interpolation matrices (``Mh @ grid @ Mw^T``), within float32 rounding
        of ``resample_position_embedding``.
        """
        if tuple(grid) == self.grid:
            return self.position_embedding
        embedding = self.position_embedding
        patches = embedding[:, 1:].reshape(1, self.grid[0], self.grid[1], self.project_dim)
        rows, cols = _grid_matrices(*self.grid, int(grid[0]), int(grid[1]))
        if grid[1] != self.grid[1]:
            patches = torch.einsum("jb,nabd->najd", cols.to(device=patches.device, dtype=patches.dtype), patches)
        if grid[0] != self.grid[0]:
            patches = torch.einsum("ia,najd->nijd", rows.to(device=patches.device, dtype=patches.dtype), patches)
        return torch.cat([embedding[:, :1], patches.reshape(1, -1, self.project_dim)], dim=1)

    def get_config(self) -> dict:
        return {
            "project_dim": self.project_dim,
            "patch_size": self.patch_size,
            "input_shape": None if self._image_shape is None else list(self._image_shape),
            "dynamic_img_size": self.dynamic_img_size,
        }


@torch.compiler.assume_constant_result
def _grid_matrices(old_h: int, old_w: int, new_h: int, new_w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The (new_h, old_h) and (new_w, old_w) interpolation matrices of the numpy resampler (identity
    for an unchanged axis, which the caller skips): constants of a torch.compile trace, not traced."""
    rows, cols = interpolation_matrices((old_h, old_w), (new_h, new_w))
    rows = np.eye(old_h, dtype=np.float32) if rows is None else rows.copy()
    cols = np.eye(old_w, dtype=np.float32) if cols is None else cols.copy()
    return torch.from_numpy(rows), torch.from_numpy(cols)
