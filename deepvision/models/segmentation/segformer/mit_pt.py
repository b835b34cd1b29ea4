"""PyTorch Mix Transformer encoder (mirrors ``mit_tf.py``): transformers' ``SegformerModel``, stage for stage.

Structure (channels-first)::

    stages.i (patch_embed -> blocks -> norm), i = 0..3, at strides 4, 8, 16, 32
    -> include_top: spatial mean of the last map -> head (Linear), as SegformerForImageClassification
       pooling "avg"/"max": pooled last map; None: the last map; features_only: the selected maps
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepvision.models.segmentation.segformer.encoder_pt import MiTEncoderPT, pool


class MiTPT(MiTEncoderPT):
    """Mix Transformer (MiT) encoder; same arguments as ``MiTTF`` except that ``input_shape`` is
    channels-first ``(C, H, W)``. Input ``(B, C, H, W)``; output logits ``(B, classes)``, pooled
    ``(B, C4)``, the last map ``(B, C4, H/32, W/32)`` or a list of maps."""

    def __init__(
        self,
        include_top: bool = False,
        classes: int = 1000,
        input_shape: Sequence[int | None] | None = None,
        pooling: str | None = None,
        drop_path_rate: float = 0.0,
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
        embed_dims: Sequence[int] = (32, 64, 160, 256),
        depths: Sequence[int] = (2, 2, 2, 2),
        num_heads: Sequence[int] = (1, 2, 5, 8),
        sr_ratios: Sequence[int] = (8, 4, 2, 1),
        patch_sizes: Sequence[int] = (7, 3, 3, 3),
        strides: Sequence[int] = (4, 2, 2, 2),
        mlp_ratio: int = 4,
        layer_norm_epsilon: float = 1e-5,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
    ) -> None:
        arguments = dict(locals())
        super().__init__()
        layout = self._dv_build_encoder(arguments)
        self.head = nn.Linear(int(embed_dims[-1]), classes) if layout.with_top else None
        self._dv_finish_encoder(arguments, layout, "head")

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        maps = self.forward_features(x)
        if self.head is not None:
            return self.head(pool(maps[-1], "avg"))
        return self._dv_encoder_output(maps)
