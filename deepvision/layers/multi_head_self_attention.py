"""``MultiHeadSelfAttention``: ViT self-attention with one fused q/k/v projection.

Canonical tensors: ``qkv.kernel`` (D, 3D) and ``qkv.bias`` (3D,) with q, k, v along the output axis
and the heads contiguous within each (timm's ``qkv.weight`` transposed), ``proj.kernel`` (D, D) and
``proj.bias`` (D,). Batch-first in both backends: attention never mixes samples of a batch.
"""

from __future__ import annotations

from typing import Any

from deepvision.layers._block import build_block, register_block
from deepvision.portable import portable_converters

ARCHITECTURE = register_block(
    "MultiHeadSelfAttention",
    "multi_head_self_attention",
    build_shape=lambda c: (None, c["project_dim"]),
    reference_config={"project_dim": 16, "num_heads": 4},
)


def MultiHeadSelfAttention(
    project_dim: int,
    num_heads: int,
    attention_dropout: float = 0.0,
    projection_dropout: float = 0.0,
    backend: str | None = None,
    **kwargs: Any,
) -> Any:
    """Multi-head self-attention over tokens (B, N, D) -> (B, N, D).

    Args:
        project_dim: token width D (divisible by ``num_heads``).
        num_heads: number of heads; each attends with D / num_heads features, scaled by its inverse square root.
        attention_dropout: dropout on the attention probabilities (training only).
        projection_dropout: dropout after the output projection (training only).
        backend: ``"tensorflow"`` or ``"pytorch"``.
    """
    return build_block("MultiHeadSelfAttention", locals())


def check_arguments(project_dim: int, num_heads: int) -> None:
    """Arguments both backends reject alike."""
    if project_dim % num_heads:
        raise ValueError(f"project_dim={project_dim} is not divisible by num_heads={num_heads}")


tf_to_pt, pt_to_tf = portable_converters("MultiHeadSelfAttention")
