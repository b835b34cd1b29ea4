"""Keras implementation of ``PatchingAndEmbedding`` (mirrors ``patching_and_embedding_pt.py``)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from deepvision import checks
from deepvision.layers.core_tf import CheckedLayer, conv2d
from deepvision.layers.patching_and_embedding import DEFAULT_IMAGE_SHAPE, check_image_size, check_images
from deepvision.models.classification.vit.resample import interpolation_matrices


@keras.saving.register_keras_serializable(package="deepvision")
class PatchingAndEmbeddingTF(CheckedLayer):
    """(B, H, W, C) images -> (B, 1 + N, D) tokens: patch conv, class token, position embedding."""

    def __init__(self, project_dim: int, patch_size: int, input_shape: Sequence[int] | None = None,
                 dynamic_img_size: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        height, width, channels = tuple(input_shape) if input_shape is not None else DEFAULT_IMAGE_SHAPE
        check_image_size(height, width)
        self.channels = int(channels)
        self.project_dim = int(project_dim)
        self.patch_size = int(patch_size)
        self._image_shape = None if input_shape is None else tuple(input_shape)
        self.dynamic_img_size = bool(dynamic_img_size)
        self.grid = (int(height) // self.patch_size, int(width) // self.patch_size)
        self.num_patches = self.grid[0] * self.grid[1]
        # The weights made in build() are declared first, so the canonical order is PyTorch's (a module's
        # own parameters before its children's): class_token, position_embedding, projection.
        self.class_token = None
        self.position_embedding = None
        self.projection = conv2d(channels, self.project_dim, self.patch_size, strides=self.patch_size,
                                 padding="valid", use_bias=True)

    def check_input(self, shape) -> None:
        """Raise ``deepvision.checks.InputShapeError`` for images this block cannot embed (see ``check_images``)."""
        check_images(shape, checks.CHANNELS_LAST, channels=self.channels, patch_size=self.patch_size, grid=self.grid,
                     dynamic_img_size=self.dynamic_img_size)

    def build(self, input_shape) -> None:
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
        grid = self.grid
        if self.dynamic_img_size:
            height, width = images.shape[1], images.shape[2]
            if height is None or width is None:
                raise ValueError(
                    "PatchingAndEmbedding(dynamic_img_size=True) resamples its position embedding with matrices "
                    "built from the image size at trace time, but this trace has an unknown size: call the model "
                    "on concrete tensors (or a tf.function with a fully defined input_signature)."
                )
            grid = (height // self.patch_size, width // self.patch_size)
        x = self.projection(images)  # (B, h, w, D)
        batch = ops.shape(x)[0]
        # Channels-last reshape keeps the patches in row-major order, like timm's flatten(2).transpose(1, 2).
        x = ops.reshape(x, (batch, grid[0] * grid[1], self.project_dim))
        cls = ops.broadcast_to(ops.cast(self.class_token, x.dtype), (batch, 1, self.project_dim))
        x = ops.concatenate([cls, x], axis=1)
        return x + ops.cast(self.resampled_position_embedding(grid), x.dtype)

    def resampled_position_embedding(self, grid: tuple[int, int]):
        """The position embedding (1, 1 + gh*gw, D) for a (gh, gw) patch grid (differentiable).

        The class token's entry is kept; the patch part is resized from ``self.grid`` with the
        numpy resampler's interpolation matrices (``Mh @ grid @ Mw^T``), within float32 rounding
        of ``resample_position_embedding``.
        """
        if tuple(grid) == self.grid:
            return self.position_embedding
        rows, cols = interpolation_matrices(self.grid, tuple(grid))
        embedding = ops.convert_to_tensor(self.position_embedding)
        patches = ops.reshape(embedding[:, 1:], (1, self.grid[0], self.grid[1], self.project_dim))
        if cols is not None:
            patches = ops.einsum("jb,nabd->najd", ops.convert_to_tensor(cols, dtype=patches.dtype), patches)
        if rows is not None:
            patches = ops.einsum("ia,najd->nijd", ops.convert_to_tensor(rows, dtype=patches.dtype), patches)
        patches = ops.reshape(patches, (1, grid[0] * grid[1], self.project_dim))
        return ops.concatenate([embedding[:, :1], patches], axis=1)

    def compute_output_shape(self, input_shape):
        if self.dynamic_img_size:
            if input_shape[1] is None or input_shape[2] is None:
                return (input_shape[0], None, self.project_dim)
            return (input_shape[0], 1 + (input_shape[1] // self.patch_size) * (input_shape[2] // self.patch_size),
                    self.project_dim)
        return (input_shape[0], 1 + self.num_patches, self.project_dim)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "project_dim": self.project_dim,
            "patch_size": self.patch_size,
            "input_shape": None if self._image_shape is None else list(self._image_shape),
            "dynamic_img_size": self.dynamic_img_size,
        }
