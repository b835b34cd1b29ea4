"""``EfficientMultiHeadAttention``: SegFormer's spatial-reduction self-attention.

Queries come from every token of the feature map; keys and values from the map reduced by a
``sr_ratio`` x ``sr_ratio`` convolution of stride ``sr_ratio`` (no padding: it floors at sizes that
are not multiples) followed by a LayerNorm, which cuts the attention cost by ``sr_ratio**2``.
Feature maps in and out (channels-last in Keras, channels-first in PyTorch); tokens are the map's
pixels in row-major order. Canonical tensors: ``query``/``key``/``value``/``proj`` ``.kernel`` (D, D)
and ``.bias`` (D,); with ``sr_ratio > 1`` also ``reduction.kernel`` (r, r, D, D), ``reduction.bias``,
``reduction_norm.gamma``/``.beta`` (transformers' ``attention.self.query`` ... ``attention.self.sr``,
``attention.self.layer_norm``, ``attention.output.dense``).
"""

from __future__ import annotations

from typing import Any

from deepvision.layers._block import build_block, register_block
from deepvision.portable import portable_converters

ARCHITECTURE = register_block(
    "EfficientMultiHeadAttention",
    "efficient_multi_head_attention",
    build_shape=lambda c: (None, None, c["project_dim"]),
    reference_config={"project_dim": 16, "num_heads": 2, "sr_ratio": 2},
)


def EfficientMultiHeadAttention(
    project_dim: int,
    num_heads: int,
    sr_ratio: int = 1,
    layer_norm_epsilon: float = 1e-5,
    attention_dropout: float = 0.0,
    projection_dropout: float = 0.0,
    backend: str | None = None,
    **kwargs: Any,
) -> Any:
    """Spatial-reduction attention on a feature map (B, H, W, D) / (B, D, H, W) -> same shape.

    Args:
        project_dim: channels D (divisible by ``num_heads``).
        num_heads: attention heads; scores are scaled by ``(D / num_heads) ** -0.5``.
        sr_ratio: reduction of the key/value map (1: plain self-attention, no reduction weights).
        layer_norm_epsilon: epsilon of the reduction LayerNorm (transformers: 1e-5).
        attention_dropout: dropout on the attention probabilities (training only).
        projection_dropout: dropout after the output projection (training only).
        backend: ``"tensorflow"`` or ``"pytorch"``.
    """
    return build_block("EfficientMultiHeadAttention", locals())


tf_to_pt, pt_to_tf = portable_converters("EfficientMultiHeadAttention")
