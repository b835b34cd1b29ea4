"""``MixFFN``: SegFormer's feed-forward block with a depthwise 3x3 convolution on the token grid.

``fc1`` (C -> hidden) -> depthwise 3x3 conv (stride 1, zero padding 1, with bias) -> activation ->
dropout -> ``fc2`` (hidden -> out) -> dropout, on a feature map (channels-last in Keras,
channels-first in PyTorch). The convolution gives the tokens their position information (MiT has no
position embedding). Canonical tensors: ``fc1.kernel`` (C, hidden), ``fc1.bias``,
``dwconv.depthwise_kernel`` (3, 3, hidden, 1), ``dwconv.bias``, ``fc2.kernel`` (hidden, out),
``fc2.bias`` (transformers' ``mlp.dense1``, ``mlp.dwconv.dwconv``, ``mlp.dense2``).
"""

from __future__ import annotations

from typing import Any

from deepvision.layers._block import build_block, register_block
from deepvision.portable import portable_converters

ARCHITECTURE = register_block(
    "MixFFN",
    "mix_ffn",
    build_shape=lambda c: (None, None, c.get("input_dim") or c["output_dim"]),
    reference_config={"hidden_dim": 32, "output_dim": 8},
)


def MixFFN(
    hidden_dim: int,
    output_dim: int,
    input_dim: int | None = None,
    activation: str = "gelu",
    dropout: float = 0.0,
    backend: str | None = None,
    **kwargs: Any,
) -> Any:
    """Feature map (B, H, W, C) / (B, C, H, W) -> (B, H, W, out) / (B, out, H, W).

    Args:
        hidden_dim: width of the hidden layer (MiT: 4 x C).
        output_dim: output channels.
        input_dim: input channels C; ``None`` means ``output_dim``.
        activation: by name; ``"gelu"`` is the exact (erf) GELU, as transformers' SegFormer.
        dropout: dropout after the activation and after fc2 (training only).
        backend: ``"tensorflow"`` or ``"pytorch"``.
    """
    return build_block("MixFFN", locals())


tf_to_pt, pt_to_tf = portable_converters("MixFFN")
