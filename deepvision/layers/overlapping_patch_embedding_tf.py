"""Keras implementation of ``OverlappingPatchEmbedding`` (mirrors ``overlapping_patch_embedding_pt.py``)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="deepvision")
class OverlappingPatchEmbeddingTF(keras.layers.Layer):
    """(B, H, W, C) -> (B, h, w, D): zero-pad ``patch_size // 2``, 'valid' strided conv, LayerNorm."""

    def __init__(self, project_dim: int, patch_size: int = 7, stride: int = 4, input_dim: int = 3,
                 layer_norm_epsilon: float = 1e-5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.project_dim = int(project_dim)
        self.patch_size = int(patch_size)
        self.stride = int(stride)
        self.input_dim = int(input_dim)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        # Explicit symmetric padding + 'valid': TensorFlow's "same" would pad asymmetrically by input size.
        self.projection = keras.layers.Conv2D(self.project_dim, self.patch_size, strides=self.stride,
                                              padding="valid", use_bias=True)
        self.norm = keras.layers.LayerNormalization(axis=-1, epsilon=self.layer_norm_epsilon)

    def build(self, input_shape) -> None:
        if input_shape[-1] is not None and input_shape[-1] != self.input_dim:
            raise ValueError(f"OverlappingPatchEmbedding expects {self.input_dim} input channels, got "
                             f"{input_shape[-1]}: set input_dim.")
        self.projection.build((None, None, None, self.input_dim))
        self.norm.build((None, None, None, self.project_dim))
        self.built = True

    def call(self, x):
        pad = self.patch_size // 2
        x = ops.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        return self.norm(self.projection(x))

    def compute_output_shape(self, input_shape):
        from deepvision.layers.overlapping_patch_embedding import output_size

        h, w = (None if s is None else output_size(s, self.patch_size, self.stride) for s in input_shape[1:3])
        return (input_shape[0], h, w, self.project_dim)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "project_dim": self.project_dim,
            "patch_size": self.patch_size,
            "stride": self.stride,
            "input_dim": self.input_dim,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }
