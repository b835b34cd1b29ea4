"""Keras implementation of ``TransformerEncoder`` (mirrors ``transformer_encoder_pt.py``)."""

from __future__ import annotations

import keras

from deepvision import checks
from deepvision.layers.core_tf import CheckedLayer, activation_name
from deepvision.layers.mlp_tf import MLPTF
from deepvision.layers.multi_head_self_attention_tf import MultiHeadSelfAttentionTF
from deepvision.layers.stochastic_depth_tf import StochasticDepthTF


@keras.saving.register_keras_serializable(package="deepvision")
class TransformerEncoderTF(CheckedLayer):
    """Pre-norm block on (B, N, D): norm1 -> attn -> residual, norm2 -> mlp -> residual."""

    def __init__(self, project_dim: int, mlp_dim: int, num_heads: int, mlp_dropout: float = 0.0,
                 attention_dropout: float = 0.0, activation: str = "gelu", layer_norm_epsilon: float = 1e-6,
                 drop_path_rate: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.project_dim = int(project_dim)
        self.mlp_dim = int(mlp_dim)
        self.num_heads = int(num_heads)
        self.mlp_dropout = float(mlp_dropout)
        self.attention_dropout = float(attention_dropout)
        self.activation = activation_name(activation)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.drop_path_rate = float(drop_path_rate)
        self.norm1 = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon)
        self.attn = MultiHeadSelfAttentionTF(self.project_dim, self.num_heads, self.attention_dropout,
                                             projection_dropout=self.mlp_dropout)
        self.norm2 = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon)
        self.mlp = MLPTF(self.mlp_dim, self.project_dim, self.activation, self.mlp_dropout, input_dim=self.project_dim)
        self.drop_path = StochasticDepthTF(self.drop_path_rate)

    def check_input(self, shape) -> None:
        """Raise ``deepvision.checks.InputShapeError`` unless ``shape`` is ``(B, N, project_dim)``."""
        checks.check_tokens("TransformerEncoder", shape, dim=self.project_dim)

    def build(self, input_shape) -> None:
        for layer in (self.norm1, self.attn, self.norm2, self.mlp):
            layer.build(input_shape)
        self.built = True

    def call(self, x, training=None):
        x = x + self.drop_path(self.attn(self.norm1(x), training=training), training=training)
        return x + self.drop_path(self.mlp(self.norm2(x), training=training), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "project_dim": self.project_dim,
            "mlp_dim": self.mlp_dim,
            "num_heads": self.num_heads,
            "mlp_dropout": self.mlp_dropout,
            "attention_dropout": self.attention_dropout,
            "activation": self.activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "drop_path_rate": self.drop_path_rate,
        }
