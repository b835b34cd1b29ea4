"""Keras implementation of ``LayerScale`` (mirrors ``layer_scale_pt.py``)."""

from __future__ import annotations

import keras

from deepvision.layers.layer_scale import LAYER_SCALE_ARGUMENTS, check_channels, check_layer_scale_arguments


@keras.saving.register_keras_serializable(package="deepvision")
class LayerScaleTF(keras.layers.Layer):
    """``x * gamma`` on the last axis of (..., C) input; ``gamma`` (C,) is created in ``__init__``."""

    def __init__(self, projection_dim: int, init_value: float = 1e-6, **kwargs) -> None:
        super().__init__(**kwargs)
        self.projection_dim, self.init_value = check_layer_scale_arguments(projection_dim, init_value)
        # Created here (not in build) so the weight exists before the first call, like the PyTorch
        # parameter, and legacy .h5 reloading of models that contain the block works.
        self.gamma = self.add_weight(
            shape=(self.projection_dim,), initializer=keras.initializers.Constant(self.init_value),
            trainable=True, name="gamma",
        )

    def build(self, input_shape) -> None:
        check_channels(self.projection_dim, input_shape[-1], input_shape)
        self.built = True

    def call(self, x):
        return x * keras.ops.cast(self.gamma, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), **{name: getattr(self, name) for name in LAYER_SCALE_ARGUMENTS}}
