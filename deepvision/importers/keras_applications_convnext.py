"""keras.applications ConvNeXtTiny..XLarge (and its generic ``ConvNeXt()``) <-> deepvision canonical names.

keras.applications names its layers after the model (``convnext_tiny_stage_2_block_4_pointwise_conv_1``,
``convnext_tiny_downsampling_conv_1``, ``convnext_tiny_head_dense``); they map to deepvision's canonical
names (``blocks.10.mlp.fc1``, ``downsample_convs.1``, ``head``) with the layer kinds' own tensors in
Keras layout, which is the canonical layout, with one exception: keras.applications' depthwise
convolutions are ``Conv2D(groups=C)`` layers whose kernels are (7, 7, 1, C), while the canonical
depthwise kernel is (7, 7, C, 1). Both hold the same numbers in the same memory order, so the map
hands out a reshaping view of those variables (:class:`ReshapedVariable`); nothing is copied twice.

Map::

    <name>_stem_conv                       stem_conv
    <name>_stem_layernorm                  stem_norm
    <name>_downsampling_layernorm_<i>      downsample_norms.<i>
    <name>_downsampling_conv_<i>           downsample_convs.<i>
    <name>_stage_<s>_block_<j>_depthwise_conv    blocks.<k>.depthwise_conv   (k = blocks before stage s + j)
    <name>_stage_<s>_block_<j>_layernorm         blocks.<k>.norm
    <name>_stage_<s>_block_<j>_pointwise_conv_1  blocks.<k>.mlp.fc1
    <name>_stage_<s>_block_<j>_pointwise_conv_2  blocks.<k>.mlp.fc2
    <name>_stage_<s>_block_<j>_layer_scale       blocks.<k>.layer_scale (gamma)
    <name>_head_layernorm | the headless model's last LayerNormalization   head_norm
    <name>_head_dense                      head
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from deepvision.layers.convnext_block import hidden_width
from deepvision.models.classification.convnext import VARIANTS

APPLICATIONS: dict[str, str] = {name: name for name in VARIANTS}
APPLICATIONS["ConvNeXt"] = "convnext.ConvNeXt"  # keras.applications' generic builder, which the variants call

# keras.applications' fixed choices, which its constructors do not let you change.
_FIXED_IN_APPLICATIONS = {"layer_norm_epsilon": 1e-6, "features_only": False}

_BLOCK = re.compile(r"_stage_(\d+)_block_(\d+)_(depthwise_conv|layernorm|pointwise_conv_1|pointwise_conv_2|layer_scale)$")
_BLOCK_PARTS = {"depthwise_conv": "depthwise_conv", "layernorm": "norm", "pointwise_conv_1": "mlp.fc1",
                "pointwise_conv_2": "mlp.fc2", "layer_scale": "layer_scale"}
_DOWNSAMPLE = re.compile(r"_downsampling_(layernorm|conv)_(\d+)$")


class ReshapedVariable:
    """A Keras variable seen in another shape with the same memory order (a grouped-conv kernel
    (k, k, 1, C) as the canonical depthwise kernel (k, k, C, 1)); reads and writes go through it."""

    def __init__(self, variable: Any, shape: tuple[int, ...]) -> None:
        if int(np.prod(shape)) != int(np.prod(variable.shape)):
            raise ValueError(f"{variable.path}: cannot view {tuple(variable.shape)} as {shape}")
        self.variable = variable
        self.shape = tuple(shape)
        self.dtype = variable.dtype
        self.trainable = variable.trainable
        self.path = variable.path

    @property
    def value(self) -> Any:
        import keras

        return keras.ops.reshape(self.variable.value, self.shape)

    def assign(self, array: np.ndarray) -> None:
        self.variable.assign(np.asarray(array).reshape(tuple(self.variable.shape)))


def _stage_sizes(config: dict[str, Any], architecture: str | None = None) -> tuple[list[int], list[int]]:
    name = architecture or config.get("architecture")
    if name in VARIANTS:
        depths, dims, _ = VARIANTS[name]
        return list(depths), list(dims)
    if "depths" not in config or "projection_dims" not in config:
        raise ValueError("A generic ConvNeXt config needs depths and projection_dims.")
    return [int(d) for d in config["depths"]], [int(c) for c in config["projection_dims"]]


def app_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """keras.applications constructor arguments equivalent to a backend-neutral deepvision config."""
    for key, default in _FIXED_IN_APPLICATIONS.items():
        if config.get(key, default) != default:
            raise ValueError(f"keras.applications ConvNeXt has no option {key}={config[key]!r} "
                             f"(it always uses {default!r}).")
    if config.get("layer_scale_init_value", 1e-6) is None:
        raise ValueError("keras.applications ConvNeXt always has layer scale: layer_scale_init_value=None "
                         "has no counterpart there.")
    include_top = bool(config.get("include_top", True))
    shape = list(config.get("input_shape") or (224, 224, 3))
    if include_top:
        # keras.applications wants a static size with a top; the weights do not depend on it.
        shape = [224 if d is None else d for d in shape[:2]] + [shape[2]]
    return {
        "include_top": include_top,
        "weights": None,
        "input_shape": tuple(shape),
        "pooling": config.get("pooling"),
        "classes": int(config.get("classes", 1000)),
        "classifier_activation": None,
        "include_preprocessing": bool(config.get("include_preprocessing", True)),
    }


def build_application(architecture: str, config: dict[str, Any]) -> Any:
    """The keras.applications model of ``architecture`` (the generic ``ConvNeXt`` through
    keras.applications' own ``convnext.ConvNeXt`` builder, which its named variants call)."""
    import keras

    kwargs = app_kwargs(config)
    if architecture in VARIANTS:
        return getattr(keras.applications, APPLICATIONS[architecture])(**kwargs)
    from keras.src.applications import convnext as keras_convnext

    depths, dims = _stage_sizes(config, architecture)
    return keras_convnext.ConvNeXt(depths=depths, projection_dims=dims, drop_path_rate=0.0,
                                   layer_scale_init_value=float(config.get("layer_scale_init_value", 1e-6)),
                                   default_size=224, name="convnext", **kwargs)


def _flat_layers(model: Any) -> list[Any]:
    """Every leaf layer with weights, the Sequential stem and downsampling blocks opened."""
    import keras

    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Sequential):
            out.extend(_flat_layers(layer))
        elif layer.weights:
            out.append(layer)
    return out


