"""``SegFormerHead``: SegFormer's all-MLP decoder.

Each of the encoder's feature maps (strides 4, 8, 16, 32) is projected to ``decoder_dim`` channels
by a Linear layer, upsampled bilinearly (half-pixel centres) to the size of the first map, and the
maps are concatenated deepest first (as transformers does); a 1x1 convolution without bias fuses
them, then BatchNorm, ReLU, dropout and a 1x1 classifier convolution give logits at the first map's
resolution (1/4 of the image). Input: a list of feature maps (channels-last in Keras, channels-first
in PyTorch). Canonical tensors: ``projections.i.kernel`` (C_i, decoder_dim) and ``.bias``,
``fuse.kernel`` (1, 1, n * decoder_dim, decoder_dim), ``fuse_norm.*`` (BatchNorm),
``classifier.kernel`` (1, 1, decoder_dim, classes) and ``.bias`` (transformers' ``decode_head.linear_c.i.proj``,
``linear_fuse``, ``batch_norm``, ``classifier``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deepvision.layers._block import build_block, register_block
from deepvision.portable import portable_converters

ARCHITECTURE = register_block(
    "SegFormerHead",
    "segformer_head",
    # The Keras head builds its weights in __init__ (it knows every input width); this shape is the first map's.
    build_shape=lambda c: (None, None, c["in_dims"][0]),
    reference_config={"classes": 5, "in_dims": [8, 16, 24, 32], "decoder_dim": 16},
)


def SegFormerHead(
    classes: int,
    in_dims: Sequence[int],
    decoder_dim: int = 256,
    dropout: float = 0.1,
    batch_norm_momentum: float = 0.9,
    batch_norm_epsilon: float = 1e-5,
    backend: str | None = None,
    **kwargs: Any,
) -> Any:
    """List of feature maps [(B, H_i, W_i, C_i)] / [(B, C_i, H_i, W_i)] -> logits at the first map's size.

    Args:
        classes: output channels (logits, no softmax).
        in_dims: channels C_i of each input map, shallowest first.
        decoder_dim: width of the projections and the fused map (transformers' ``decoder_hidden_size``).
        dropout: dropout before the classifier (transformers' ``classifier_dropout_prob``).
        batch_norm_momentum: Keras momentum of the fuse BatchNorm (0.9 = PyTorch's 0.1).
        batch_norm_epsilon: epsilon of the fuse BatchNorm (transformers: 1e-5).
        backend: ``"tensorflow"`` or ``"pytorch"``.
    """
    return build_block("SegFormerHead", locals())


tf_to_pt, pt_to_tf = portable_converters("SegFormerHead")
