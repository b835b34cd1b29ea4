"""SegFormer family: transformers' ``SegformerForSemanticSegmentation`` and its Mix Transformer (MiT) encoder.

Registration only (no framework import). ``SegFormerB0`` .. ``SegFormerB5`` equal transformers'
models of the same size (``nvidia/segformer-b{0..5}-finetuned-ade-*``; 150 classes by default, as
ADE20K) and output logits at 1/4 of the input resolution (the first stage's grid, floored at odd
sizes), before any upsampling, as transformers does; ``deepvision.layers.upsample.upsample_bilinear``
brings them to the label size (half-pixel centres, identical in both backends). ``MiTB0`` .. ``MiTB5``
are the encoders (``nvidia/mit-b{0..5}``): without a top they return the last stage's map, with
``include_top=True`` a classifier on its spatial mean (``SegformerForImageClassification``), and with
``features_only=True`` the four stage maps at strides 4, 8, 16, 32.

Canonical structure (both backends)::

    stages.i.patch_embed   OverlappingPatchEmbedding (7x7 stride 4, then 3x3 stride 2)
    stages.i.blocks.j      HierarchicalTransformerEncoder (EfficientMultiHeadAttention + MixFFN)
    stages.i.norm          LayerNorm
    decode_head            SegFormerHead (SegFormer)  |  head: Dense (MiT with include_top)

Parameter counts (Keras's meaning, BatchNorm statistics included) are transformers' and KerasHub's.
Hugging Face checkpoints in and out: ``deepvision.importers.huggingface``.
"""

from __future__ import annotations

from collections.abc import Sequence

from deepvision.models.factory import (
    CLASSES,
    DROP_PATH_RATE,
    FEATURES_ONLY,
    INPUT_SHAPE,
    OUT_INDICES,
    POOLING,
    Argument,
    variant_factory,
)
from deepvision.registry import Architecture, register

_MIT_TF = "deepvision.models.segmentation.segformer.mit_tf:MiTTF"
_MIT_PT = "deepvision.models.segmentation.segformer.mit_pt:MiTPT"
_SEG_TF = "deepvision.models.segmentation.segformer.segformer_tf:SegFormerTF"
_SEG_PT = "deepvision.models.segmentation.segformer.segformer_pt:SegFormerPT"

# transformers' SegformerImageProcessor: images scaled to [0, 1], ImageNet mean/std, 512x512 (ADE20K).
PREPROCESSING = {
    "input_size": [512, 512, 3],
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "value_range": [0, 1],
    "interpolation": "bilinear",
}
MIT_PREPROCESSING = {**PREPROCESSING, "input_size": [224, 224, 3]}

_ENCODER_ARGUMENTS = (
    Argument("embed_dims", (32, 64, 160, 256), "Sequence[int]", "channels of the four stages (hidden_sizes)."),
    Argument("depths", (2, 2, 2, 2), "Sequence[int]", "blocks per stage."),
    Argument("num_heads", (1, 2, 5, 8), "Sequence[int]", "attention heads per stage."),
    Argument("sr_ratios", (8, 4, 2, 1), "Sequence[int]", "spatial reduction of keys/values per stage."),
    Argument("patch_sizes", (7, 3, 3, 3), "Sequence[int]", "kernel of each stage's overlapping patch embedding."),
    Argument("strides", (4, 2, 2, 2), "Sequence[int]", "stride of each stage's overlapping patch embedding."),
    Argument("mlp_ratio", 4, int, "MixFFN hidden width over the stage width."),
    Argument("layer_norm_epsilon", 1e-5, float, "epsilon of every LayerNorm (transformers: 1e-5)."),
    Argument("dropout", 0.0, float, "dropout in the MixFFNs and after attention (hidden_dropout_prob)."),
    Argument("attention_dropout", 0.0, float, "dropout on the attention weights."),
)

# The constructor arguments of MiTTF / MiTPT, in order (the mirror test checks both classes).
MIT_ARGUMENTS = (
    Argument("include_top", False, bool, "add an image classifier on the mean of the last stage (logits)."),
    CLASSES,
    INPUT_SHAPE,
    POOLING,
    DROP_PATH_RATE,
    FEATURES_ONLY,
    OUT_INDICES,
    *_ENCODER_ARGUMENTS,
)

# The constructor arguments of SegFormerTF / SegFormerPT, in order.
SEGFORMER_ARGUMENTS = (
    Argument("include_top", True, bool, "add the all-MLP decode head (per-pixel logits at 1/4 resolution)."),
    Argument("classes", 150, int, "number of classes of the decode head (ADE20K: 150)."),
    INPUT_SHAPE,
    POOLING,
    DROP_PATH_RATE,
    FEATURES_ONLY,
    OUT_INDICES,
    *_ENCODER_ARGUMENTS,
    Argument("decoder_dim", 256, int, "width of the decode head (decoder_hidden_size)."),
    Argument("head_dropout", 0.1, float, "dropout before the classifier (classifier_dropout_prob)."),
    Argument("batch_norm_momentum", 0.9, float, "Keras momentum of the decode head's BatchNorm (PyTorch 0.1)."),
    Argument("batch_norm_epsilon", 1e-5, float, "epsilon of the decode head's BatchNorm."),
)
MIT_DEFAULT_CONFIG = {a.name: a.default for a in MIT_ARGUMENTS}
SEGFORMER_DEFAULT_CONFIG = {a.name: a.default for a in SEGFORMER_ARGUMENTS}

