"""Keras Mix Transformer encoder, shared by ``MiTTF`` and ``SegFormerTF`` (mirrors ``encoder_pt.py``)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from deepvision.layers.hierarchical_transformer_encoder_tf import HierarchicalTransformerEncoderTF
from deepvision.layers.overlapping_patch_embedding_tf import OverlappingPatchEmbeddingTF
from deepvision.models.base_tf import DeepVisionModelTF
from deepvision.models.segmentation.segformer import (
    STAGE_KEYS,
    EncoderLayout,
    check_encoder_config,
    drop_path_rates,
)


@keras.saving.register_keras_serializable(package="deepvision")
class MiTStageTF(keras.layers.Layer):
    """(B, H, W, C_in) -> (B, h, w, D): overlapping patch embedding, MiT blocks, LayerNorm."""

    def __init__(self, input_dim: int, project_dim: int, depth: int, num_heads: int, sr_ratio: int,
                 patch_size: int, stride: int, mlp_ratio: int, layer_norm_epsilon: float, dropout: float,
                 attention_dropout: float, drop_path_rates: Sequence[float], **kwargs) -> None:
        super().__init__(**kwargs)
        self.args = dict(input_dim=int(input_dim), project_dim=int(project_dim), depth=int(depth),
                         num_heads=int(num_heads), sr_ratio=int(sr_ratio), patch_size=int(patch_size),
                         stride=int(stride), mlp_ratio=int(mlp_ratio), layer_norm_epsilon=float(layer_norm_epsilon),
                         dropout=float(dropout), attention_dropout=float(attention_dropout),
                         drop_path_rates=[float(r) for r in drop_path_rates])
        self.patch_embed = OverlappingPatchEmbeddingTF(project_dim, patch_size, stride, input_dim, layer_norm_epsilon)
        self.blocks = [
            HierarchicalTransformerEncoderTF(project_dim, num_heads, int(project_dim) * int(mlp_ratio), sr_ratio,
                                             layer_norm_epsilon, "gelu", dropout, attention_dropout, rate)
            for rate in drop_path_rates
        ]
        self.norm = keras.layers.LayerNormalization(axis=-1, epsilon=float(layer_norm_epsilon))

    def build(self, input_shape) -> None:
        dim = self.args["project_dim"]
        self.patch_embed.build((None, None, None, self.args["input_dim"]))
        for block in self.blocks:
            block.build((None, None, None, dim))
        self.norm.build((None, None, None, dim))
        self.built = True

    def call(self, x, training=None):
        x = self.patch_embed(x)
        for block in self.blocks:
            x = block(x, training=training)
        return self.norm(x)

    def compute_output_shape(self, input_shape):
        return self.patch_embed.compute_output_shape(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), **self.args}


def build_stages(embed_dims, depths, num_heads, sr_ratios, patch_sizes, strides, mlp_ratio, layer_norm_epsilon,
                 dropout, attention_dropout, drop_path_rate, in_channels: int, count: int) -> list[MiTStageTF]:
    """The first ``count`` stages of a MiT encoder (``count`` < 4 when a features model prunes later ones)."""
    check_encoder_config(embed_dims, depths, num_heads, sr_ratios, patch_sizes, strides)
    rates = drop_path_rates(drop_path_rate, depths)
    stages, previous = [], int(in_channels)
    for i in range(count):
        stages.append(MiTStageTF(previous, embed_dims[i], depths[i], num_heads[i], sr_ratios[i], patch_sizes[i],
                                 strides[i], mlp_ratio, layer_norm_epsilon, dropout, attention_dropout, rates[i]))
        previous = int(embed_dims[i])
    return stages


def pool(x, mode: str):
    """``(B, h, w, C) -> (B, C)``: spatial mean (``"avg"``) or max (``"max"``)."""
    return ops.mean(x, axis=(1, 2)) if mode == "avg" else ops.max(x, axis=(1, 2))


def encoder_graph(arguments: dict) -> tuple[EncoderLayout, keras.KerasTensor, list[MiTStageTF], list]:
    """The functional graph of the encoder: ``(layout, inputs, stages, stage maps)``."""
    layout = EncoderLayout(arguments)
    shape = tuple(arguments["input_shape"]) if arguments["input_shape"] is not None else (None, None, 3)
    stages = build_stages(*(arguments[k] for k in STAGE_KEYS), shape[-1], layout.count)
    inputs = keras.Input(shape=shape)
    x, maps = inputs, []
    for stage in stages:
        x = stage(x)
        maps.append(x)
    return layout, inputs, stages, maps


def encoder_output(maps: list, layout: EncoderLayout):
    """The output without a top: the selected maps, the pooled last map, or the last map."""
    if layout.features_only:
        return [maps[p] for p in layout.positions]
    return maps[-1] if layout.pool_mode is None else pool(maps[-1], layout.pool_mode)


class MiTEncoderTF(DeepVisionModelTF):
    """What ``MiTTF`` and ``SegFormerTF`` share (mirrors ``MiTEncoderPT``).

    A subclass builds its graph with :func:`encoder_graph`, calls the functional constructor, assigns
    ``stages`` then its top (the order defines the canonical names), then :meth:`_dv_finish_encoder`.
    """

    def _dv_finish_encoder(self, arguments: dict, layout: EncoderLayout, top: str) -> None:
        self.pool_mode = layout.pool_mode
        self.num_features = int(arguments["embed_dims"][-1])
        self._store_config(arguments)
        self._dv_init_features(layout.levels, layout.positions, layout.pruned(top))

    def _dv_checkpoint_layers(self) -> list:
        return [block for stage in self.stages for block in stage.blocks]

    def forward_features(self, x, training: bool = False) -> list:
        """The stage maps ``[(B, H/4, W/4, C1), ..., (B, H/32, W/32, C4)]`` (those built)."""
        maps = []
        for stage in self.stages:
            x = stage(x, training=training)
            maps.append(x)
        return maps
