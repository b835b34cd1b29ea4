"""ResNetV2 family: pre-activation ResNets, keras.applications' ResNetV2 layer for layer.

Registration only (no framework import). ResNet50V2/101V2/152V2 match
``keras.applications.ResNet50V2/101V2/152V2`` exactly (so their weights are ours, see
``deepvision.importers.keras_applications_resnetv2``); ResNet18V2/34V2 use basic blocks in the same
pre-activation style. Implementations: ``resnetv2_tf.ResNetV2TF`` and ``resnetv2_pt.ResNetV2PT``.
"""

from __future__ import annotations

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
        )
    )
