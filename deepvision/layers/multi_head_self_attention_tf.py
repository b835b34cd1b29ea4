"""Keras implementation of ``MultiHeadSelfAttention`` (mirrors ``multi_head_self_attention_pt.py``)."""

from __future__ import annotations

import keras
from keras import ops

from deepvision import checks
from deepvision.layers.core_tf import CheckedLayer
from deepvision.layers.multi_head_self_attention import check_arguments


@keras.saving.register_keras_serializable(package="deepvision")
class MultiHeadSelfAttentionTF(CheckedLayer):
    """Tokens (B, N, D) -> (B, N, D); fused qkv Dense (D -> 3D), softmax(q k^T / sqrt(d)) v, proj Dense."""

    def __init__(self, project_dim: int, num_heads: int, attention_dropout: float = 0.0,
                 projection_dropout: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        check_arguments(project_dim, num_heads)
        self.project_dim = int(project_dim)
        self.num_heads = int(num_heads)
        self.head_dim = self.project_dim // self.num_heads
        self.attention_dropout = float(attention_dropout)
        self.projection_dropout = float(projection_dropout)
        self.qkv = keras.layers.Dense(3 * self.project_dim, use_bias=True)
        self.attention_drop = keras.layers.Dropout(self.attention_dropout)
        self.proj = keras.layers.Dense(self.project_dim, use_bias=True)
        self.proj_drop = keras.layers.Dropout(self.projection_dropout)

    def check_input(self, shape) -> None:
        """Raise ``deepvision.checks.InputShapeError`` unless ``shape`` is ``(B, N, project_dim)``."""
        checks.check_tokens("MultiHeadSelfAttention", shape, dim=self.project_dim)

    def build(self, input_shape) -> None:
        self.qkv.build(input_shape)
        self.proj.build((*input_shape[:-1], self.project_dim))
        self.built = True

    def call(self, x, training=None):
        batch, tokens = ops.shape(x)[0], ops.shape(x)[1]
        qkv = ops.reshape(self.qkv(x), (batch, tokens, 3, self.num_heads, self.head_dim))
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))  # (3, B, heads, N, head_dim)
        q, k, v = qkv[0], qkv[1], qkv[2]
        logits = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * (self.head_dim**-0.5)
        # Softmax in float32 even under mixed precision (what SDPA does internally).
        attention = ops.cast(ops.softmax(ops.cast(logits, "float32"), axis=-1), v.dtype)
        attention = self.attention_drop(attention, training=training)
        out = ops.transpose(ops.matmul(attention, v), (0, 2, 1, 3))  # (B, N, heads, head_dim)
        out = ops.reshape(out, (batch, tokens, self.project_dim))
        return self.proj_drop(self.proj(out), training=training)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.project_dim)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "project_dim": self.project_dim,
            "num_heads": self.num_heads,
            "attention_dropout": self.attention_dropout,
            "projection_dropout": self.projection_dropout,
        }
