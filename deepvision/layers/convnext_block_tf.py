"""Keras implementation of ``ConvNeXtBlock`` (mirrors ``convnext_block_pt.py``; structure in ``convnext_block.py``)."""

from __future__ import annotations

import keras

from deepvision.layers.convnext_block import (
    CONVNEXT_BLOCK_ARGUMENTS,
    check_convnext_block_arguments,
    check_input_channels,
    hidden_width,
)
from deepvision.layers.core_tf import activation_name, depthwise_conv2d
from deepvision.layers.layer_scale_tf import LayerScaleTF
from deepvision.layers.mlp_tf import MLPTF
from deepvision.layers.stochastic_depth_tf import StochasticDepthTF


@keras.saving.register_keras_serializable(package="deepvision")
class ConvNeXtBlockTF(keras.layers.Layer):
    """ConvNeXt block on (N, H, W, C) input."""

    def __init__(
        self,
        projection_dim: int,
        drop_path_rate: float = 0.0,
        layer_scale_init_value: float | None = 1e-6,
        layer_norm_epsilon: float = 1e-6,
        kernel_size: int = 7,
        mlp_ratio: float = 4.0,
        activation: str = "gelu",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        args = check_convnext_block_arguments({name: value for name, value in locals().items()
                                               if name in CONVNEXT_BLOCK_ARGUMENTS})
        for name in CONVNEXT_BLOCK_ARGUMENTS:
            setattr(self, name, args[name])
        self.activation = activation_name(activation)
        dim = self.projection_dim
        self.depthwise_conv = depthwise_conv2d(dim, self.kernel_size, 1, use_bias=True, name="depthwise_conv")
        self.norm = keras.layers.LayerNormalization(axis=-1, epsilon=self.layer_norm_epsilon, name="norm")
        self.mlp = MLPTF(hidden_width(dim, self.mlp_ratio), dim, self.activation, input_dim=dim, name="mlp")
        self.layer_scale = (LayerScaleTF(dim, self.layer_scale_init_value, name="layer_scale")
                            if self.layer_scale_init_value is not None else None)
        self.drop_path = StochasticDepthTF(self.drop_path_rate, name="drop_path")

    def build(self, input_shape) -> None:
        check_input_channels(self.projection_dim, input_shape, -1)
        self.depthwise_conv.build(input_shape)
        self.norm.build(input_shape)
        self.mlp.build(input_shape)
        if self.layer_scale is not None:
            self.layer_scale.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        x = self.mlp(self.norm(self.depthwise_conv(inputs)), training=training)
        if self.layer_scale is not None:
            x = self.layer_scale(x)
        return inputs + self.drop_path(x, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), **{name: getattr(self, name) for name in CONVNEXT_BLOCK_ARGUMENTS}}
