"""PyTorch SegFormer (mirrors ``segformer_tf.py``): transformers' ``SegformerForSemanticSegmentation``.

Structure (channels-first)::

    stages.i (MiT encoder, strides 4, 8, 16, 32) -> decode_head (SegFormerHead, all-MLP decoder)
    -> logits (B, classes, H/4, W/4), before any upsampling (see deepvision.layers.upsample)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from deepvision.layers.segformer_head_pt import SegFormerHeadPT
from deepvision.models.segmentation.segformer.encoder_pt import MiTEncoderPT


class SegFormerPT(MiTEncoderPT):
    """SegFormer; same arguments as ``SegFormerTF`` except that ``input_shape`` is channels-first
    ``(C, H, W)``. Input ``(B, C, H, W)``; output logits ``(B, classes, h, w)`` (the first stage's
    grid, 1/4 of the input), or the encoder's outputs without the head."""

    def __init__(
        self,
        include_top: bool = True,
        classes: int = 150,
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
        decoder_dim: int = 256,
        head_dropout: float = 0.1,
        batch_norm_momentum: float = 0.9,
        batch_norm_epsilon: float = 1e-5,
    ) -> None:
        arguments = dict(locals())
        super().__init__()
        layout = self._dv_build_encoder(arguments)
        self.decode_head = (SegFormerHeadPT(classes, embed_dims, decoder_dim, head_dropout, batch_norm_momentum,
                                            batch_norm_epsilon) if layout.with_top else None)
        self._dv_finish_encoder(arguments, layout, "decode_head")

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        maps = self.forward_features(x)
        if self.decode_head is not None:
            return self.decode_head(maps)
        return self._dv_encoder_output(maps)