# transformers' sizes (SegformerConfig of nvidia/mit-b0 .. b5) and the decoder width of each.
SIZES = {
    "B0": {"embed_dims": [32, 64, 160, 256], "depths": [2, 2, 2, 2], "decoder_dim": 256},
    "B1": {"embed_dims": [64, 128, 320, 512], "depths": [2, 2, 2, 2], "decoder_dim": 256},
    "B2": {"embed_dims": [64, 128, 320, 512], "depths": [3, 4, 6, 3], "decoder_dim": 768},
    "B3": {"embed_dims": [64, 128, 320, 512], "depths": [3, 4, 18, 3], "decoder_dim": 768},
    "B4": {"embed_dims": [64, 128, 320, 512], "depths": [3, 8, 27, 3], "decoder_dim": 768},
    "B5": {"embed_dims": [64, 128, 320, 512], "depths": [3, 6, 40, 3], "decoder_dim": 768},
}
# Counts with BatchNorm statistics: SegFormer at 150 classes, MiT without a top (transformers' SegformerModel).
SEGFORMER_PARAMETERS = {"B0": 3_753_206, "B1": 13_716_310, "B2": 27_463_510, "B3": 47_339_350,
                        "B4": 64_109_910, "B5": 84_710_230}
MIT_PARAMETERS = {"B0": 3_319_392, "B1": 13_151_424, "B2": 24_196_288, "B3": 44_072_128,
                  "B4": 60_842_688, "B5": 81_443_008}

# A small generic configuration for parity tests: an odd, non-square input (the patch convs floor).
_SMALL = {"embed_dims": [8, 16, 24, 32], "depths": [1, 1, 1, 1], "num_heads": [1, 2, 2, 4]}

# The contract tests treat the encoders as classifiers (include_top): logits (N, classes), fit on labels.
register(Architecture(name="MiT", kind="model", family="segformer", tensorflow=_MIT_TF, pytorch=_MIT_PT,
                      reference_config={"input_shape": [37, 45, 3], "include_top": True, "classes": 10, **_SMALL},
                      preprocessing=MIT_PREPROCESSING))
register(Architecture(name="SegFormer", kind="model", family="segformer", tensorflow=_SEG_TF, pytorch=_SEG_PT,
                      reference_config={"input_shape": [37, 45, 3], "classes": 5, "decoder_dim": 16, **_SMALL},
                      preprocessing=PREPROCESSING))
for _size, _dims in SIZES.items():
    register(Architecture(
        name=f"SegFormer{_size}", kind="model", family="segformer", tensorflow=_SEG_TF, pytorch=_SEG_PT,
        fixed=dict(_dims), reference_config={"input_shape": [64, 64, 3], "classes": 5},
        preprocessing=PREPROCESSING, parameters=SEGFORMER_PARAMETERS[_size],
    ))
    register(Architecture(
        name=f"MiT{_size}", kind="model", family="segformer", tensorflow=_MIT_TF, pytorch=_MIT_PT,
        fixed={k: v for k, v in _dims.items() if k != "decoder_dim"},
        reference_config={"input_shape": [64, 64, 3], "include_top": True, "classes": 10},
        preprocessing=MIT_PREPROCESSING, parameters=MIT_PARAMETERS[_size],
    ))

_SEG_RETURNS = ("The model in that backend: per-pixel logits at 1/4 resolution, (N, H/4, W/4, classes) in "
                "Keras, (N, classes, H/4, W/4) in PyTorch; the encoder's output without the head.")
_MIT_RETURNS = ("The encoder in that backend: the last stage's map (N, H/32, W/32, C) / (N, C, H/32, W/32), "
                "pooled features, class logits with include_top, or the stage maps with features_only.")

