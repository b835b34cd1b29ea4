"""PyTorch bilinear resize with half-pixel centres (mirrors ``upsample_tf.py``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def resize_bilinear(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, size[0], size[1]); ``align_corners=False`` (half-pixel centres), no antialias."""
    # Symbolic sizes stay symbolic (torch.export / ONNX with dynamic height and width).
    size = tuple(s if isinstance(s, torch.SymInt) else int(s) for s in size[:2])
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
