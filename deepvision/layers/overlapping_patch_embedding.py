"""``OverlappingPatchEmbedding``: SegFormer's (MiT's) overlapping patch embedding.

A convolution with kernel ``patch_size``, stride ``stride`` and symmetric zero padding
``patch_size // 2`` (PyTorch's rule, not TensorFlow's "same": at odd sizes the output floors,
``(n + 2 * (patch_size // 2) - patch_size) // stride + 1``, identically in both backends), then a
LayerNorm over the channels. Images in, feature maps out (channels-last in Keras, channels-first
in PyTorch). Canonical tensors: ``projection.kernel`` (k, k, C, D), ``projection.bias`` (D,),
``norm.gamma`` / ``norm.beta`` (D,) (transformers' ``patch_embeddings.i.proj`` / ``.layer_norm``).
"""

from __future__ import annotations

from typing import Any

from deepvision.layers._block import build_block, register_block
from deepvision.portable import portable_converters

ARCHITECTURE = register_block(
    "OverlappingPatchEmbedding",
    "overlapping_patch_embedding",
    build_shape=lambda c: (None, None, c.get("input_dim") or 3),
    reference_config={"project_dim": 16, "patch_size": 7, "stride": 4, "input_dim": 3},
)


def output_size(size: int, patch_size: int, stride: int) -> int:
    """Side of the output grid for an input side ``size`` (floors at odd sizes)."""
    return (int(size) + 2 * (int(patch_size) // 2) - int(patch_size)) // int(stride) + 1


def OverlappingPatchEmbedding(
    project_dim: int,
    patch_size: int = 7,
    stride: int = 4,
    input_dim: int = 3,
    layer_norm_epsilon: float = 1e-5,
    backend: str | None = None,
    **kwargs: Any,
) -> Any:
    """Images (B, H, W, C) / (B, C, H, W) -> feature maps (B, h, w, D) / (B, D, h, w).

    Args:
        project_dim: output channels D.
        patch_size: convolution kernel (7 for MiT's first stage, 3 after); padding is ``patch_size // 2``.
        stride: convolution stride (4 for the first stage, 2 after).
        input_dim: input channels C (PyTorch needs it to create the convolution).
        layer_norm_epsilon: epsilon of the LayerNorm (transformers: 1e-5).
        backend: ``"tensorflow"`` or ``"pytorch"``.
    """
    return build_block("OverlappingPatchEmbedding", locals())


tf_to_pt, pt_to_tf = portable_converters("OverlappingPatchEmbedding")
