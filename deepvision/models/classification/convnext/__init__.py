"""ConvNeXt family (Liu et al., 2022): Tiny, Small, Base, Large, XLarge, as keras.applications and timm build them.

Registration and the backend-neutral plan only (no framework import). Every variant equals
keras.applications' ``ConvNeXt*`` and timm's ``convnext_*`` of the same size with 1000 classes
(same parameter counts; the same function once weights are mapped): a 4x4 stride-4 ``valid`` stem
conv and LayerNorm, four stages of :class:`~deepvision.layers.ConvNeXtBlock` (depthwise 7x7,
LayerNorm eps 1e-6, MLP 4x with exact GELU, layer scale, stochastic depth), a LayerNorm and a 2x2
stride-2 conv between stages, then global average pooling, a LayerNorm and the ``head``.

Canonical tensors (module order)::

    stem_conv.kernel (4, 4, C_in, d0), stem_conv.bias, stem_norm.gamma/beta
    downsample_norms.{i}.gamma/beta, downsample_convs.{i}.kernel (2, 2, d_i, d_{i+1}) / .bias   (i = 0, 1, 2)
    blocks.{k}.*  (ConvNeXtBlock; k counts the blocks of all stages in order)
    head_norm.gamma/beta, head.kernel (d3, classes), head.bias

``ConvNeXt`` is the generic architecture (any ``depths`` and ``projection_dims``, keras.applications'
names). Implementations: ``convnext_tf.ConvNeXtTF`` and ``convnext_pt.ConvNeXtPT``; foreign weights:
``deepvision.importers.keras_applications_convnext`` and ``deepvision.importers.timm_convnext``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deepvision.models.factory import COMMON_ARGUMENTS, REQUIRED, Argument, variant_factory
from deepvision.models.features import FeatureLevel
from deepvision.registry import Architecture, register

_TF = "deepvision.models.classification.convnext.convnext_tf:ConvNeXtTF"
_PT = "deepvision.models.classification.convnext.convnext_pt:ConvNeXtPT"

# keras.applications' ConvNeXt preprocessing (include_preprocessing=True): the model takes [0, 255]
# pixels and normalises them with the ImageNet mean/std itself; with include_preprocessing=False feed
# (x / 255 - mean) / std, as timm's models expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREPROCESSING = {
    "input_size": [224, 224, 3],
    "mean": list(IMAGENET_MEAN),
    "std": list(IMAGENET_STD),
    "value_range": [0, 255],
    "interpolation": "bicubic",
    "crop_pct": 0.875,
    "crop_mode": "center",
    "in_model_preprocessing": "include_preprocessing",
}

# name: (depths, projection_dims, timm name); keras.applications' MODEL_CONFIGS.
VARIANTS: dict[str, tuple[tuple[int, ...], tuple[int, ...], str]] = {
    "ConvNeXtTiny": ((3, 3, 9, 3), (96, 192, 384, 768), "convnext_tiny"),
    "ConvNeXtSmall": ((3, 3, 27, 3), (96, 192, 384, 768), "convnext_small"),
    "ConvNeXtBase": ((3, 3, 27, 3), (128, 256, 512, 1024), "convnext_base"),
    "ConvNeXtLarge": ((3, 3, 27, 3), (192, 384, 768, 1536), "convnext_large"),
    "ConvNeXtXLarge": ((3, 3, 27, 3), (256, 512, 1024, 2048), "convnext_xlarge"),
}

# keras.applications' and timm's counts at include_top=True, classes=1000 (checked equal, both).
PARAMETERS = {
    "ConvNeXtTiny": 28_589_128,
    "ConvNeXtSmall": 50_223_688,
    "ConvNeXtBase": 88_591_464,
    "ConvNeXtLarge": 197_767_336,
    "ConvNeXtXLarge": 350_196_968,
}

# The constructor arguments of ConvNeXtTF / ConvNeXtPT, in order, with their defaults; the mirror
# test checks both classes against this list.
ARGUMENTS = (
    Argument("depths", (3, 3, 9, 3), "Sequence[int]", "blocks per stage (four stages; default ConvNeXt-T's)."),
    Argument("projection_dims", (96, 192, 384, 768), "Sequence[int]", "channels of each stage (default ConvNeXt-T's)."),
    *COMMON_ARGUMENTS,
    Argument("features_only", False, bool, "return a list of feature maps (see feature_info) instead of logits."),
    Argument("out_indices", None, "Sequence[int] | None",
             "which feature levels (negative from the end); None: the family's default."),
    Argument("layer_scale_init_value", 1e-6, "float | None", "initial layer-scale gammas; None: no layer scale."),
    Argument("layer_norm_epsilon", 1e-6, float, "epsilon of every LayerNorm."),
    Argument("include_preprocessing", True, bool,
             "the model takes [0, 255] pixels and applies the ImageNet mean/std itself (3 channels)."),
)


def check_config(depths: Sequence[int], projection_dims: Sequence[int], pooling: str | None) -> None:
    """Validate the family's arguments (shared by both backends, so the errors read the same)."""
    if len(depths) != 4 or len(projection_dims) != 4:
        raise ValueError(f"ConvNeXt has four stages: depths and projection_dims need 4 entries each, "
                         f"got depths={list(depths)}, projection_dims={list(projection_dims)}.")
    if any(int(d) < 1 for d in depths) or any(int(c) < 1 for c in projection_dims):
        raise ValueError(f"ConvNeXt: every stage needs >= 1 block and >= 1 channel, got depths={list(depths)}, "
                         f"projection_dims={list(projection_dims)}.")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")


