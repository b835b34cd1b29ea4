"""keras.applications ResNet50V2/101V2/152V2 <-> deepvision ResNetV2: the name map.

deepvision's ResNetV2 is keras.applications' ResNetV2 layer for layer, and Keras layouts are the
canonical layouts, so only names are mapped::

    conv1_conv                  -> stem_conv
    conv{s}_block{b}_preact_bn  -> blocks.{i}.preact_norm      (i counts blocks over all stages)
    conv{s}_block{b}_0_conv     -> blocks.{i}.shortcut         (first block of each stage)
    conv{s}_block{b}_{1,2}_conv -> blocks.{i}.conv{1,2}
    conv{s}_block{b}_{1,2}_bn   -> blocks.{i}.norm{1,2}
    conv{s}_block{b}_3_conv     -> blocks.{i}.conv3
    post_bn                     -> post_norm
    predictions                 -> head

The generic import/export lives in ``deepvision.importers.keras_applications``.
"""

from __future__ import annotations

import re
from typing import Any

from deepvision.models.classification.resnetv2 import VARIANTS
from deepvision.models.classification.resnetv2.plan import block_plan

APPLICATIONS: dict[str, str] = {"ResNet50V2": "ResNet50V2", "ResNet101V2": "ResNet101V2", "ResNet152V2": "ResNet152V2"}

_STANDARD = {"stackwise_filters": [64, 128, 256, 512], "stackwise_strides": [2, 2, 2, 1], "block_type": "bottleneck"}
_FIRST_STAGE = 2  # keras.applications names the stages conv2..conv5
_BLOCK_PARTS = {
    "preact_bn": "preact_norm",
    "0_conv": "shortcut",
    "1_conv": "conv1",
    "1_bn": "norm1",
    "2_conv": "conv2",
    "2_bn": "norm2",
    "3_conv": "conv3",
}
_FIXED_LAYERS = {"conv1_conv": "stem_conv", "post_bn": "post_norm", "predictions": "head"}
_BLOCK_LAYER = re.compile(r"conv(\d+)_block(\d+)_(preact_bn|0_conv|1_conv|1_bn|2_conv|2_bn|3_conv)")
# Layer kind -> its tensors (attribute = canonical leaf name for Keras layers).
_CONV_TENSORS = ("kernel", "bias")
_NORM_TENSORS = ("gamma", "beta", "moving_mean", "moving_variance")


def _check_representable(config: dict[str, Any]) -> None:
    for key, value in _STANDARD.items():
        given = config.get(key, value)
        if (list(given) if isinstance(given, (list, tuple)) else given) != value:
            raise ValueError(f"keras.applications ResNetV2 has {key}={value}; the config has {config[key]!r}.")
    if "stackwise_blocks" in config:
        known = [blocks for blocks, kind in VARIANTS.values() if kind == "bottleneck"]
        if list(config["stackwise_blocks"]) not in known:
            raise ValueError(f"keras.applications has no ResNetV2 with stackwise_blocks={config['stackwise_blocks']}")


def _has_top(config: dict[str, Any]) -> bool:
    return bool(config.get("include_top", True)) and not config.get("features_only", False)


def app_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """keras.applications constructor kwargs equivalent to a backend-neutral deepvision config.

    ``features_only`` models have no top, so they map to ``include_top=False``; ``pooling`` only
    applies without the top; ``drop_path_rate`` is a training-time option and maps to nothing.
    """
    _check_representable(config)
    kwargs: dict[str, Any] = {"weights": None, "classifier_activation": None, "include_top": _has_top(config)}
    if kwargs["include_top"]:
        kwargs["classes"] = int(config.get("classes", 1000))
    elif not config.get("features_only", False):
        kwargs["pooling"] = config.get("pooling")
    if config.get("input_shape") is not None:
        kwargs["input_shape"] = tuple(config["input_shape"])
    return kwargs


