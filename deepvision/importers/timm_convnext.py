"""timm ``convnext_*`` <-> deepvision ConvNeXt: the name map (used by :mod:`deepvision.importers.timm_cnn`).

::

    stem.0.weight / .bias                   stem_conv.kernel / .bias          (O, I, 4, 4) -> (4, 4, I, O)
    stem.1.weight / .bias                   stem_norm.gamma / .beta
    stages.<s>.downsample.0.weight / .bias  downsample_norms.<s-1>.gamma / .beta     (s = 1, 2, 3)
    stages.<s>.downsample.1.weight / .bias  downsample_convs.<s-1>.kernel / .bias   (O, I, 2, 2) -> (2, 2, I, O)
    stages.<s>.blocks.<j>.gamma             blocks.<k>.layer_scale.gamma      (k = blocks before stage s + j)
    stages.<s>.blocks.<j>.conv_dw.weight    blocks.<k>.depthwise_conv.depthwise_kernel  (C, 1, 7, 7) -> (7, 7, C, 1)
    stages.<s>.blocks.<j>.conv_dw.bias      blocks.<k>.depthwise_conv.bias
    stages.<s>.blocks.<j>.norm.weight/.bias blocks.<k>.norm.gamma / .beta
    stages.<s>.blocks.<j>.mlp.fc{1,2}.*     blocks.<k>.mlp.fc{1,2}.kernel (transposed) / .bias
    head.norm.weight / .bias                head_norm.gamma / .beta
    head.fc.weight / .bias                  head.kernel (transposed) / .bias  (absent with num_classes=0)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deepvision.importers.timm_cnn import CONV, DENSE, DEPTHWISE, Rule, TimmFormatError, imagenet_cfg
from deepvision.models.classification.convnext import VARIANTS, default_config, variant_of

FAMILY = "convnext"
TIMM_NAMES = {timm: name for name, (_, _, timm) in VARIANTS.items()}
# timm's default pretrained_cfg of each stock model (checked with timm 1.0.31).
PRETRAINED_CFG = {
    "convnext_tiny": imagenet_cfg(224, 0.95, "timm/convnext_tiny.in12k_ft_in1k"),
    "convnext_small": imagenet_cfg(224, 0.95, "timm/convnext_small.in12k_ft_in1k"),
    "convnext_base": imagenet_cfg(224, 0.875, "timm/convnext_base.fb_in22k_ft_in1k"),
    "convnext_large": imagenet_cfg(224, 0.875, "timm/convnext_large.fb_in22k_ft_in1k"),
    "convnext_xlarge": imagenet_cfg(224, 0.875, "timm/convnext_xlarge.fb_in22k_ft_in1k"),
}


def matches(shapes: Mapping[str, tuple[int, ...]]) -> bool:
    """Whether a state_dict looks like a timm ConvNeXt."""
    return "stem.0.weight" in shapes and "stages.0.blocks.0.conv_dw.weight" in shapes


def infer_config(shapes: Mapping[str, tuple[int, ...]], timm_kwargs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(architecture, backend-neutral config)`` of a timm ConvNeXt state_dict, from its tensors."""
    depths, dims = [], []
    for stage in range(4):
        count = 0
        while f"stages.{stage}.blocks.{count}.conv_dw.weight" in shapes:
            count += 1
        if count == 0:
            raise TimmFormatError(f"not a four-stage timm ConvNeXt: stage {stage} has no blocks")
        depths.append(count)
        dims.append(int(shapes[f"stages.{stage}.blocks.0.conv_dw.weight"][0]))
        kernel = shapes[f"stages.{stage}.blocks.0.conv_dw.weight"][-1]
        if kernel != 7:
            raise TimmFormatError(f"depthwise kernel {kernel}x{kernel}: deepvision's ConvNeXt uses 7x7")
        hidden = shapes[f"stages.{stage}.blocks.0.mlp.fc1.weight"][0]
        if hidden != 4 * dims[-1]:
            raise TimmFormatError(f"MLP width {hidden} is not 4 x {dims[-1]}: only mlp_ratio=4 is supported")
    if "stages.0.blocks.0.mlp.fc1.weight" not in shapes or len(shapes["stages.0.blocks.0.mlp.fc1.weight"]) != 2:
        raise TimmFormatError("conv_mlp=True ConvNeXts (1x1-conv MLPs) are not supported")
    stem = shapes["stem.0.weight"]
    if tuple(stem[2:]) != (4, 4):
        raise TimmFormatError(f"stem kernel {tuple(stem[2:])}: deepvision's ConvNeXt has the 4x4 patchify stem")
    include_top = "head.fc.weight" in shapes
    config = default_config(
        depths=depths, projection_dims=dims, include_top=include_top,
        classes=int(shapes["head.fc.weight"][0]) if include_top else 1000,
        input_shape=[224, 224, int(stem[1])], pooling=None if include_top else "avg",
        layer_scale_init_value=1e-6 if "stages.0.blocks.0.gamma" in shapes else None,
        include_preprocessing=False,  # timm models take normalised inputs
    )
    return variant_of(depths, dims), config


