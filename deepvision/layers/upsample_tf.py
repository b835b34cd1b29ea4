"""Keras bilinear resize with half-pixel centres (mirrors ``upsample_pt.py``)."""

from __future__ import annotations

from collections.abc import Sequence

from keras import ops


def resize_bilinear(x, size: Sequence):
    """(B, H, W, C) -> (B, size[0], size[1], C); half-pixel centres, no antialias (upsampling)."""
    return ops.image.resize(x, tuple(size), interpolation="bilinear", antialias=False,
                            data_format="channels_last")
