"""Keras implementation of ``PatchingAndEmbedding`` (mirrors ``patching_and_embedding_pt.py``)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from deepvision.layers.core_tf import conv2d
from deepvision.layers.patching_and_embedding import DEFAULT_IMAGE_SHAPE


@keras.saving.register_keras_serializable(package="deepvision")
class PatchingAndEmbeddingTF(keras.layers.Layer):
    """(B, H, W, C) images -> (B, 1 + N, D) tokens: patch conv, class token, position embedding."""

    def __init__(self, project_dim: int, patch_size: int, input_shape: Sequence[int] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        height, width, channels = tuple(input_shape) if input_shape is not None else DEFAULT_IMAGE_SHAPE
        if height is None or width is None:
            raise ValueError("PatchingAndEmbedding needs a fixed image size (its position embedding has one entry per patch).")
        self.project_dim = int(project_dim)
        self.patch_size = int(patch_size)
        self._image_shape = None if input_shape is None else tuple(input_shape)
        self.grid = (int(height) // self.patch_size, int(width) // self.patch_size)
        self.num_patches = self.grid[0] * self.grid[1]
        self.projection = conv2d(channels, self.project_dim, self.patch_size, strides=self.patch_size,
                                 padding="valid", use_bias=True)

    def build(self, input_shape) -> None:
        if input_shape[1] is not None and input_shape[2] is not None:
            grid = (input_shape[1] // self.patch_size, input_shape[2] // self.patch_size)
            if grid != self.grid:
                raise ValueError(
                    f"PatchingAndEmbedding was made for a {self.grid[0]}x{self.grid[1]} patch grid but got "
                    f"images of {input_shape[1]}x{input_shape[2]}: pass input_shape to match."
                )
        self.projection.build(input_shape)
        self.class_token = self.add_weight(
            shape=(1, 1, self.project_dim), initializer=keras.initializers.RandomNormal(stddev=1e-6),
            name="class_token",
        )
        self.position_embedding = self.add_weight(
            shape=(1, 1 + self.num_patches, self.project_dim),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02), name="position_embedding",
        )
        self.built = True

    def call(self, images):
        x = self.projection(images)  # (B, h, w, D)
        batch = ops.shape(x)[0]
        # Channels-last reshape keeps the patches in row-major order, like timm's flatten(2).transpose(1, 2).
        x = ops.reshape(x, (batch, self.num_patches, self.project_dim))
        cls = ops.broadcast_to(ops.cast(self.class_token, x.dtype), (batch, 1, self.project_dim))
        x = ops.concatenate([cls, x], axis=1)
        return x + ops.cast(self.position_embedding, x.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1 + self.num_patches, self.project_dim)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "project_dim": self.project_dim,
            "patch_size": self.patch_size,
            "input_shape": None if self._image_shape is None else list(self._image_shape),
        }