def drop_path_rates(drop_path_rate: float, depths: Sequence[int]) -> list[float]:
    """Stochastic-depth rate of every block: linear from 0 to ``drop_path_rate`` over all blocks
    (keras.applications' ``np.linspace`` and timm's ``torch.linspace``)."""
    total = int(sum(depths))
    if total <= 1:
        return [0.0] * total
    return [drop_path_rate * i / (total - 1) for i in range(total)]


def stage_of_blocks(depths: Sequence[int]) -> list[int]:
    """The stage index of each block, in order."""
    return [stage for stage, depth in enumerate(depths) for _ in range(int(depth))]


def feature_levels(depths: Sequence[int], projection_dims: Sequence[int]) -> list[FeatureLevel]:
    """The four stage outputs (timm's ``features_only`` levels): reductions 4, 8, 16, 32.

    ``tap`` is the number of blocks run before the level is read; ``module`` the last block of the stage.
    """
    levels, done = [], 0
    for stage, (depth, dim) in enumerate(zip(depths, projection_dims)):
        done += int(depth)
        levels.append(FeatureLevel(int(dim), 4 * 2**stage, f"blocks.{done - 1}", done))
    return levels


def pruned_modules(depths: Sequence[int], stages_built: int, features_only: bool) -> list[str]:
    """Canonical prefixes of a classifier's modules that a model building ``stages_built`` stages lacks."""
    if not features_only:
        return []
    built_blocks = int(sum(depths[:stages_built]))
    pruned = [f"downsample_norms.{i - 1}" for i in range(max(stages_built, 1), 4)]
    pruned += [f"downsample_convs.{i - 1}" for i in range(max(stages_built, 1), 4)]
    pruned += [f"blocks.{k}" for k in range(built_blocks, int(sum(depths)))]
    return pruned + ["head_norm", "head"]


_SMALL = {"depths": [1, 1, 2, 1], "projection_dims": [24, 48, 96, 192]}

register(
    Architecture(
        name="ConvNeXt",
        kind="model",
        family="convnext",
        tensorflow=_TF,
        pytorch=_PT,
        fixed={},
        reference_config={"input_shape": [64, 64, 3], "classes": 10, **_SMALL},
        preprocessing=PREPROCESSING,
    )
)
for _name, (_depths, _dims, _timm) in VARIANTS.items():
    register(
        Architecture(
            name=_name,
            kind="model",
            family="convnext",
            tensorflow=_TF,
            pytorch=_PT,
            fixed={"depths": list(_depths), "projection_dims": list(_dims)},
            reference_config={"input_shape": [64, 64, 3], "classes": 10},
            preprocessing=PREPROCESSING,
            parameters=PARAMETERS[_name],
        )
    )

ConvNeXt = variant_factory("ConvNeXt", ARGUMENTS, "ConvNeXt with any depths and projection_dims")
ConvNeXtTiny = variant_factory("ConvNeXtTiny", ARGUMENTS, "ConvNeXt-T (keras.applications ConvNeXtTiny, timm convnext_tiny)")
ConvNeXtSmall = variant_factory("ConvNeXtSmall", ARGUMENTS, "ConvNeXt-S (keras.applications ConvNeXtSmall, timm convnext_small)")
ConvNeXtBase = variant_factory("ConvNeXtBase", ARGUMENTS, "ConvNeXt-B (keras.applications ConvNeXtBase, timm convnext_base)")
ConvNeXtLarge = variant_factory("ConvNeXtLarge", ARGUMENTS, "ConvNeXt-L (keras.applications ConvNeXtLarge, timm convnext_large)")
ConvNeXtXLarge = variant_factory("ConvNeXtXLarge", ARGUMENTS,
                                 "ConvNeXt-XL (keras.applications ConvNeXtXLarge, timm convnext_xlarge)")

__all__ = ["ConvNeXt", "ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge"]


def variant_of(depths: Sequence[int], projection_dims: Sequence[int]) -> str:
    """The registered variant with these stage sizes, else the generic ``"ConvNeXt"``."""
    for name, (d, c, _) in VARIANTS.items():
        if list(d) == [int(x) for x in depths] and list(c) == [int(x) for x in projection_dims]:
            return name
    return "ConvNeXt"


def default_config(**overrides: Any) -> dict[str, Any]:
    """The backend-neutral config of a ConvNeXt with every default, updated by ``overrides``."""
    config = {a.name: a.default for a in ARGUMENTS if a.default is not REQUIRED}
    config.update(overrides)
    return config
