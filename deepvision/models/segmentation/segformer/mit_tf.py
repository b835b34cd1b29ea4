"""Keras Mix Transformer encoder (mirrors ``mit_pt.py``): transformers' ``SegformerModel``, stage for stage.

Structure (channels-last)::

    stages.i (patch_embed -> blocks -> norm), i = 0..3, at strides 4, 8, 16, 32
    -> include_top: spatial mean of the last map -> head (Dense), as SegformerForImageClassification
       pooling "avg"/"max": pooled last map; None: the last map; features_only: the selected maps
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from deepvision.models.base_tf import DeepVisionModelTF
from deepvision.models.features import check_feature_arguments, select_levels
from deepvision.models.segmentation.segformer import feature_levels, resolve_pooling
from deepvision.models.segmentation.segformer.encoder_tf import build_stages


def _pool(x, mode: str):
    return ops.mean(x, axis=(1, 2)) if mode == "avg" else ops.max(x, axis=(1, 2))


@keras.saving.register_keras_serializable(package="deepvision")
class MiTTF(DeepVisionModelTF):
    """Mix Transformer (MiT) encoder, generic over widths, depths, heads and reductions.

    Args (as ``deepvision.models.segmentation.segformer.MIT_ARGUMENTS``): ``include_top`` (classifier on
    the spatial mean of the last stage), ``classes``, ``input_shape`` (channels-last; ``None``: any
    size, 3 channels), ``pooling`` (``None``/``"avg"``/``"max"`` without the top), ``drop_path_rate``
    (linear over all blocks), ``features_only`` / ``out_indices`` (stage maps at strides 4..32),
    ``embed_dims``, ``depths``, ``num_heads``, ``sr_ratios``, ``patch_sizes``, ``strides``,
    ``mlp_ratio``, ``layer_norm_epsilon``, ``dropout``, ``attention_dropout``.

    Input ``(B, H, W, C)``; output logits ``(B, classes)``, pooled ``(B, C4)``, the last map
    ``(B, H/32, W/32, C4)`` or a list of maps.
    """

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
        **kwargs,
    ) -> None:
        arguments = dict(locals())
        check_feature_arguments(features_only, out_indices)
        pool_mode = resolve_pooling(pooling)
        shape = tuple(input_shape) if input_shape is not None else (None, None, 3)
        levels = feature_levels(embed_dims, strides)
        selected, positions = (select_levels(levels, out_indices, default=range(len(levels)))
                               if features_only else ([], None))
        count = positions[-1] + 1 if features_only else len(levels)
        stages = build_stages(embed_dims, depths, num_heads, sr_ratios, patch_sizes, strides, mlp_ratio,
                              layer_norm_epsilon, dropout, attention_dropout, drop_path_rate, shape[-1], count)
        with_top = include_top and not features_only
        head = keras.layers.Dense(classes, dtype="float32", name="head") if with_top else None

        inputs = keras.Input(shape=shape)
        x, maps = inputs, []
        for stage in stages:
            x = stage(x)
            maps.append(x)
        if features_only:
            outputs = [maps[p] for p in positions]
        elif with_top:
            outputs = head(_pool(x, "avg"))
        elif pool_mode is not None:
            outputs = _pool(x, pool_mode)
        else:
            outputs = x
        kwargs.setdefault("name", "mit")
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # Public attributes in the same order as MiTPT: they define the canonical names.
        self.stages = stages
        self.head = head
        self.pool_mode = pool_mode
        self.num_features = int(embed_dims[-1])
        self._store_config(arguments)
        pruned = [f"stages.{i}" for i in range(count, len(levels))] + (["head"] if features_only else [])
        self._dv_init_features(levels, positions, pruned)

    def _dv_checkpoint_layers(self) -> list:
        return [block for stage in self.stages for block in stage.blocks]

    def forward_features(self, x, training: bool = False) -> list:
        """The four stage maps ``[(B, H/4, W/4, C1), ..., (B, H/32, W/32, C4)]``."""
        maps = []
        for stage in self.stages:
            x = stage(x, training=training)
            maps.append(x)
        return maps
