"""PyTorch implementation of ``SegFormerHead`` (mirrors ``segformer_head_tf.py``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepvision.layers.core_pt import BatchNorm2d
from deepvision.layers.upsample_pt import resize_bilinear


class SegFormerHeadPT(nn.Module):
    """[(B, C_i, H_i, W_i)] -> (B, classes, H_0, W_0): project, upsample, concat deepest first, fuse, classify."""

    def __init__(self, classes: int, in_dims: Sequence[int], decoder_dim: int = 256, dropout: float = 0.1,
                 batch_norm_momentum: float = 0.9, batch_norm_epsilon: float = 1e-5) -> None:
        super().__init__()
        self.classes = int(classes)
        self.in_dims = [int(d) for d in in_dims]
        self.decoder_dim = int(decoder_dim)
        self.dropout = float(dropout)
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.batch_norm_epsilon = float(batch_norm_epsilon)
        self.projections = nn.ModuleList([nn.Linear(dim, self.decoder_dim, bias=True) for dim in self.in_dims])
        self.fuse = nn.Conv2d(self.decoder_dim * len(self.in_dims), self.decoder_dim, 1, bias=False)
        self.fuse_norm = BatchNorm2d(self.decoder_dim, self.batch_norm_momentum, self.batch_norm_epsilon)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(self.dropout)
        self.classifier = nn.Conv2d(self.decoder_dim, self.classes, 1, bias=True)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(features) != len(self.in_dims):
            raise ValueError(f"SegFormerHead expects {len(self.in_dims)} feature maps, got {len(features)}")
        size = features[0].shape[-2:]
        maps = []
        for i, (x, projection) in enumerate(zip(features, self.projections)):
            # Linear on the channels: (B, C, H, W) -> (B, H, W, C) -> (B, H, W, D) -> (B, D, H, W).
            x = projection(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            # The first map sets the size; the deeper ones are always resized (no test on symbolic
            # sizes, so an ONNX export keeps height and width dynamic).
            maps.append(x if i == 0 else resize_bilinear(x, size))
        x = self.fuse(torch.cat(maps[::-1], dim=1))
        x = self.drop(self.act(self.fuse_norm(x)))
        return self.classifier(x)

    def get_config(self) -> dict:
        return {
            "classes": self.classes,
            "in_dims": list(self.in_dims),
            "decoder_dim": self.decoder_dim,
            "dropout": self.dropout,
            "batch_norm_momentum": self.batch_norm_momentum,
            "batch_norm_epsilon": self.batch_norm_epsilon,
        }
