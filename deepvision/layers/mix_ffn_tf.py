"""Keras implementation of ``MixFFN`` (mirrors ``mix_ffn_pt.py``)."""

from __future__ import annotations

import keras

from deepvision.layers.core_tf import Activation, activation_name


@keras.saving.register_keras_serializable(package="deepvision")
class MixFFNTF(keras.layers.Layer):
    """(B, H, W, C) -> (B, H, W, out): fc1, depthwise 3x3, activation, dropout, fc2, dropout."""

    def __init__(self, hidden_dim: int, output_dim: int, input_dim: int | None = None, activation: str = "gelu",
                 dropout: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.output_dim = int(output_dim)
        self.input_dim = None if input_dim is None else int(input_dim)
        self.activation = activation_name(activation)
        self.dropout = float(dropout)
        self.fc1 = keras.layers.Dense(self.hidden_dim, use_bias=True)
        # Stride 1, kernel 3: "same" is the symmetric padding 1 at every size.
        self.dwconv = keras.layers.DepthwiseConv2D(3, strides=1, padding="same", use_bias=True)
        self.act = Activation(self.activation)
        self.drop = keras.layers.Dropout(self.dropout)
        self.fc2 = keras.layers.Dense(self.output_dim, use_bias=True)

    def build(self, input_shape) -> None:
        expected = self.input_dim or self.output_dim
        if input_shape[-1] is not None and input_shape[-1] != expected:
            raise ValueError(f"MixFFN expects {expected} input channels, got {input_shape[-1]}: set input_dim.")
        self.fc1.build((None, None, None, expected))
        self.dwconv.build((None, None, None, self.hidden_dim))
        self.fc2.build((None, None, None, self.hidden_dim))
        self.built = True

    def call(self, x, training=None):
        x = self.drop(self.act(self.dwconv(self.fc1(x))), training=training)
        return self.drop(self.fc2(x), training=training)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.output_dim)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "output_dim": self.output_dim,
            "input_dim": self.input_dim,
            "activation": self.activation,
            "dropout": self.dropout,
        }
