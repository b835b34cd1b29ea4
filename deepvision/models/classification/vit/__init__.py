"""Vision Transformer family: timm's ``VisionTransformer`` (``vit_*_patch{16,32}_224``), layer for layer.

Registration only (no framework import). Every variant equals timm's model of the same name with
1000 classes: class token, learned position embedding, pre-norm blocks with a fused qkv projection
(with bias) and exact GELU, LayerNorm eps 1e-6, a final norm and token pooling; parameter counts
are timm's. ``ViT`` is the generic architecture (any patch size, width, depth, heads, MLP size).
Implementations: ``vit_tf.ViTTF`` and ``vit_pt.ViTPT``; timm checkpoints in and out:
``deepvision.importers.timm``. Loading a checkpoint into a model of another image size resamples
the position embedding the way timm does (bicubic, antialiased; see ``deepvision.models.classification.vit.resample``).
"""

from __future__ import annotations

from deepvision.models.factory import (
    CLASSES,
    DROP_PATH_RATE,
    FEATURES_ONLY,
    INCLUDE_TOP,
    INPUT_SHAPE,
    OUT_INDICES,
    Argument,
    variant_factory,
)
from deepvision.registry import Architecture, register

_TF = "deepvision.models.classification.vit.vit_tf:ViTTF"
_PT = "deepvision.models.classification.vit.vit_pt:ViTPT"

# timm's pretrained_cfg of the augreg ViTs: inputs in [0, 1], normalised with mean = std = 0.5.
PREPROCESSING = {
    "input_size": [224, 224, 3],
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
    "value_range": [0, 1],
    "interpolation": "bicubic",
    "crop_pct": 0.9,
    "crop_mode": "center",
}

# The constructor arguments of ViTTF / ViTPT, in order, with their defaults (ViT-B/16); the mirror
# test checks both classes against this list.
ARGUMENTS = (
    INCLUDE_TOP,
    CLASSES,
    INPUT_SHAPE,
    Argument("pooling", None, "str | None",
             "'token' (class token; the default with the head), 'avg' or 'max' over the patch tokens; "
             "None without the head returns every token (N, 1 + patches, project_dim)."),
    DROP_PATH_RATE,
    FEATURES_ONLY,
    OUT_INDICES,
    Argument("patch_size", 16, int, "side of the square patches (the input must be divisible by it)."),
    Argument("project_dim", 768, int, "token width."),
    Argument("num_layers", 12, int, "number of transformer blocks."),
    Argument("num_heads", 12, int, "attention heads per block."),
    Argument("mlp_dim", 3072, int, "hidden width of each block's MLP."),
    Argument("layer_norm_epsilon", 1e-6, float, "epsilon of every LayerNorm."),
    Argument("mlp_dropout", 0.0, float, "dropout inside the MLPs."),
    Argument("attention_dropout", 0.0, float, "dropout on the attention weights."),
    Argument("activation", "gelu", str, "MLP activation (exact erf GELU, as timm)."),
    Argument("dynamic_img_size", False, bool, "resample the position embedding at call time for any input "
             "whose sides are multiples of the patch size."),
)
# The same, as a backend-neutral config dict.
DEFAULT_CONFIG = {argument.name: argument.default for argument in ARGUMENTS}

# width -> (depth, heads, MLP width) of the standard sizes; timm's names for them.
SIZES = {
    "Tiny": {"project_dim": 192, "num_layers": 12, "num_heads": 3, "mlp_dim": 768},
    "S": {"project_dim": 384, "num_layers": 12, "num_heads": 6, "mlp_dim": 1536},
    "B": {"project_dim": 768, "num_layers": 12, "num_heads": 12, "mlp_dim": 3072},
    "L": {"project_dim": 1024, "num_layers": 24, "num_heads": 16, "mlp_dim": 4096},
}
TIMM_SIZE_NAMES = {"Tiny": "tiny", "S": "small", "B": "base", "L": "large"}

VARIANTS = {
    f"ViT{size}{patch}": {"patch_size": patch, **dims} for patch in (16, 32) for size, dims in SIZES.items()
}

register(
    Architecture(
        name="ViT",
        kind="model",
        family="vit",
        tensorflow=_TF,
        pytorch=_PT,
        fixed={},
        reference_config={"input_shape": [32, 32, 3], "classes": 10, "patch_size": 8, "project_dim": 32,
                          "num_layers": 2, "num_heads": 4, "mlp_dim": 64},
        preprocessing=PREPROCESSING,
    )
)
# timm's counts (include_top=True, classes=1000); a ViT has no BatchNorm statistics.
PARAMETERS = {
    "ViTTiny16": 5_717_416, "ViTS16": 22_050_664, "ViTB16": 86_567_656, "ViTL16": 304_326_632,
    "ViTTiny32": 6_131_560, "ViTS32": 22_878_952, "ViTB32": 88_224_232, "ViTL32": 306_535_400,
}

for _name, _fixed in VARIANTS.items():
    register(
        Architecture(
            name=_name,
            kind="model",
            family="vit",
            tensorflow=_TF,
            pytorch=_PT,
            fixed=_fixed,
            # Two patches a side: small, and still more than one position to embed.
            reference_config={"input_shape": [2 * _fixed["patch_size"]] * 2 + [3], "classes": 10},
            preprocessing=PREPROCESSING,
            parameters=PARAMETERS[_name],
        )
    )

ViT = variant_factory("ViT", ARGUMENTS, "a Vision Transformer of any patch size, width, depth, heads and MLP size")
ViTTiny16 = variant_factory("ViTTiny16", ARGUMENTS, "ViT-Ti/16 (timm vit_tiny_patch16_224): width 192, 12 layers, 3 heads")
ViTS16 = variant_factory("ViTS16", ARGUMENTS, "ViT-S/16 (timm vit_small_patch16_224): width 384, 12 layers, 6 heads")
ViTB16 = variant_factory("ViTB16", ARGUMENTS, "ViT-B/16 (timm vit_base_patch16_224): width 768, 12 layers, 12 heads")
ViTL16 = variant_factory("ViTL16", ARGUMENTS, "ViT-L/16 (timm vit_large_patch16_224): width 1024, 24 layers, 16 heads")
ViTTiny32 = variant_factory("ViTTiny32", ARGUMENTS, "ViT-Ti/32 (timm vit_tiny_patch32_224): width 192, 12 layers, 3 heads")
ViTS32 = variant_factory("ViTS32", ARGUMENTS, "ViT-S/32 (timm vit_small_patch32_224): width 384, 12 layers, 6 heads")
ViTB32 = variant_factory("ViTB32", ARGUMENTS, "ViT-B/32 (timm vit_base_patch32_224): width 768, 12 layers, 12 heads")
ViTL32 = variant_factory("ViTL32", ARGUMENTS, "ViT-L/32 (timm vit_large_patch32_224): width 1024, 24 layers, 16 heads")


def drop_path_rates(drop_path_rate: float, num_layers: int) -> list[float]:
    """Stochastic-depth rate of each block: linear from 0 to ``drop_path_rate``, as timm."""
    if num_layers <= 1:
        return [0.0] * num_layers
    return [drop_path_rate * i / (num_layers - 1) for i in range(num_layers)]


def resolve_pooling(include_top: bool, pooling: str | None) -> str | None:
    """The pooling a ViT applies: ``"token"`` by default with a top; ``None`` returns all tokens."""
    if pooling not in (None, "token", "avg", "max"):
        raise ValueError(f"pooling must be None, 'token', 'avg' or 'max', got {pooling!r}")
    return "token" if pooling is None and include_top else pooling
