"""Keras SegFormer (mirrors ``segformer_pt.py``): transformers' ``SegformerForSemanticSegmentation``.

Structure (channels-last)::

    stages.i (MiT encoder, strides 4, 8, 16, 32) -> decode_head (SegFormerHead, all-MLP decoder)
    -> logits (B, H/4, W/4, classes), before any upsampling (see deepvision.layers.upsample)
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from deepvision.layers.segformer_head_tf import SegFormerHeadTF
from deepvision.models.segmentation.segformer.encoder_tf import MiTEncoderTF, encoder_graph, encoder_output


@keras.saving.register_keras_serializable(package="deepvision")
class SegFormerTF(MiTEncoderTF):
    """SegFormer semantic segmentation, generic over the MiT encoder and the decoder width.

    Args (as ``deepvision.models.segmentation.segformer.SEGFORMER_ARGUMENTS``): ``include_top`` (the
    decode head; without it the encoder's last map, or pooled with ``pooling``), ``classes``,
    ``input_shape`` (channels-last; ``None``: any size, 3 channels), ``pooling``, ``drop_path_rate``,
    ``features_only`` / ``out_indices`` (the encoder's stage maps), the MiT arguments (``embed_dims``,
    ``depths``, ``num_heads``, ``sr_ratios``, ``patch_sizes``, ``strides``, ``mlp_ratio``,
    ``layer_norm_epsilon``, ``dropout``, ``attention_dropout``), ``decoder_dim``, ``head_dropout``,
    ``batch_norm_momentum`` (Keras convention) and ``batch_norm_epsilon``.

    Input ``(B, H, W, C)``; output logits ``(B, h, w, classes)`` with ``h = (H - 1) // 4 + 1`` (the
    first stage's grid), or the encoder's outputs.
    """

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
        **kwargs,
    ) -> None:
        arguments = dict(locals())
        layout, inputs, stages, maps = encoder_graph(arguments)
        decode_head = (SegFormerHeadTF(classes, embed_dims, decoder_dim, head_dropout, batch_norm_momentum,
                                       batch_norm_epsilon, name="decode_head") if layout.with_top else None)
        outputs = decode_head(maps) if decode_head is not None else encoder_output(maps, layout)
        kwargs.setdefault("name", "segformer")
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # Public attributes in the same order as SegFormerPT: they define the canonical names.
        self.stages = stages
        self.decode_head = decode_head
        self._dv_finish_encoder(arguments, layout, "decode_head")
