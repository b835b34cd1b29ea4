"""Keras implementation of ``HierarchicalTransformerEncoder`` (mirrors ``hierarchical_transformer_encoder_pt.py``)."""

from __future__ import annotations

import keras

from deepvision.layers.core_tf import activation_name
from deepvision.layers.efficient_multi_head_attention_tf import EfficientMultiHeadAttentionTF
from deepvision.layers.mix_ffn_tf import MixFFNTF
from deepvision.layers.stochastic_depth_tf import StochasticDepthTF


@keras.saving.register_keras_serializable(package="deepvision")
class HierarchicalTransformerEncoderTF(keras.layers.Layer):
    """(B, H, W, D) -> (B, H, W, D): norm1 -> attn -> residual, norm2 -> MixFFN -> residual."""

    def __init__(self, project_dim: int, num_heads: int, mlp_dim: int, sr_ratio: int = 1,
                 layer_norm_epsilon: float = 1e-5, activation: str = "gelu", dropout: float = 0.0,
                 attention_dropout: float = 0.0, drop_path_rate: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.project_dim = int(project_dim)
        self.num_heads = int(num_heads)
        self.mlp_dim = int(mlp_dim)
        self.sr_ratio = int(sr_ratio)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.activation = activation_name(activation)
        self.dropout = float(dropout)
        self.attention_dropout = float(attention_dropout)
        self.drop_path_rate = float(drop_path_rate)
        self.norm1 = keras.layers.LayerNormalization(axis=-1, epsilon=self.layer_norm_epsilon)
        self.attn = EfficientMultiHeadAttentionTF(self.project_dim, self.num_heads, self.sr_ratio,
                                                  self.layer_norm_epsilon, self.attention_dropout, self.dropout)
        self.norm2 = keras.layers.LayerNormalization(axis=-1, epsilon=self.layer_norm_epsilon)
        self.mlp = MixFFNTF(self.mlp_dim, self.project_dim, self.project_dim, self.activation, self.dropout)
        self.drop_path = StochasticDepthTF(self.drop_path_rate)

    def build(self, input_shape) -> None:
        shape = (None, None, None, self.project_dim)
        for layer in (self.norm1, self.attn, self.norm2, self.mlp):
            layer.build(shape)
        self.built = True

    def call(self, x, training=None):
        x = x + self.drop_path(self.attn(self.norm1(x), training=training), training=training)
        return x + self.drop_path(self.mlp(self.norm2(x), training=training), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "project_dim": self.project_dim,
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "sr_ratio": self.sr_ratio,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "activation": self.activation,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "drop_path_rate": self.drop_path_rate,
        }
