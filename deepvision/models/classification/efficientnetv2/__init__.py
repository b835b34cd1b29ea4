"""EfficientNetV2 family (Tan & Le, 2021): B0..B3, S, M, L, as keras.applications builds them.

This module registers the variants and holds the architecture tables and the scaling rules (pure
Python, no framework import): both implementations (``efficientnetv2_tf.EfficientNetV2TF`` and
``efficientnetv2_pt.EfficientNetV2PT``) and the keras.applications importer build their block lists
with :func:`block_plan`, so the three cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from deepvision.models.factory import (
    COMMON_ARGUMENTS,
    FEATURES_ONLY,
    OUT_INDICES,
    REQUIRED,
    Argument,
    variant_factory,
)
from deepvision.models.features import FeatureLevel, last_per_reduction
from deepvision.registry import Architecture, register

_TF = "deepvision.models.classification.efficientnetv2.efficientnetv2_tf:EfficientNetV2TF"
_PT = "deepvision.models.classification.efficientnetv2.efficientnetv2_pt:EfficientNetV2PT"

_KEYS = ("conv_type", "kernel_size", "num_repeat", "input_filters", "output_filters", "expand_ratio",
         "se_ratio", "strides")


def _stages(*rows: tuple) -> list[dict[str, Any]]:
    # conv_type 1 = FusedMBConv, 0 = MBConv (keras.applications' convention).
    return [dict(zip(_KEYS, row)) for row in rows]


# Stage tables of keras.applications.efficientnet_v2 (B0..B3 share one and differ by scaling).
BLOCKS_ARGS: dict[str, list[dict[str, Any]]] = {
    "b": _stages(
        (1, 3, 1, 32, 16, 1, 0.0, 1),
        (1, 3, 2, 16, 32, 4, 0.0, 2),
        (1, 3, 2, 32, 48, 4, 0.0, 2),
        (0, 3, 3, 48, 96, 4, 0.25, 2),
        (0, 3, 5, 96, 112, 6, 0.25, 1),
        (0, 3, 8, 112, 192, 6, 0.25, 2),
    ),
    "s": _stages(
        (1, 3, 2, 24, 24, 1, 0.0, 1),
        (1, 3, 4, 24, 48, 4, 0.0, 2),
        (1, 3, 4, 48, 64, 4, 0.0, 2),
        (0, 3, 6, 64, 128, 4, 0.25, 2),
        (0, 3, 9, 128, 160, 6, 0.25, 1),
        (0, 3, 15, 160, 256, 6, 0.25, 2),
    ),
    "m": _stages(
        (1, 3, 3, 24, 24, 1, 0.0, 1),
        (1, 3, 5, 24, 48, 4, 0.0, 2),
        (1, 3, 5, 48, 80, 4, 0.0, 2),
        (0, 3, 7, 80, 160, 4, 0.25, 2),
        (0, 3, 14, 160, 176, 6, 0.25, 1),
        (0, 3, 18, 176, 304, 6, 0.25, 2),
        (0, 3, 5, 304, 512, 6, 0.25, 1),
    ),
    "l": _stages(
        (1, 3, 4, 32, 32, 1, 0.0, 1),
        (1, 3, 7, 32, 64, 4, 0.0, 2),
        (1, 3, 7, 64, 96, 4, 0.0, 2),
        (0, 3, 10, 96, 192, 4, 0.25, 2),
        (0, 3, 19, 192, 224, 6, 0.25, 1),
        (0, 3, 25, 224, 384, 6, 0.25, 2),
        (0, 3, 7, 384, 640, 6, 0.25, 1),
    ),
}

# The BatchNorm that ends every residual branch. Parity tests on random networks calibrate BatchNorm
# statistics with ``deepvision.testing.calibrate_batch_norm(model, x, shrink=CALIBRATION_SHRINK)``:
# without shrinking these, a calibrated EfficientNetV2 is chaotic (B0 at 64x64: logits ~1e5 and
# float32 rounding moves them by ~10%; shrunk: logits ~1, backends agree to ~1e-6).
CALIBRATION_SHRINK = ("project_bn",)

# ImageNet mean/std on [0, 1] inputs (B variants) and the [-1, 1] rescaling of S/M/L.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREPROCESSING_MODES = ("imagenet", "symmetric")


def check_arguments(pooling: str | None, preprocessing_mode: str) -> None:
    """Arguments both implementations reject alike (one message for both backends)."""
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    if preprocessing_mode not in PREPROCESSING_MODES:
        raise ValueError(f"preprocessing_mode must be one of {PREPROCESSING_MODES}, got {preprocessing_mode!r}")


def round_filters(filters: float, width_coefficient: float, min_depth: int | None, depth_divisor: int,
                  min_filter_ratio: float | None = None) -> int:
    """Scale a filter count by the width coefficient and round to the nearest multiple of ``depth_divisor``.

    With ``min_filter_ratio`` (MobileNet's rule, used by the seed's models), a count that rounding
    brought below ``min_filter_ratio`` times the scaled count goes up by one ``depth_divisor``.
    keras.applications' EfficientNetV2 does not apply it. Among the registered variants it only
    matters for B3 (width 1.2): its first stage has 24 output filters with the rule (the seed's
    14,486,374 parameters), 16 without (keras.applications' 14,467,622).
    """
    filters *= width_coefficient
    minimum = min_depth or depth_divisor
    rounded = max(minimum, int(filters + depth_divisor / 2) // depth_divisor * depth_divisor)
    if min_filter_ratio is not None and rounded < min_filter_ratio * filters:
        rounded += depth_divisor
    return int(rounded)


def round_repeats(repeats: int, depth_coefficient: float) -> int:
    """Scale a stage's block count by the depth coefficient (rounded up)."""
    return int(math.ceil(depth_coefficient * repeats))


def block_plan(
    width_coefficient: float,
    depth_coefficient: float,
    blocks_args: Sequence[Mapping[str, Any]],
    depth_divisor: int = 8,
    min_depth: int | None = 8,
    drop_path_rate: float = 0.0,
    min_filter_ratio: float | None = None,
) -> list[dict[str, Any]]:
    """Every block of the network in order, with its constructor arguments.

    Returns:
        One dict per block: ``fused`` (bool), ``stage`` (0-based), ``index`` (within the stage) and
        the (Fused)MBConv arguments ``input_filters``, ``output_filters``, ``expand_ratio``,
        ``kernel_size``, ``strides``, ``se_ratio`` and ``dropout`` (drop path, linear in depth as
        keras.applications' ``drop_connect_rate * b / blocks``).
    """
    total = float(sum(args["num_repeat"] for args in blocks_args))
    plan: list[dict[str, Any]] = []
    for stage, args in enumerate(blocks_args):
        if args["num_repeat"] <= 0:
            raise ValueError(f"Every stage needs num_repeat > 0, got {args['num_repeat']} in stage {stage}.")
        input_filters = round_filters(args["input_filters"], width_coefficient, min_depth, depth_divisor,
                                      min_filter_ratio)
        output_filters = round_filters(args["output_filters"], width_coefficient, min_depth, depth_divisor,
                                       min_filter_ratio)
        for index in range(round_repeats(args["num_repeat"], depth_coefficient)):
            plan.append({
                "fused": bool(args["conv_type"]),
                "stage": stage,
                "index": index,
                "input_filters": input_filters if index == 0 else output_filters,
                "output_filters": output_filters,
                "expand_ratio": args["expand_ratio"],
                "kernel_size": args["kernel_size"],
                "strides": args["strides"] if index == 0 else 1,
                "se_ratio": args["se_ratio"],
                # keras.applications counts blocks over the unscaled repeats; so do we.
                "dropout": drop_path_rate * len(plan) / total,
            })
    return plan


def feature_levels(plan: Sequence[Mapping[str, Any]]) -> list[FeatureLevel]:
    """The feature levels of an EfficientNetV2 (``features_only``), in forward order: timm's.

    Candidates are the stage ends (``tap`` = blocks run, ``module`` = the stage's last block), at
    reduction 2 (the stem) times the strides so far; each level is the last stage end at its
    reduction. B0: 16, 32, 48, 112, 192 channels at 2, 4, 8, 16, 32 from ``blocks.0, 2, 4, 12, 20``
    (timm's ``blocks.0, 1, 2, 4, 5``: stage 3 at stride 16 is followed by stage 4 at stride 16).
    Every level is a block output: the residual sum (or the projection BatchNorm's output where the
    block has no shortcut), without activation. The top conv (1280 channels) is not a level.
    """
    points, reduction = [], 2
    for i, spec in enumerate(plan):
        reduction *= int(spec["strides"])
        if i + 1 == len(plan) or plan[i + 1]["stage"] != spec["stage"]:
            points.append(FeatureLevel(int(spec["output_filters"]), reduction, f"blocks.{i}", i + 1))
    return last_per_reduction(points)


def features_layout(plan: Sequence[Mapping[str, Any]], selected: Sequence[FeatureLevel]) -> tuple[int, list[str]]:
    """What a features-only EfficientNetV2 builds: ``(number of blocks, pruned canonical prefixes)``."""
    blocks = max(level.tap for level in selected)
    return blocks, [f"blocks.{i}" for i in range(blocks, len(plan))] + ["top_conv", "top_bn", "head"]


def stem_filters(width_coefficient: float, blocks_args: Sequence[Mapping[str, Any]], depth_divisor: int = 8,
                 min_depth: int | None = 8, min_filter_ratio: float | None = None) -> int:
    """Filters of the stem conv (the first stage's scaled input filters)."""
    return round_filters(blocks_args[0]["input_filters"], width_coefficient, min_depth, depth_divisor, min_filter_ratio)


def top_filters(width_coefficient: float, depth_divisor: int = 8, min_depth: int | None = 8,
                min_filter_ratio: float | None = None) -> int:
    """Filters of the top 1x1 conv (1280 scaled)."""
    return round_filters(1280, width_coefficient, min_depth, depth_divisor, min_filter_ratio)


# name: (width, depth, table, default size, crop_pct, preprocessing mode)
VARIANTS: dict[str, tuple[float, float, str, int, float, str]] = {
    "EfficientNetV2B0": (1.0, 1.0, "b", 224, 0.875, "imagenet"),
    "EfficientNetV2B1": (1.0, 1.1, "b", 240, 0.882, "imagenet"),
    "EfficientNetV2B2": (1.1, 1.2, "b", 260, 0.890, "imagenet"),
    "EfficientNetV2B3": (1.2, 1.4, "b", 300, 0.904, "imagenet"),
    "EfficientNetV2S": (1.0, 1.0, "s", 384, 1.0, "symmetric"),
    "EfficientNetV2M": (1.0, 1.0, "m", 480, 1.0, "symmetric"),
    "EfficientNetV2L": (1.0, 1.0, "l", 480, 1.0, "symmetric"),
}


def _preprocessing(size: int, crop_pct: float, mode: str) -> dict[str, Any]:
    # With include_preprocessing=True (the default) the model takes [0, 255] pixels and applies
    # this normalisation itself; with False, feed (x / 255 - mean) / std yourself.
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if mode == "imagenet" else ((0.5,) * 3, (0.5,) * 3)
    return {
        "input_size": [size, size, 3],
        "mean": list(mean),
        "std": list(std),
        "value_range": [0, 255],
        "interpolation": "bicubic",
        "crop_pct": crop_pct,
        "in_model_preprocessing": "include_preprocessing",
    }


# The seed's counts (include_top=True, classes=1000, moving statistics included). They equal
# keras.applications' except B3's (see round_filters).
PARAMETERS = {
    "EfficientNetV2B0": 7_200_312,
    "EfficientNetV2B1": 8_212_124,
    "EfficientNetV2B2": 10_178_374,
    "EfficientNetV2B3": 14_486_374,
    "EfficientNetV2S": 21_612_360,
    "EfficientNetV2M": 54_431_388,
    "EfficientNetV2L": 119_027_848,
}

# The constructor arguments of EfficientNetV2TF / EfficientNetV2PT, in order, with their defaults
# (the mirror test checks both classes against this list).
ARGUMENTS = (
    Argument("width_coefficient", REQUIRED, float, "scales every stage's filters."),
    Argument("depth_coefficient", REQUIRED, float, "scales every stage's block count (rounded up)."),
    Argument("blocks_args", REQUIRED, "Sequence[dict[str, Any]]", "the stage table (see BLOCKS_ARGS)."),
    *COMMON_ARGUMENTS,
    FEATURES_ONLY,
    OUT_INDICES,
    Argument("dropout_rate", 0.2, float, "dropout before the head."),
    Argument("include_preprocessing", True, bool,
             "the model takes [0, 255] pixels and normalises them itself (preprocessing_mode)."),
    Argument("preprocessing_mode", "imagenet", str,
             "'imagenet' (x / 255, ImageNet mean/std) or 'symmetric' (x / 128 - 1)."),
    Argument("depth_divisor", 8, int, "filter counts are rounded to multiples of it."),
    Argument("min_depth", 8, "int | None", "smallest filter count after rounding."),
    Argument("min_filter_ratio", 0.9, "float | None",
             "MobileNet's rounding guard (the seed's B3); None: keras.applications' rounding."),
    Argument("bn_momentum", 0.9, float, "Keras BatchNorm momentum (weight of the old statistic)."),
    Argument("bn_epsilon", 1e-3, float, "BatchNorm epsilon."),
    Argument("activation", "swish", str, "Keras activation name."),
)

for _name, (_width, _depth, _table, _size, _crop, _mode) in VARIANTS.items():
    register(
        Architecture(
            name=_name,
            kind="model",
            family="efficientnetv2",
            tensorflow=_TF,
            pytorch=_PT,
            fixed={
                "width_coefficient": _width,
                "depth_coefficient": _depth,
                "blocks_args": BLOCKS_ARGS[_table],
                "preprocessing_mode": _mode,
            },
            reference_config={"input_shape": [64, 64, 3], "classes": 10},
            preprocessing=_preprocessing(_size, _crop, _mode),
            parameters=PARAMETERS[_name],
        )
    )

EfficientNetV2B0 = variant_factory("EfficientNetV2B0", ARGUMENTS, "EfficientNetV2-B0 (width 1.0, depth 1.0)")
EfficientNetV2B1 = variant_factory("EfficientNetV2B1", ARGUMENTS, "EfficientNetV2-B1 (width 1.0, depth 1.1)")
EfficientNetV2B2 = variant_factory("EfficientNetV2B2", ARGUMENTS, "EfficientNetV2-B2 (width 1.1, depth 1.2)")
EfficientNetV2B3 = variant_factory("EfficientNetV2B3", ARGUMENTS, "EfficientNetV2-B3 (width 1.2, depth 1.4)")
EfficientNetV2S = variant_factory("EfficientNetV2S", ARGUMENTS, "EfficientNetV2-S (six stages, [-1, 1] inputs)")
EfficientNetV2M = variant_factory("EfficientNetV2M", ARGUMENTS, "EfficientNetV2-M (seven stages, [-1, 1] inputs)")
EfficientNetV2L = variant_factory("EfficientNetV2L", ARGUMENTS, "EfficientNetV2-L (seven stages, [-1, 1] inputs)")
