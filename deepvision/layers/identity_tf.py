"""Keras implementation of ``Identity`` (mirrors ``identity_pt.py``)."""

from __future__ import annotations

import keras


class IdentityTF(keras.layers.Layer):
    """Returns its input unchanged; any shape."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)

    def call(self, inputs, training=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape
