"""Keras implementation of ``SegFormerHead`` (mirrors ``segformer_head_pt.py``)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from deepvision.layers.core_tf import batch_norm
from deepvision.layers.upsample_tf import resize_bilinear


@keras.saving.register_keras_serializable(package="deepvision")
class SegFormerHeadTF(keras.layers.Layer):
    """[(B, H_i, W_i, C_i)] -> (B, H_0, W_0, classes): project, upsample, concat deepest first, fuse, classify."""

    def __init__(self, classes: int, in_dims: Sequence[int], decoder_dim: int = 256, dropout: float = 0.1,
                 batch_norm_momentum: float = 0.9, batch_norm_epsilon: float = 1e-5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.classes = int(classes)
        self.in_dims = [int(d) for d in in_dims]
        self.decoder_dim = int(decoder_dim)
        self.dropout = float(dropout)
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.batch_norm_epsilon = float(batch_norm_epsilon)
        self.projections = [keras.layers.Dense(self.decoder_dim, use_bias=True) for _ in self.in_dims]
        self.fuse = keras.layers.Conv2D(self.decoder_dim, 1, use_bias=False)
        self.fuse_norm = batch_norm(self.batch_norm_momentum, self.batch_norm_epsilon)
        self.act = keras.layers.ReLU()
        self.drop = keras.layers.Dropout(self.dropout)
        # float32 logits under mixed precision.
        self.classifier = keras.layers.Conv2D(self.classes, 1, use_bias=True, dtype="float32")
        # Every input width is known: create the weights now (legacy .h5 reloading needs them in __init__).
        self.build(None)

    def build(self, input_shape) -> None:
        for projection, dim in zip(self.projections, self.in_dims):
            projection.build((None, None, None, dim))
        self.fuse.build((None, None, None, self.decoder_dim * len(self.in_dims)))
        self.fuse_norm.build((None, None, None, self.decoder_dim))
        self.classifier.build((None, None, None, self.decoder_dim))
        self.built = True

    def call(self, features, training=None):
        if len(features) != len(self.in_dims):
            raise ValueError(f"SegFormerHead expects {len(self.in_dims)} feature maps, got {len(features)}")
        size = ops.shape(features[0])[1:3]
        maps = []
        for i, (x, projection) in enumerate(zip(features, self.projections)):
            x = projection(x)
            maps.append(x if i == 0 else resize_bilinear(x, size))  # the first map sets the size
        x = self.fuse(ops.concatenate(maps[::-1], axis=-1))
        x = self.drop(self.act(self.fuse_norm(x, training=training)), training=training)
        return self.classifier(x)

    def compute_output_shape(self, input_shape):
        first = input_shape[0]
        return (first[0], first[1], first[2], self.classes)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "classes": self.classes,
            "in_dims": list(self.in_dims),
            "decoder_dim": self.decoder_dim,
            "dropout": self.dropout,
            "batch_norm_momentum": self.batch_norm_momentum,
            "batch_norm_epsilon": self.batch_norm_epsilon,
        }
