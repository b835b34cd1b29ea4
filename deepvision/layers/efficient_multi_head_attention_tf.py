"""Keras implementation of ``EfficientMultiHeadAttention`` (mirrors ``efficient_multi_head_attention_pt.py``)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="deepvision")
class EfficientMultiHeadAttentionTF(keras.layers.Layer):
    """(B, H, W, D) -> (B, H, W, D): queries from every pixel, keys/values from the reduced map."""

    def __init__(self, project_dim: int, num_heads: int, sr_ratio: int = 1, layer_norm_epsilon: float = 1e-5,
                 attention_dropout: float = 0.0, projection_dropout: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if project_dim % num_heads:
            raise ValueError(f"project_dim={project_dim} is not divisible by num_heads={num_heads}")
        self.project_dim = int(project_dim)
        self.num_heads = int(num_heads)
        self.head_dim = self.project_dim // self.num_heads
        self.sr_ratio = int(sr_ratio)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.attention_dropout = float(attention_dropout)
        self.projection_dropout = float(projection_dropout)
        self.query = keras.layers.Dense(self.project_dim, use_bias=True)
        self.key = keras.layers.Dense(self.project_dim, use_bias=True)
        self.value = keras.layers.Dense(self.project_dim, use_bias=True)
        if self.sr_ratio > 1:
            self.reduction = keras.layers.Conv2D(self.project_dim, self.sr_ratio, strides=self.sr_ratio,
                                                 padding="valid", use_bias=True)
            self.reduction_norm = keras.layers.LayerNormalization(axis=-1, epsilon=self.layer_norm_epsilon)
        else:
            self.reduction = self.reduction_norm = None
        self.attention_drop = keras.layers.Dropout(self.attention_dropout)
        self.proj = keras.layers.Dense(self.project_dim, use_bias=True)
        self.proj_drop = keras.layers.Dropout(self.projection_dropout)

    def build(self, input_shape) -> None:
        shape = (None, None, None, self.project_dim)
        for layer in (self.query, self.key, self.value, self.proj):
            layer.build(shape)
        if self.reduction is not None:
            self.reduction.build(shape)
            self.reduction_norm.build(shape)
        self.built = True

    def _heads(self, x, batch):
        # (B, h, w, D) -> (B, heads, h*w, head_dim), tokens in row-major order.
        return ops.transpose(ops.reshape(x, (batch, -1, self.num_heads, self.head_dim)), (0, 2, 1, 3))

    def call(self, x, training=None):
        shape = ops.shape(x)
        batch, height, width = shape[0], shape[1], shape[2]
        q = self._heads(self.query(x), batch)
        source = x if self.reduction is None else self.reduction_norm(self.reduction(x))
        k = self._heads(self.key(source), batch)
        v = self._heads(self.value(source), batch)
        logits = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * (self.head_dim**-0.5)
        # Softmax in float32 even under mixed precision.
        attention = ops.cast(ops.softmax(ops.cast(logits, "float32"), axis=-1), v.dtype)
        attention = self.attention_drop(attention, training=training)
        out = ops.transpose(ops.matmul(attention, v), (0, 2, 1, 3))  # (B, N, heads, head_dim)
        out = ops.reshape(out, (batch, height, width, self.project_dim))
        return self.proj_drop(self.proj(out), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "project_dim": self.project_dim,
            "num_heads": self.num_heads,
            "sr_ratio": self.sr_ratio,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "attention_dropout": self.attention_dropout,
            "projection_dropout": self.projection_dropout,
        }
