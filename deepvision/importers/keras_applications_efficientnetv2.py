"""keras.applications EfficientNetV2B0..B3/S/M/L <-> deepvision canonical names.

keras.applications' layer names (``block4b_se_reduce``, ``stem_bn``, ``predictions``) are mapped to
deepvision's canonical names (``blocks.7.se.conv_reduce``, ``stem_bn``, ``head``); the tensors
themselves are in Keras layout, which is the canonical layout. The structure of each variant comes
from the family's :func:`~deepvision.models.classification.efficientnetv2.block_plan`, so the map is
checked against the exact set of canonical tensors (and shapes) of the deepvision model.
"""

from __future__ import annotations

import re
from typing import Any

from deepvision.layers.mbconv import se_filters
from deepvision.models.classification.efficientnetv2 import (
    BLOCKS_ARGS,
    VARIANTS,
    block_plan,
    stem_filters,
    top_filters,
)

APPLICATIONS: dict[str, str] = {name: name for name in VARIANTS}

# Config entries a deepvision model needs to be keras.applications' network: its filter rounding has
# no MobileNet guard (deepvision's default follows the seed, which changes B3's first stage). Merge
# into the config of checkpoints imported from keras.applications.
CONFIG_OVERRIDES: dict[str, Any] = {"min_filter_ratio": None}

# keras.applications' defaults, which its constructors do not let you change.
_FIXED_IN_APPLICATIONS = {"bn_epsilon": 1e-3, "activation": "swish", "depth_divisor": 8, "min_depth": 8,
                          "features_only": False}

# keras.applications block layer suffix -> deepvision attribute path inside a (Fused)MBConv block.
_BLOCK_LAYERS = {
    "expand_conv": "expand_conv",
    "expand_bn": "expand_bn",
    "dwconv2": "depthwise_conv",
    "bn": "depthwise_bn",
    "se_reduce": "se.conv_reduce",
    "se_expand": "se.conv_expand",
    "project_conv": "project_conv",
    "project_bn": "project_bn",
}
_TOP_LAYERS = {"stem_conv": "stem_conv", "stem_bn": "stem_bn", "top_conv": "top_conv", "top_bn": "top_bn",
               "predictions": "head"}
_BLOCK_NAME = re.compile(r"^block(\d+)([a-z])_(.+)$")
_BN = ("gamma", "beta", "moving_mean", "moving_variance")


def app_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """keras.applications constructor arguments equivalent to a backend-neutral deepvision config."""
    for key, default in _FIXED_IN_APPLICATIONS.items():
        if config.get(key, default) != default:
            raise ValueError(f"keras.applications EfficientNetV2 has no option {key}={config[key]!r} "
                             f"(it always uses {default!r}).")
    include_top = bool(config.get("include_top", True))
    shape = list(config.get("input_shape") or (224, 224, 3))
    if include_top:
        # keras.applications wants a static size with a top; the weights do not depend on it.
        shape = [224 if d is None else d for d in shape[:2]] + [shape[2]]
    kwargs = {
        "include_top": include_top,
        "weights": None,
        "input_shape": tuple(shape),
        "pooling": config.get("pooling"),
        "classes": int(config.get("classes", 1000)),
        "classifier_activation": None,
        "include_preprocessing": bool(config.get("include_preprocessing", True)),
    }
    return kwargs


def application_config(app_model: Any) -> dict[str, Any]:
    """The deepvision config entries a keras.applications EfficientNetV2 model implies beyond
    ``include_top``/``classes``/``input_shape``: ``include_preprocessing``, ``pooling`` (headless) and
    :data:`CONFIG_OVERRIDES`. Merge into the config of a checkpoint imported from ``app_model``."""
    import keras

    names = {layer.name for layer in app_model.layers}
    config: dict[str, Any] = dict(CONFIG_OVERRIDES)
    config["include_preprocessing"] = any(isinstance(layer, keras.layers.Rescaling) for layer in app_model.layers)
    if "predictions" not in names:
        config["pooling"] = "avg" if "avg_pool" in names else "max" if "max_pool" in names else None
    return config


