"""PyTorch implementation of ``ConvNeXtBlock`` (mirrors ``convnext_block_tf.py``; structure in ``convnext_block.py``)."""

from __future__ import annotations

import torch
from torch import nn

from deepvision.layers.convnext_block import (
    CONVNEXT_BLOCK_ARGUMENTS,
    check_convnext_block_arguments,
    check_input_channels,
    hidden_width,
)
from deepvision.layers.core_pt import activation_name, depthwise_conv2d
from deepvision.layers.layer_scale_pt import LayerScalePT
from deepvision.layers.mlp_pt import MLPPT
from deepvision.layers.stochastic_depth_pt import StochasticDepthPT


class ConvNeXtBlockPT(nn.Module):
    """ConvNeXt block on (N, C, H, W) input (norm and MLP run channels-last, as in timm)."""

    def __init__(
        self,
        projection_dim: int,
        drop_path_rate: float = 0.0,
        layer_scale_init_value: float | None = 1e-6,
        layer_norm_epsilon: float = 1e-6,
        kernel_size: int = 7,
        mlp_ratio: float = 4.0,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        args = check_convnext_block_arguments({name: value for name, value in locals().items()
                                               if name in CONVNEXT_BLOCK_ARGUMENTS})
        for name in CONVNEXT_BLOCK_ARGUMENTS:
            setattr(self, name, args[name])
        self.activation = activation_name(activation)
        dim = self.projection_dim
        self.depthwise_conv = depthwise_conv2d(dim, self.kernel_size, 1, use_bias=True)
        self.norm = nn.LayerNorm(dim, eps=self.layer_norm_epsilon)
        self.mlp = MLPPT(hidden_width(dim, self.mlp_ratio), dim, self.activation, input_dim=dim)
        self.layer_scale = (LayerScalePT(dim, self.layer_scale_init_value)
                            if self.layer_scale_init_value is not None else None)
        self.drop_path = StochasticDepthPT(self.drop_path_rate)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        check_input_channels(self.projection_dim, inputs.shape, 1)
        # LayerNorm and the Linear layers act on the last axis: run them channels-last.
        x = self.depthwise_conv(inputs).permute(0, 2, 3, 1)
        x = self.mlp(self.norm(x)).permute(0, 3, 1, 2)
        if self.layer_scale is not None:
            x = self.layer_scale(x)
        return inputs + self.drop_path(x)

    def get_config(self) -> dict:
        return {name: getattr(self, name) for name in CONVNEXT_BLOCK_ARGUMENTS}
