"""PyTorch implementation of ``LayerScale`` (mirrors ``layer_scale_tf.py``)."""

from __future__ import annotations

import torch
from torch import nn

from deepvision.layers.layer_scale import LAYER_SCALE_ARGUMENTS, check_channels, check_layer_scale_arguments


class LayerScalePT(nn.Module):
    """``x * gamma`` on axis 1 of (N, C, H, W) images, on the last axis of (N, L, C) tokens or (N, C)."""

    def __init__(self, projection_dim: int, init_value: float = 1e-6) -> None:
        super().__init__()
        self.projection_dim, self.init_value = check_layer_scale_arguments(projection_dim, init_value)
        self.gamma = nn.Parameter(torch.full((self.projection_dim,), self.init_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            check_channels(self.projection_dim, x.shape[1], x.shape)
            return x * self.gamma.view(1, -1, 1, 1).to(x.dtype)
        check_channels(self.projection_dim, x.shape[-1], x.shape)
        return x * self.gamma.to(x.dtype)

    def extra_repr(self) -> str:
        return f"projection_dim={self.projection_dim}, init_value={self.init_value}"

    def get_config(self) -> dict:
        return {name: getattr(self, name) for name in LAYER_SCALE_ARGUMENTS}