def canonical_shapes(architecture: str, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every canonical tensor of deepvision ``architecture`` with ``config`` and its shape, in model order.

    Pure Python (no model is built): it follows the same :func:`block_plan` as both implementations.
    """
    width, depth, table, *_ = VARIANTS[architecture]
    args = BLOCKS_ARGS[table]
    channels = int((config.get("input_shape") or (224, 224, 3))[-1])
    ratio = config.get("min_filter_ratio", 0.9)  # the deepvision models' default
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name: str, k: int, cin: int, cout: int, bias: bool = False) -> None:
        shapes[f"{name}.kernel"] = (k, k, cin, cout)
        if bias:
            shapes[f"{name}.bias"] = (cout,)

    def norm(name: str, channels: int) -> None:
        shapes.update({f"{name}.{s}": (channels,) for s in _BN})

    stem = stem_filters(width, args, min_filter_ratio=ratio)
    conv("stem_conv", 3, channels, stem)
    norm("stem_bn", stem)
    plan = block_plan(width, depth, args, min_filter_ratio=ratio)
    for i, spec in enumerate(plan):
        prefix, k = f"blocks.{i}.", spec["kernel_size"]
        cin, cout, expand = spec["input_filters"], spec["output_filters"], spec["expand_ratio"]
        filters = cin * expand
        if expand != 1:
            conv(prefix + "expand_conv", k if spec["fused"] else 1, cin, filters)
            norm(prefix + "expand_bn", filters)
        if not spec["fused"]:
            shapes[prefix + "depthwise_conv.depthwise_kernel"] = (k, k, filters, 1)
            norm(prefix + "depthwise_bn", filters)
        squeeze = se_filters(cin, spec["se_ratio"])
        if squeeze:
            conv(prefix + "se.conv_reduce", 1, filters, squeeze, bias=True)
            conv(prefix + "se.conv_expand", 1, squeeze, filters, bias=True)
        conv(prefix + "project_conv", k if spec["fused"] and expand == 1 else 1, filters, cout)
        norm(prefix + "project_bn", cout)
    if not config.get("features_only", False):
        top = top_filters(width, min_filter_ratio=ratio)
        conv("top_conv", 1, plan[-1]["output_filters"], top)
        norm("top_bn", top)
        if config.get("include_top", True):
            classes = int(config.get("classes", 1000))
            shapes["head.kernel"], shapes["head.bias"] = (top, classes), (classes,)
    return shapes


def _layer_variables(layer: Any) -> list[tuple[str, Any]]:
    """(canonical leaf name, variable) for the weights of one keras.applications layer."""
    import keras

    if isinstance(layer, keras.layers.DepthwiseConv2D):
        pairs = [("depthwise_kernel", layer.kernel), ("bias", layer.bias)]
    elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
        pairs = [("kernel", layer.kernel), ("bias", layer.bias)]
    elif isinstance(layer, keras.layers.BatchNormalization):
        pairs = [(s, getattr(layer, s)) for s in _BN]
    else:
        raise ValueError(f"Unexpected weights in keras.applications layer {layer.name!r} ({type(layer).__name__}).")
    return [(leaf, v) for leaf, v in pairs if v is not None]


def variable_map(app_model: Any, config: dict[str, Any]) -> dict[str, Any]:
    """canonical tensor name -> the keras.applications variable holding it (same layout).

    Raises:
        ValueError: when a variable of ``app_model`` is not mapped, is mapped twice, or the mapped
            names and shapes are not exactly those of a deepvision EfficientNetV2 with ``config``.
    """
    weighted = [layer for layer in app_model.layers if layer.weights]
    blocks = sorted({(int(m.group(1)), m.group(2)) for m in (_BLOCK_NAME.match(lay.name) for lay in weighted) if m})
    flat_index = {key: i for i, key in enumerate(blocks)}  # block3b -> its position in the network
    mapping: dict[str, Any] = {}
    for layer in weighted:
        match = _BLOCK_NAME.match(layer.name)
        if match and match.group(3) in _BLOCK_LAYERS:
            prefix = f"blocks.{flat_index[(int(match.group(1)), match.group(2))]}.{_BLOCK_LAYERS[match.group(3)]}"
        elif layer.name in _TOP_LAYERS:
            prefix = _TOP_LAYERS[layer.name]
        else:
            raise ValueError(f"keras.applications layer {layer.name!r} has no deepvision counterpart.")
        for leaf, variable in _layer_variables(layer):
            name = f"{prefix}.{leaf}"
            if name in mapping:
                raise ValueError(f"{name} is mapped twice ({layer.name}).")
            mapping[name] = variable
    mapped = {id(v) for v in mapping.values()}
    unmapped = [v.path for v in app_model.weights if id(v) not in mapped]
    if unmapped or len(mapped) != len(app_model.weights):
        raise ValueError(f"keras.applications variables without a canonical name: {unmapped[:5]}")
    actual = {name: tuple(int(d) for d in v.shape) for name, v in mapping.items()}
    expected = _matching_variant(actual, config)
    return {name: mapping[name] for name in expected}


def _matching_variant(actual: dict[str, tuple[int, ...]], config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The canonical shapes of the variant the mapped model is (raise if it is none of them)."""
    best, best_diff = None, None
    for architecture in VARIANTS:
        if config.get("architecture") not in (None, architecture):
            continue
        expected = canonical_shapes(architecture, config)
        if expected == actual:
            return expected
        diff = sorted(set(expected) ^ set(actual)) or sorted(n for n in expected if expected[n] != actual[n])
        if best_diff is None or len(diff) < len(best_diff):
            best, best_diff = architecture, diff
    hint = ""
    if config.get("min_filter_ratio", 0.9) is not None:
        hint = f" keras.applications rounds filters without MobileNet's guard: add {CONFIG_OVERRIDES} to the config."
    raise ValueError(
        f"The keras.applications model is not a deepvision EfficientNetV2 with config {config}: the closest, "
        f"{best}, differs in {len(best_diff)} tensors, e.g. {best_diff[:5]}.{hint}"
    )
