"""Public building blocks, each available in both backends with the same arguments.

``deepvision.layers.MBConv(..., backend="pytorch")`` returns a ``torch.nn.Module`` taking
channels-first images; ``backend="tensorflow"`` returns a ``keras.layers.Layer`` taking
channels-last images. Token tensors are (batch, tokens, dim) in both. Each block's module also
offers ``tf_to_pt(layer)`` and ``pt_to_tf(layer)``, which go through the canonical format.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

# Public block -> the module that defines its factory (imported on first use).
BLOCKS = {
    "Identity": "identity",
    "StochasticDepth": "stochastic_depth",
    "SqueezeExcitation": "squeeze_excitation",
    "MBConv": "mbconv",
    "FusedMBConv": "fused_mbconv",
    "PreActBottleneck": "preact_bottleneck",
    "PreActBasicBlock": "preact_basic_block",
    "PatchingAndEmbedding": "patching_and_embedding",
    "MultiHeadSelfAttention": "multi_head_self_attention",
    "MLP": "mlp",
    "TransformerEncoder": "transformer_encoder",
    "OverlappingPatchEmbedding": "overlapping_patch_embedding",
    "EfficientMultiHeadAttention": "efficient_multi_head_attention",
    "MixFFN": "mix_ffn",
    "HierarchicalTransformerEncoder": "hierarchical_transformer_encoder",
    "SegFormerHead": "segformer_head",
    "LayerScale": "layer_scale",
    "ConvNeXtBlock": "convnext_block",
}

__all__ = list(BLOCKS)


def load_all() -> None:
    """Import every block module (registers the blocks); a test checks that none is missing."""
    for module in BLOCKS.values():
        if importlib.util.find_spec(f"deepvision.layers.{module}") is not None:
            importlib.import_module(f"deepvision.layers.{module}")


def __getattr__(name: str) -> Any:
    if name in BLOCKS:
        return getattr(importlib.import_module(f"deepvision.layers.{BLOCKS[name]}"), name)
    raise AttributeError(f"module 'deepvision.layers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__ + [m for m in BLOCKS.values()])