def application_config(app_model: Any) -> dict[str, Any]:
    """The deepvision config a keras.applications ConvNeXt model implies (stage sizes, top, pooling,
    preprocessing); merged into the config of a checkpoint imported from ``app_model``."""
    import keras

    layers = _flat_layers(app_model)
    blocks: dict[int, int] = {}
    dims: dict[int, int] = {}
    head = None
    for layer in layers:
        match = _BLOCK.search(layer.name)
        if match:
            stage, index = int(match.group(1)), int(match.group(2))
            blocks[stage] = max(blocks.get(stage, 0), index + 1)
            if match.group(3) == "layer_scale":
                dims[stage] = int(layer.weights[0].shape[0])
        elif layer.name.endswith("_head_dense"):
            head = layer
    if sorted(blocks) != [0, 1, 2, 3]:
        raise ValueError(f"{app_model.name} is not a keras.applications ConvNeXt (stages found: {sorted(blocks)}).")
    all_layers = list(app_model._flatten_layers(include_self=False))
    config: dict[str, Any] = {
        "depths": [blocks[s] for s in range(4)],
        "projection_dims": [dims[s] for s in range(4)],
        "include_top": head is not None,
        "input_shape": list(app_model.input_shape[1:]),
        "include_preprocessing": any(isinstance(layer, keras.layers.Normalization) for layer in all_layers),
        "layer_norm_epsilon": 1e-6,
    }
    if head is not None:
        config["classes"] = int(head.kernel.shape[-1])
    else:
        kinds = {type(layer).__name__ for layer in all_layers}
        config["pooling"] = ("avg" if "GlobalAveragePooling2D" in kinds else "max" if "GlobalMaxPooling2D" in kinds
                             else None)
    return config