def _stage_depths(app_model: Any) -> list[int]:
    """Blocks per stage, read from keras.applications' layer names (conv2_block1 ... conv5_blockN)."""
    depth: dict[int, int] = {}
    for layer in app_model.layers:
        match = _BLOCK_LAYER.fullmatch(layer.name)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            depth[stage] = max(depth.get(stage, 0), block)
    return [depth[s] for s in sorted(depth)]


def _expected_names(config: dict[str, Any], stackwise_blocks: list[int]) -> list[str]:
    """Canonical names of a deepvision ResNetV2 (bottleneck) with these stages and this top."""
    names = [f"stem_conv.{t}" for t in _CONV_TENSORS]
    for i, spec in enumerate(block_plan(stackwise_blocks, _STANDARD["stackwise_filters"],
                                        _STANDARD["stackwise_strides"], "bottleneck")):
        parts = ["preact_norm"] + (["shortcut"] if spec.conv_shortcut else []) + ["conv1", "norm1", "conv2", "norm2"]
        for part in parts:
            tensors = _NORM_TENSORS if "norm" in part else (_CONV_TENSORS if part == "shortcut" else ("kernel",))
            names.extend(f"blocks.{i}.{part}.{t}" for t in tensors)
        names.extend(f"blocks.{i}.conv3.{t}" for t in _CONV_TENSORS)
    names.extend(f"post_norm.{t}" for t in _NORM_TENSORS)
    if _has_top(config):
        names.extend(f"head.{t}" for t in _CONV_TENSORS)
    return names


def variable_map(app_model: Any, config: dict[str, Any]) -> dict[str, Any]:
    """Canonical tensor name -> the keras.applications variable that holds it.

    Covers every canonical tensor of the deepvision model with ``config`` and every variable of
    ``app_model``, each exactly once; raises ``ValueError`` otherwise. ``config`` may omit the
    variant's fixed arguments (the stage depths are read from ``app_model``'s layer names).
    """
    _check_representable(config)
    depths = _stage_depths(app_model)
    if "stackwise_blocks" in config and list(config["stackwise_blocks"]) != depths:
        raise ValueError(f"config has stackwise_blocks={config['stackwise_blocks']}, the keras model {depths}")
    first = [sum(depths[:s]) for s in range(len(depths))]  # global index of each stage's first block

    mapping: dict[str, Any] = {}
    unmapped: list[str] = []
    for layer in app_model.layers:
        if not layer.weights:
            continue
        match = _BLOCK_LAYER.fullmatch(layer.name)
        if match:
            stage, block = int(match.group(1)) - _FIRST_STAGE, int(match.group(2)) - 1
            prefix = f"blocks.{first[stage] + block}.{_BLOCK_PARTS[match.group(3)]}"
        elif layer.name in _FIXED_LAYERS:
            prefix = _FIXED_LAYERS[layer.name]
        else:
            unmapped.extend(w.path for w in layer.weights)
            continue
        tensors = _NORM_TENSORS if "bn" in layer.name else _CONV_TENSORS
        owned = {id(w) for w in layer.weights}
        for tensor in tensors:
            variable = getattr(layer, tensor, None)
            if variable is None:
                continue
            name = f"{prefix}.{tensor}"
            if name in mapping:
                raise ValueError(f"{name} is mapped twice (layer {layer.name})")
            mapping[name] = variable
            owned.discard(id(variable))
        unmapped.extend(w.path for w in layer.weights if id(w) in owned)
    if unmapped:
        raise ValueError(f"keras.applications variables with no deepvision counterpart: {unmapped[:5]}")
    expected = _expected_names(config, depths)
    missing, extra = sorted(set(expected) - set(mapping)), sorted(set(mapping) - set(expected))
    if missing or extra:
        raise ValueError(
            f"keras.applications model does not match the deepvision config {config}: "
            f"missing {missing[:5]}, unexpected {extra[:5]}"
        )
    return {name: mapping[name] for name in expected}
