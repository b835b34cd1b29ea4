"""ResNetV2 family: pre-activation ResNets, keras.applications' ResNetV2 layer for layer.

Registration only (no framework import). ResNet50V2/101V2/152V2 match
``keras.applications.ResNet50V2/101V2/152V2`` exactly (so their weights are ours, see
``deepvision.importers.keras_applications_resnetv2``); ResNet18V2/34V2 use basic blocks in the same
pre-activation style. Implementations: ``resnetv2_tf.ResNetV2TF`` and ``resnetv2_pt.ResNetV2PT``.
"""

from __future__ import annotations

from deepvision.models.classification.resnetv2.plan import BN_EPSILON, BN_MOMENTUM
from deepvision.models.factory import COMMON_ARGUMENTS, FEATURES_ONLY, OUT_INDICES, Argument, variant_factory
from deepvision.registry import Architecture, register

_TF = "deepvision.models.classification.resnetv2.resnetv2_tf:ResNetV2TF"
_PT = "deepvision.models.classification.resnetv2.resnetv2_pt:ResNetV2PT"

# keras.applications' preprocess_input for ResNetV2 ("tf" mode): x / 127.5 - 1 on [0, 255] pixels.
PREPROCESSING = {
    "input_size": [224, 224, 3],
    "mean": [127.5, 127.5, 127.5],
    "std": [127.5, 127.5, 127.5],
    "value_range": [0, 255],
    "interpolation": "bilinear",
    "crop_pct": 0.875,
}

# name -> (blocks per stage, block type); widths 64/128/256/512, strides 2/2/2/1 on each stage's last block.
VARIANTS = {
    "ResNet18V2": ([2, 2, 2, 2], "basic"),
    "ResNet34V2": ([3, 4, 6, 3], "basic"),
    "ResNet50V2": ([3, 4, 6, 3], "bottleneck"),
    "ResNet101V2": ([3, 4, 23, 3], "bottleneck"),
    "ResNet152V2": ([3, 8, 36, 3], "bottleneck"),
}

# The last BatchNorm of each residual branch (the branch ends in a conv without a norm after it).
# Parity tests on random networks shrink its gamma when calibrating (deepvision.testing.calibrate_batch_norm).
CALIBRATION_SHRINK = {name: ("norm2",) if block == "bottleneck" else ("norm1",) for name, (_, block) in VARIANTS.items()}

# The seed's counts (include_top=True, classes=1000, moving statistics included); they equal
# keras.applications' ResNet50V2/101V2/152V2.
PARAMETERS = {
    "ResNet18V2": 11_696_488,
    "ResNet34V2": 21_812_072,
    "ResNet50V2": 25_613_800,
    "ResNet101V2": 44_675_560,
    "ResNet152V2": 60_380_648,
}

# The constructor arguments of ResNetV2TF / ResNetV2PT, in order, with their defaults (the mirror
# test checks both classes against this list).
ARGUMENTS = (
    *COMMON_ARGUMENTS,
    FEATURES_ONLY,
    OUT_INDICES,
    Argument("stackwise_blocks", (3, 4, 6, 3), "Sequence[int]", "blocks per stage."),
    Argument("stackwise_filters", (64, 128, 256, 512), "Sequence[int]", "bottleneck width of each stage."),
    Argument("stackwise_strides", (2, 2, 2, 1), "Sequence[int]", "stride of each stage (on its last block)."),
    Argument("block_type", "bottleneck", str, "'bottleneck' (x4 expansion) or 'basic' (two 3x3 convs)."),
    Argument("bn_momentum", BN_MOMENTUM, float, "BatchNorm momentum (Keras convention: weight of the old statistic)."),
    Argument("bn_epsilon", BN_EPSILON, float, "BatchNorm epsilon (keras.applications: 1.001e-5)."),
)

for _name, (_blocks, _block_type) in VARIANTS.items():
    register(
        Architecture(
            name=_name,
            kind="model",
            family="resnetv2",
            tensorflow=_TF,
            pytorch=_PT,
            fixed={
                "stackwise_blocks": _blocks,
                "stackwise_filters": [64, 128, 256, 512],
                "stackwise_strides": [2, 2, 2, 1],
                "block_type": _block_type,
            },
            reference_config={"input_shape": [64, 64, 3], "classes": 10},
            preprocessing=PREPROCESSING,
            parameters=PARAMETERS[_name],
        )
    )

ResNet18V2 = variant_factory("ResNet18V2", ARGUMENTS, "pre-activation ResNet-18 (basic blocks [2, 2, 2, 2])")
ResNet34V2 = variant_factory("ResNet34V2", ARGUMENTS, "pre-activation ResNet-34 (basic blocks [3, 4, 6, 3])")
ResNet50V2 = variant_factory("ResNet50V2", ARGUMENTS,
                             "keras.applications ResNet50V2 (bottleneck blocks [3, 4, 6, 3])")
ResNet101V2 = variant_factory("ResNet101V2", ARGUMENTS,
                              "keras.applications ResNet101V2 (bottleneck blocks [3, 4, 23, 3])")
ResNet152V2 = variant_factory("ResNet152V2", ARGUMENTS,
                              "keras.applications ResNet152V2 (bottleneck blocks [3, 8, 36, 3])")
