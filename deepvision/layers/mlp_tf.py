"""Keras implementation of ``MLP`` (mirrors ``mlp_pt.py``)."""

from __future__ import annotations

import keras

from deepvision import checks
from deepvision.layers.core_tf import Activation, CheckedLayer, activation_name


@keras.saving.register_keras_serializable(package="deepvision")
class MLPTF(CheckedLayer):
    """(..., in) -> (..., out): fc1, activation, dropout, fc2, dropout."""

    def __init__(self, hidden_dim: int, output_dim: int, activation: str = "gelu", dropout: float = 0.0,
                 input_dim: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.output_dim = int(output_dim)
        self.activation = activation_name(activation)
        self.dropout = float(dropout)
        self.input_dim = None if input_dim is None else int(input_dim)
        self.fc1 = keras.layers.Dense(self.hidden_dim, use_bias=True)
        self.act = Activation(self.activation)
        self.drop = keras.layers.Dropout(self.dropout)
        self.fc2 = keras.layers.Dense(self.output_dim, use_bias=True)

    def check_input(self, shape) -> None:
        """Raise ``deepvision.checks.InputShapeError`` unless ``shape`` is ``(..., input_dim)``."""
        checks.check_tokens("MLP", shape, dim=self.input_dim or self.output_dim, rank=None, hint="set input_dim")

    def build(self, input_shape) -> None:
        self.fc1.build(input_shape)
        self.fc2.build((*input_shape[:-1], self.hidden_dim))
        self.built = True

    def call(self, x, training=None):
        x = self.drop(self.act(self.fc1(x)), training=training)
        return self.drop(self.fc2(x), training=training)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.output_dim)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "output_dim": self.output_dim,
            "activation": self.activation,
            "dropout": self.dropout,
            "input_dim": self.input_dim,
        }
