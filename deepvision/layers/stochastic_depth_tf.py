"""Keras implementation of ``StochasticDepth`` (mirrors ``stochastic_depth_pt.py``)."""

from __future__ import annotations

import keras

from deepvision.layers.stochastic_depth import check_arguments


@keras.saving.register_keras_serializable(package="deepvision")
class StochasticDepthTF(keras.layers.Layer):
    """Per-sample drop path on (N, ...) input; identity in inference mode or at ``drop_prob == 0``."""

    def __init__(self, drop_prob: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.drop_prob = check_arguments(drop_prob)
        # Only a layer that can drop needs random state (like keras.layers.Dropout).
        self.seed_generator = keras.random.SeedGenerator() if self.drop_prob > 0 else None

    def call(self, inputs, training=None):
        if not training or self.drop_prob == 0.0:
            return inputs
        keep = 1.0 - self.drop_prob
        if keep == 0.0:
            return keras.ops.zeros_like(inputs)
        shape = (keras.ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        # floor(keep + U[0, 1)) is 1 with probability keep; drawn in float32 whatever the compute dtype.
        mask = keras.ops.floor(keep + keras.random.uniform(shape, dtype="float32", seed=self.seed_generator))
        return inputs * keras.ops.cast(mask / keep, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "drop_prob": self.drop_prob}
