"""Bilinear resizing with half-pixel centres, the same in both backends.

``upsample_bilinear(x, size)`` resizes a batch of feature maps or logits to ``size = (height, width)``
the way transformers' SegFormer does (``F.interpolate(mode="bilinear", align_corners=False)``): pixel
centres at half-integers, no antialiasing, no corner alignment. Keras tensors are channels-last
(B, H, W, C) and use ``keras.ops.image.resize(interpolation="bilinear", antialias=False)``; torch
tensors are channels-first (B, C, H, W). Both agree within 1e-5 when upsampling (tested). Use it to
bring SegFormer's 1/4-resolution logits to the label size::

    logits = model(images)                                   # (B, H/4, W/4, classes) in Keras
    full = upsample_bilinear(logits, images.shape[1:3])      # (B, H, W, classes)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any


def _is_torch(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def upsample_bilinear(x: Any, size: Sequence[int]) -> Any:
    """Resize ``x`` to ``size`` (height, width): torch (B, C, H, W) or Keras/TensorFlow (B, H, W, C)."""
    if len(size) != 2:
        raise ValueError(f"size must be (height, width), got {size!r}")
    if _is_torch(x):
        from deepvision.layers.upsample_pt import resize_bilinear
    else:
        from deepvision.layers.upsample_tf import resize_bilinear
    return resize_bilinear(x, size)
