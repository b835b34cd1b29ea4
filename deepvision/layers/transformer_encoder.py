"""``TransformerEncoder``: a pre-norm ViT block (timm's ``Block``).

``x = x + drop_path(attn(norm1(x)))``, then ``x = x + drop_path(mlp(norm2(x)))``, on tokens (B, N, D).
Canonical tensors: ``norm1.gamma/beta``, ``attn.qkv.*``, ``attn.proj.*``, ``norm2.gamma/beta``,
``mlp.fc1.*``, ``mlp.fc2.*`` (timm's ``blocks.i.norm1.weight`` ... in the canonical layout).
"""

from __future__ import annotations

from typing import Any

from deepvision.layers._block import build_block, register_block
from deepvision.portable import portable_converters

ARCHITECTURE = register_block(
    "TransformerEncoder",
    "transformer_encoder",
    build_shape=lambda c: (None, c["project_dim"]),
    reference_config={"project_dim": 16, "mlp_dim": 32, "num_heads": 4},
)


def TransformerEncoder(
    project_dim: int,
    mlp_dim: int,
    num_heads: int,
    mlp_dropout: float = 0.0,
    attention_dropout: float = 0.0,
    activation: str = "gelu",
    layer_norm_epsilon: float = 1e-6,
    drop_path_rate: float = 0.0,
    backend: str | None = None,
    **kwargs: Any,
) -> Any:
    """A pre-norm transformer block on tokens (B, N, D) -> (B, N, D), batch-first in both backends.

    Args:
        project_dim: token width D.
        mlp_dim: hidden width of the MLP.
        num_heads: attention heads (D divisible by it).
        mlp_dropout: dropout inside the MLP and after the attention output projection (timm's ``proj_drop``).
        attention_dropout: dropout on the attention probabilities.
        activation: MLP activation by name; ``"gelu"`` is exact (erf), as in timm's ViT.
        layer_norm_epsilon: epsilon of both LayerNorms (timm's ViT: 1e-6).
        drop_path_rate: stochastic depth on both residual branches.
        backend: ``"tensorflow"`` or ``"pytorch"``.
    """
    return build_block("TransformerEncoder", locals())


tf_to_pt, pt_to_tf = portable_converters("TransformerEncoder")
