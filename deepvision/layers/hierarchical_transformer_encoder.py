"""``HierarchicalTransformerEncoder``: one block of SegFormer's Mix Transformer (MiT) encoder.

``x = x + drop_path(attn(norm1(x)))`` (``EfficientMultiHeadAttention``), then
``x = x + drop_path(mlp(norm2(x)))`` (``MixFFN``), on a feature map (channels-last in Keras,
channels-first in PyTorch; the norms act on the channels). Canonical tensors: ``norm1.*``,
``attn.*``, ``norm2.*``, ``mlp.*`` (transformers' ``layer_norm_1``, ``attention``, ``layer_norm_2``, ``mlp``).
"""

from __future__ import annotations

from typing import Any

from deepvision.layers._block import build_block, register_block
from deepvision.portable import portable_converters

ARCHITECTURE = register_block(
    "HierarchicalTransformerEncoder",
    "hierarchical_transformer_encoder",
    build_shape=lambda c: (None, None, c["project_dim"]),
    reference_config={"project_dim": 16, "num_heads": 2, "mlp_dim": 32, "sr_ratio": 2},
)


def HierarchicalTransformerEncoder(
    project_dim: int,
    num_heads: int,
    mlp_dim: int,
    sr_ratio: int = 1,
    layer_norm_epsilon: float = 1e-5,
    activation: str = "gelu",
    dropout: float = 0.0,
    attention_dropout: float = 0.0,
    drop_path_rate: float = 0.0,
    backend: str | None = None,
    **kwargs: Any,
) -> Any:
    """A pre-norm MiT block on a feature map (B, H, W, D) / (B, D, H, W) -> same shape.

    Args:
        project_dim: channels D.
        num_heads: attention heads (D divisible by it).
        mlp_dim: hidden width of the MixFFN (MiT: 4 x D).
        sr_ratio: spatial reduction of the attention's keys and values.
        layer_norm_epsilon: epsilon of every LayerNorm in the block (transformers: 1e-5).
        activation: MixFFN activation (``"gelu"``: exact erf GELU).
        dropout: dropout in the MixFFN and after the attention projection (transformers' ``hidden_dropout_prob``).
        attention_dropout: dropout on the attention probabilities.
        drop_path_rate: stochastic depth on both residual branches.
        backend: ``"tensorflow"`` or ``"pytorch"``.
    """
    return build_block("HierarchicalTransformerEncoder", locals())


tf_to_pt, pt_to_tf = portable_converters("HierarchicalTransformerEncoder")
