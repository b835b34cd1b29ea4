"""Keras SegFormer (mirrors ``segformer_pt.py``): transformers' ``SegformerForSemanticSegmentation``.

Structure (channels-last)::

    stages.i (MiT encoder, strides 4, 8, 16, 32) -> decode_head (SegFormerHead, all-MLP decoder)
    -> logits (B, H/4, W/4, classes), before any upsampling (see deepvision.layers.upsample)
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from deepvision.layers.segformer_head_tf import SegFormerHeadTF
from deepvision.models.base_tf import DeepVisionModelTF
from deepvision.models.features import check_feature_arguments, select_levels
from deepvision.models.segmentation.segformer import feature_levels, resolve_pooling
from deepvision.models.segmentation.segformer.encoder_tf import build_stages


@keras.saving.register_keras_serializable(package="deepvision")
class SegFormerTF(DeepVisionModelTF):
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
        check_feature_arguments(features_only, out_indices)
        pool_mode = resolve_pooling(pooling)
        shape = tuple(input_shape) if input_shape is not None else (None, None, 3)
        levels = feature_levels(embed_dims, strides)
        _, positions = select_levels(levels, out_indices, default=range(len(levels))) if features_only else ([], None)
        count = positions[-1] + 1 if features_only else len(levels)
        stages = build_stages(embed_dims, depths, num_heads, sr_ratios, patch_sizes, strides, mlp_ratio,
                              layer_norm_epsilon, dropout, attention_dropout, drop_path_rate, shape[-1], count)
        with_head = include_top and not features_only
        decode_head = SegFormerHeadTF(classes, embed_dims, decoder_dim, head_dropout, batch_norm_momentum,
                                      batch_norm_epsilon, name="decode_head") if with_head else None

        inputs = keras.Input(shape=shape)
        x, maps = inputs, []
        for stage in stages:
            x = stage(x)
            maps.append(x)
        if features_only:
            outputs = [maps[p] for p in positions]
        elif with_head:
            outputs = decode_head(maps)
        elif pool_mode is not None:
            outputs = ops.mean(x, axis=(1, 2)) if pool_mode == "avg" else ops.max(x, axis=(1, 2))
        else:
            outputs = x
        kwargs.setdefault("name", "segformer")
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # Public attributes in the same order as SegFormerPT: they define the canonical names.
        self.stages = stages
        self.decode_head = decode_head
        self.pool_mode = pool_mode
        self.num_features = int(embed_dims[-1])
        self._store_config(arguments)
        pruned = [f"stages.{i}" for i in range(count, len(levels))] + (["decode_head"] if features_only else [])
        self._dv_init_features(levels, positions, pruned)

    def _dv_checkpoint_layers(self) -> list:
        return [block for stage in self.stages for block in stage.blocks]

    def forward_features(self, x, training: bool = False) -> list:
        """The encoder's stage maps ``[(B, H/4, W/4, C1), ..., (B, H/32, W/32, C4)]``."""
        maps = []
        for stage in self.stages:
            x = stage(x, training=training)
            maps.append(x)
        return maps