def rules_for(architecture: str, config: Mapping[str, Any]) -> list[Rule]:
    """Every tensor of the timm ConvNeXt of ``config``, with its canonical name, in timm's order."""
    depths = [int(d) for d in config["depths"]]
    out = [Rule("stem.0.weight", "stem_conv.kernel", CONV), Rule("stem.0.bias", "stem_conv.bias"),
           Rule("stem.1.weight", "stem_norm.gamma"), Rule("stem.1.bias", "stem_norm.beta")]
    k = 0
    for stage, depth in enumerate(depths):
        if stage > 0:
            t, i = f"stages.{stage}.downsample.", stage - 1
            out += [Rule(t + "0.weight", f"downsample_norms.{i}.gamma"), Rule(t + "0.bias", f"downsample_norms.{i}.beta"),
                    Rule(t + "1.weight", f"downsample_convs.{i}.kernel", CONV),
                    Rule(t + "1.bias", f"downsample_convs.{i}.bias")]
        for j in range(depth):
            t, c = f"stages.{stage}.blocks.{j}.", f"blocks.{k}."
            if config.get("layer_scale_init_value", 1e-6) is not None:
                out.append(Rule(t + "gamma", c + "layer_scale.gamma"))
            out += [Rule(t + "conv_dw.weight", c + "depthwise_conv.depthwise_kernel", DEPTHWISE),
                    Rule(t + "conv_dw.bias", c + "depthwise_conv.bias"),
                    Rule(t + "norm.weight", c + "norm.gamma"), Rule(t + "norm.bias", c + "norm.beta"),
                    Rule(t + "mlp.fc1.weight", c + "mlp.fc1.kernel", DENSE), Rule(t + "mlp.fc1.bias", c + "mlp.fc1.bias"),
                    Rule(t + "mlp.fc2.weight", c + "mlp.fc2.kernel", DENSE), Rule(t + "mlp.fc2.bias", c + "mlp.fc2.bias")]
            k += 1
    if config.get("features_only", False):
        return out
    out += [Rule("head.norm.weight", "head_norm.gamma"), Rule("head.norm.bias", "head_norm.beta")]
    if config.get("include_top", True):
        out += [Rule("head.fc.weight", "head.kernel", DENSE), Rule("head.fc.bias", "head.bias")]
    return out


def timm_model_args(architecture: str, config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(name, kwargs)`` for ``timm.create_model`` giving the tensors of this ConvNeXt."""
    depths, dims = [int(d) for d in config["depths"]], [int(c) for c in config["projection_dims"]]
    variant = variant_of(depths, dims)
    kwargs: dict[str, Any] = {}
    name = VARIANTS[variant][2] if variant in VARIANTS else "convnext_tiny"
    if variant not in VARIANTS:
        kwargs.update(depths=depths, dims=dims)
    if config.get("layer_scale_init_value", 1e-6) is None:
        kwargs["ls_init_value"] = None
    channels = int((config.get("input_shape") or [224, 224, 3])[-1])
    if channels != 3:
        kwargs["in_chans"] = channels
    include_top = bool(config.get("include_top", True))
    kwargs["num_classes"] = int(config.get("classes", 1000)) if include_top else 0
    if not include_top and config.get("pooling") == "max":
        kwargs["global_pool"] = "max"
    if float(config.get("layer_norm_epsilon", 1e-6)) != 1e-6:
        raise TimmFormatError("timm's ConvNeXt uses LayerNorm eps 1e-6; this model uses "
                              f"{config['layer_norm_epsilon']}")
    return name, kwargs