def canonical_shapes(architecture: str, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every canonical tensor of a deepvision ConvNeXt with ``config`` and its shape, in model order
    (pure Python, no model built; the same structure as both implementations)."""
    depths, dims = _stage_sizes(config, architecture)
    channels = int((config.get("input_shape") or (224, 224, 3))[-1])
    shapes: dict[str, tuple[int, ...]] = {
        "stem_conv.kernel": (4, 4, channels, dims[0]), "stem_conv.bias": (dims[0],),
        "stem_norm.gamma": (dims[0],), "stem_norm.beta": (dims[0],),
    }
    for i in range(3):
        shapes[f"downsample_norms.{i}.gamma"] = shapes[f"downsample_norms.{i}.beta"] = (dims[i],)
    for i in range(3):
        shapes[f"downsample_convs.{i}.kernel"] = (2, 2, dims[i], dims[i + 1])
        shapes[f"downsample_convs.{i}.bias"] = (dims[i + 1],)
    ratio = float(config.get("mlp_ratio", 4.0))
    k = 0
    for stage, depth in enumerate(depths):
        c = dims[stage]
        hidden = hidden_width(c, ratio)
        for _ in range(depth):
            p = f"blocks.{k}."
            shapes.update({
                p + "depthwise_conv.depthwise_kernel": (7, 7, c, 1), p + "depthwise_conv.bias": (c,),
                p + "norm.gamma": (c,), p + "norm.beta": (c,),
                p + "mlp.fc1.kernel": (c, hidden), p + "mlp.fc1.bias": (hidden,),
                p + "mlp.fc2.kernel": (hidden, c), p + "mlp.fc2.bias": (c,),
            })
            if config.get("layer_scale_init_value", 1e-6) is not None:
                shapes[p + "layer_scale.gamma"] = (c,)
            k += 1
    if not config.get("features_only", False):
        shapes["head_norm.gamma"] = shapes["head_norm.beta"] = (dims[3],)
        if config.get("include_top", True):
            classes = int(config.get("classes", 1000))
            shapes["head.kernel"], shapes["head.bias"] = (dims[3], classes), (classes,)
    return shapes


def _leaves(layer: Any) -> list[tuple[str, Any]]:
    import keras

    if isinstance(layer, keras.layers.Conv2D) and layer.groups > 1:
        # Conv2D(groups=C): kernel (k, k, 1, C) is the canonical depthwise (k, k, C, 1), reshaped.
        kh, kw, _, out = (int(d) for d in layer.kernel.shape)
        return [("depthwise_kernel", ReshapedVariable(layer.kernel, (kh, kw, out, 1))), ("bias", layer.bias)]
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
        return [("kernel", layer.kernel), ("bias", layer.bias)]
    if isinstance(layer, keras.layers.LayerNormalization):
        return [("gamma", layer.gamma), ("beta", layer.beta)]
    if type(layer).__name__ == "LayerScale":
        return [("gamma", layer.weights[0])]
    raise ValueError(f"Unexpected weights in keras.applications layer {layer.name!r} ({type(layer).__name__}).")


def variable_map(app_model: Any, config: dict[str, Any]) -> dict[str, Any]:
    """canonical tensor name -> the keras.applications variable holding it (canonical layout).

    Raises:
        ValueError: when a variable of ``app_model`` is not mapped, is mapped twice, or the mapped
            names and shapes differ from those of the deepvision ConvNeXt with ``config``.
    """
    import keras

    implied = application_config(app_model)
    depths = implied["depths"]
    starts = [int(sum(depths[:s])) for s in range(4)]
    mapping: dict[str, Any] = {}
    for layer in _flat_layers(app_model):
        name = layer.name
        block, down = _BLOCK.search(name), _DOWNSAMPLE.search(name)
        if block:
            prefix = f"blocks.{starts[int(block.group(1))] + int(block.group(2))}.{_BLOCK_PARTS[block.group(3)]}"
        elif down:
            prefix = f"downsample_{'norms' if down.group(1) == 'layernorm' else 'convs'}.{down.group(2)}"
        elif name.endswith("_stem_conv"):
            prefix = "stem_conv"
        elif name.endswith("_stem_layernorm"):
            prefix = "stem_norm"
        elif name.endswith("_head_layernorm") or (isinstance(layer, keras.layers.LayerNormalization)
                                                  and not implied["include_top"] and layer is _flat_layers(app_model)[-1]):
            prefix = "head_norm"
        elif name.endswith("_head_dense"):
            prefix = "head"
        else:
            raise ValueError(f"keras.applications layer {name!r} has no deepvision counterpart.")
        for leaf, variable in _leaves(layer):
            if variable is None:
                continue
            tensor = f"{prefix}.{leaf}"
            if tensor in mapping:
                raise ValueError(f"{tensor} is mapped twice ({name}).")
            mapping[tensor] = variable
    mapped = {id(getattr(v, "variable", v)) for v in mapping.values()}
    unmapped = [v.path for v in app_model.weights if id(v) not in mapped]
    if unmapped:
        raise ValueError(f"keras.applications variables without a canonical name: {unmapped[:5]}")
    expected = canonical_shapes("ConvNeXt", {**config, **implied})
    actual = {name: tuple(int(d) for d in v.shape) for name, v in mapping.items()}
    if actual != expected:
        diff = sorted(set(expected) ^ set(actual)) or sorted(n for n in expected if expected[n] != actual[n])
        raise ValueError(f"The keras.applications model is not a deepvision ConvNeXt with config {config}: "
                         f"{len(diff)} tensors differ, e.g. {diff[:5]}.")
    return {name: mapping[name] for name in expected}