SegFormer = variant_factory("SegFormer", SEGFORMER_ARGUMENTS, "a SegFormer of any MiT size", _SEG_RETURNS)
SegFormerB0 = variant_factory("SegFormerB0", SEGFORMER_ARGUMENTS, "SegFormer-B0 (transformers segformer-b0)", _SEG_RETURNS)
SegFormerB1 = variant_factory("SegFormerB1", SEGFORMER_ARGUMENTS, "SegFormer-B1 (transformers segformer-b1)", _SEG_RETURNS)
SegFormerB2 = variant_factory("SegFormerB2", SEGFORMER_ARGUMENTS, "SegFormer-B2 (transformers segformer-b2)", _SEG_RETURNS)
SegFormerB3 = variant_factory("SegFormerB3", SEGFORMER_ARGUMENTS, "SegFormer-B3 (transformers segformer-b3)", _SEG_RETURNS)
SegFormerB4 = variant_factory("SegFormerB4", SEGFORMER_ARGUMENTS, "SegFormer-B4 (transformers segformer-b4)", _SEG_RETURNS)
SegFormerB5 = variant_factory("SegFormerB5", SEGFORMER_ARGUMENTS, "SegFormer-B5 (transformers segformer-b5)", _SEG_RETURNS)
MiT = variant_factory("MiT", MIT_ARGUMENTS, "a Mix Transformer encoder of any size", _MIT_RETURNS)
MiTB0 = variant_factory("MiTB0", MIT_ARGUMENTS, "MiT-B0 encoder (transformers nvidia/mit-b0)", _MIT_RETURNS)
MiTB1 = variant_factory("MiTB1", MIT_ARGUMENTS, "MiT-B1 encoder (transformers nvidia/mit-b1)", _MIT_RETURNS)
MiTB2 = variant_factory("MiTB2", MIT_ARGUMENTS, "MiT-B2 encoder (transformers nvidia/mit-b2)", _MIT_RETURNS)
MiTB3 = variant_factory("MiTB3", MIT_ARGUMENTS, "MiT-B3 encoder (transformers nvidia/mit-b3)", _MIT_RETURNS)
MiTB4 = variant_factory("MiTB4", MIT_ARGUMENTS, "MiT-B4 encoder (transformers nvidia/mit-b4)", _MIT_RETURNS)
MiTB5 = variant_factory("MiTB5", MIT_ARGUMENTS, "MiT-B5 encoder (transformers nvidia/mit-b5)", _MIT_RETURNS)


def drop_path_rates(drop_path_rate: float, depths: Sequence[int]) -> list[list[float]]:
    """Stochastic-depth rate of each block, per stage: linear from 0 over all blocks (transformers' rule)."""
    total = sum(int(d) for d in depths)
    rates = [drop_path_rate * i / (total - 1) if total > 1 else 0.0 for i in range(total)]
    out, start = [], 0
    for depth in depths:
        out.append(rates[start:start + int(depth)])
        start += int(depth)
    return out


def feature_levels(embed_dims: Sequence[int], strides: Sequence[int]) -> list:
    """The four stage maps: channels, cumulative stride (4, 8, 16, 32), module ``stages.i``, tap ``i``."""
    from deepvision.models.features import FeatureLevel

    levels, reduction = [], 1
    for i, (dim, stride) in enumerate(zip(embed_dims, strides)):
        reduction *= int(stride)
        levels.append(FeatureLevel(int(dim), reduction, f"stages.{i}", i))
    return levels


def check_encoder_config(embed_dims, depths, num_heads, sr_ratios, patch_sizes, strides) -> int:
    """Validate the per-stage lists (same length, widths divisible by heads); returns the stage count."""
    lists = {"embed_dims": embed_dims, "depths": depths, "num_heads": num_heads, "sr_ratios": sr_ratios,
             "patch_sizes": patch_sizes, "strides": strides}
    lengths = {k: len(v) for k, v in lists.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"the per-stage lists must have one entry per stage, got lengths {lengths}")
    for i, (dim, heads) in enumerate(zip(embed_dims, num_heads)):
        if int(dim) % int(heads):
            raise ValueError(f"stage {i}: embed_dims {dim} is not divisible by num_heads {heads}")
    return len(embed_dims)


def resolve_pooling(pooling: str | None) -> str | None:
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    return pooling


class EncoderLayout:
    """What a MiT encoder builds, from its constructor arguments (shared by both backends' MiT and SegFormer).

    ``levels``: the four stage maps; ``positions``: the selected ones with ``features_only`` (else
    ``None``); ``count``: stages built (later ones are pruned when no selected level needs them).
    """

    def __init__(self, arguments: dict) -> None:
        from deepvision.models.features import check_feature_arguments, select_levels

        self.features_only = bool(arguments["features_only"])
        check_feature_arguments(self.features_only, arguments["out_indices"])
        self.pool_mode = resolve_pooling(arguments["pooling"])
        self.levels = feature_levels(arguments["embed_dims"], arguments["strides"])
        self.positions = (select_levels(self.levels, arguments["out_indices"], default=range(len(self.levels)))[1]
                          if self.features_only else None)
        self.count = self.positions[-1] + 1 if self.features_only else len(self.levels)
        self.with_top = bool(arguments["include_top"]) and not self.features_only

    def pruned(self, top: str) -> list[str]:
        """Module paths a features model leaves out: later stages and the top (``head``/``decode_head``)."""
        return [f"stages.{i}" for i in range(self.count, len(self.levels))] + ([top] if self.features_only else [])


# The build_stages arguments, in order, taken from a constructor's arguments.
STAGE_KEYS = ("embed_dims", "depths", "num_heads", "sr_ratios", "patch_sizes", "strides", "mlp_ratio",
              "layer_norm_epsilon", "dropout", "attention_dropout", "drop_path_rate")
