"""timm ``tf_efficientnetv2_*`` (timm's port of the TensorFlow weights) <-> deepvision EfficientNetV2: the name map.

timm's block kinds: ``cn`` (a fused block without expansion), ``er`` (fused, with expansion) and
``ir`` (MBConv). Per block ``blocks.<stage>.<index>`` -> ``blocks.<k>`` (k counts all blocks)::

    cn: conv -> project_conv, bn1 -> project_bn
    er: conv_exp -> expand_conv, bn1 -> expand_bn, [se.conv_reduce/expand], conv_pwl -> project_conv, bn2 -> project_bn
    ir: conv_pw -> expand_conv, bn1 -> expand_bn, conv_dw -> depthwise_conv (depthwise_kernel),
        bn2 -> depthwise_bn, se.conv_reduce / se.conv_expand -> se.conv_reduce / se.conv_expand,
        conv_pwl -> project_conv, bn3 -> project_bn
    conv_stem -> stem_conv, bn1 -> stem_bn, conv_head -> top_conv, bn2 -> top_bn, classifier -> head

BatchNorm: weight/bias/running_mean/running_var -> gamma/beta/moving_mean/moving_variance;
``num_batches_tracked`` (a counter deepvision does not keep) is skipped on import and written as 0.
timm builds these models with TensorFlow's "same" padding and BatchNorm eps 1e-3, and its channel
rounding is keras.applications' (``min_filter_ratio=None``: B3 has 14,467,622 weights).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deepvision.importers.timm_cnn import CONV, COUNTER, DENSE, DEPTHWISE, Rule, TimmFormatError, imagenet_cfg
from deepvision.layers.mbconv import se_filters
from deepvision.models.classification.efficientnetv2 import BLOCKS_ARGS, VARIANTS, block_plan

FAMILY = "efficientnetv2"
TIMM_NAMES = {f"tf_efficientnetv2_{name[len('EfficientNetV2'):].lower()}": name for name in VARIANTS}
_HALF = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
PRETRAINED_CFG = {
    "tf_efficientnetv2_b0": imagenet_cfg(192, 0.875, "timm/tf_efficientnetv2_b0.in1k"),
    "tf_efficientnetv2_b1": imagenet_cfg(192, 0.882, "timm/tf_efficientnetv2_b1.in1k"),
    "tf_efficientnetv2_b2": imagenet_cfg(208, 0.890, "timm/tf_efficientnetv2_b2.in1k"),
    "tf_efficientnetv2_b3": {**imagenet_cfg(240, 0.904, "timm/tf_efficientnetv2_b3.in21k_ft_in1k"), **_HALF},
    "tf_efficientnetv2_s": {**imagenet_cfg(300, 1.0, "timm/tf_efficientnetv2_s.in21k_ft_in1k"), **_HALF},
    "tf_efficientnetv2_m": {**imagenet_cfg(384, 1.0, "timm/tf_efficientnetv2_m.in21k_ft_in1k"), **_HALF},
    "tf_efficientnetv2_l": {**imagenet_cfg(384, 1.0, "timm/tf_efficientnetv2_l.in21k_ft_in1k"), **_HALF},
}
_BN = (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"), ("running_var", "moving_variance"))


def matches(shapes: Mapping[str, tuple[int, ...]]) -> bool:
    """Whether a state_dict looks like a timm EfficientNet(V2)."""
    return "conv_stem.weight" in shapes and "blocks.0.0.bn1.weight" in shapes


def _bn(timm: str, canonical: str) -> list[Rule]:
    return [Rule(f"{timm}.{a}", f"{canonical}.{b}") for a, b in _BN] + [Rule(f"{timm}.num_batches_tracked", None, COUNTER)]


def _plan(architecture: str, config: Mapping[str, Any]) -> list[dict[str, Any]]:
    width, depth, table, *_ = VARIANTS[architecture]
    return block_plan(width, depth, BLOCKS_ARGS[table], min_filter_ratio=config.get("min_filter_ratio"))


def rules_for(architecture: str, config: Mapping[str, Any]) -> list[Rule]:
    """Every tensor of timm's ``tf_efficientnetv2`` equal to ``architecture`` with ``config``, timm's order."""
    out = [Rule("conv_stem.weight", "stem_conv.kernel", CONV), *_bn("bn1", "stem_bn")]
    for k, spec in enumerate(_plan(architecture, config)):
        t, c = f"blocks.{spec['stage']}.{spec['index']}.", f"blocks.{k}."
        squeeze = se_filters(spec["input_filters"], spec["se_ratio"])
        se = [Rule(t + "se.conv_reduce.weight", c + "se.conv_reduce.kernel", CONV),
              Rule(t + "se.conv_reduce.bias", c + "se.conv_reduce.bias"),
              Rule(t + "se.conv_expand.weight", c + "se.conv_expand.kernel", CONV),
              Rule(t + "se.conv_expand.bias", c + "se.conv_expand.bias")] if squeeze else []
        if spec["fused"] and spec["expand_ratio"] == 1:
            out += [Rule(t + "conv.weight", c + "project_conv.kernel", CONV), *_bn(t + "bn1", c + "project_bn")]
            if se:
                raise TimmFormatError("a fused block without expansion but with squeeze-excitation has no timm form")
        elif spec["fused"]:
            out += [Rule(t + "conv_exp.weight", c + "expand_conv.kernel", CONV), *_bn(t + "bn1", c + "expand_bn"), *se,
                    Rule(t + "conv_pwl.weight", c + "project_conv.kernel", CONV), *_bn(t + "bn2", c + "project_bn")]
        else:
            if spec["expand_ratio"] == 1:
                raise TimmFormatError("MBConv without expansion (timm's 'ds' block) is not in any EfficientNetV2")
            out += [Rule(t + "conv_pw.weight", c + "expand_conv.kernel", CONV), *_bn(t + "bn1", c + "expand_bn"),
                    Rule(t + "conv_dw.weight", c + "depthwise_conv.depthwise_kernel", DEPTHWISE),
                    *_bn(t + "bn2", c + "depthwise_bn"), *se,
                    Rule(t + "conv_pwl.weight", c + "project_conv.kernel", CONV), *_bn(t + "bn3", c + "project_bn")]
    if config.get("features_only", False):
        return out
    out += [Rule("conv_head.weight", "top_conv.kernel", CONV), *_bn("bn2", "top_bn")]
    if config.get("include_top", True):
        out += [Rule("classifier.weight", "head.kernel", DENSE), Rule("classifier.bias", "head.bias")]
    return out


def _base_config(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    include_top = "classifier.weight" in shapes
    return {
        "include_top": include_top,
        "classes": int(shapes["classifier.weight"][0]) if include_top else 1000,
        "input_shape": [224, 224, int(shapes["conv_stem.weight"][1])],
        "pooling": None if include_top else "avg",
        "include_preprocessing": False,  # timm models take normalised inputs
        "min_filter_ratio": None,  # timm rounds channels as keras.applications does
        "bn_epsilon": 1e-3,
    }


def infer_config(shapes: Mapping[str, tuple[int, ...]], timm_kwargs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(architecture, config)`` of a timm tf_efficientnetv2 state_dict: the variant whose tensors
    (names and shapes) are exactly the file's."""
    from deepvision.importers.timm_cnn import timm_shape

    config = _base_config(shapes)
    canonical = {}
    for architecture in VARIANTS:
        try:
            spec = rules_for(architecture, config)
        except TimmFormatError:
            continue
        names = {r.timm for r in spec}
        if names != set(shapes):
            continue
        from deepvision.importers.keras_applications_efficientnetv2 import canonical_shapes

        canonical = canonical_shapes(architecture, config)
        if all(r.canonical is None or timm_shape(canonical[r.canonical], r.kind) == tuple(shapes[r.timm])
               for r in spec):
            return architecture, config
    raise TimmFormatError(
        f"the state_dict is no timm tf_efficientnetv2_b0..b3/s/m/l deepvision represents "
        f"({len(shapes)} tensors{'; closest by names has other shapes' if canonical else ''})."
    )


def timm_model_args(architecture: str, config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(name, kwargs)`` for ``timm.create_model`` giving the tensors of this EfficientNetV2."""
    if config.get("min_filter_ratio", 0.9) is not None and architecture == "EfficientNetV2B3":
        raise TimmFormatError("timm's tf_efficientnetv2_b3 rounds channels as keras.applications "
                              "(min_filter_ratio=None); this B3 uses the seed's rounding, which timm cannot build.")
    name = next(t for t, a in TIMM_NAMES.items() if a == architecture)
    kwargs: dict[str, Any] = {}
    channels = int((config.get("input_shape") or [224, 224, 3])[-1])
    if channels != 3:
        kwargs["in_chans"] = channels
    include_top = bool(config.get("include_top", True))
    kwargs["num_classes"] = int(config.get("classes", 1000)) if include_top else 0
    return name, kwargs
