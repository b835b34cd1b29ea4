"""A small composite model defined for the foundation tests, in both backends (mirrored)."""

from __future__ import annotations

import keras
import torch
from torch import nn

from deepvision.layers import core_pt, core_tf
from deepvision.models.base_pt import DeepVisionModulePT
from deepvision.models.base_tf import DeepVisionModelTF
from deepvision.registry import Architecture, register

ARCHITECTURE = register(
    Architecture(
        name="TestComposite",
        kind="model",
        family="tests",
        tensorflow="tests.foundation.composite:CompositeTF",
        pytorch="tests.foundation.composite:CompositePT",
        reference_config={"input_shape": [17, 23, 3], "classes": 5},
        preprocessing={"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "value_range": [0, 1]},
    )
)


@keras.saving.register_keras_serializable(package="deepvision_tests")
class CompositeTF(DeepVisionModelTF):
    def __init__(self, classes: int = 5, width: int = 8, input_shape=(17, 23, 3), **kwargs):
        stem = core_tf.conv2d(input_shape[-1], width, 3, strides=2)
        depthwise = core_tf.depthwise_conv2d(width, 3)
        norm = core_tf.batch_norm(0.9, 1e-3)
        blocks = [keras.layers.Dense(width), keras.layers.Dense(width)]
        final_norm = keras.layers.LayerNormalization(epsilon=1e-6)
        head = keras.layers.Dense(classes, dtype="float32")
        inputs = keras.Input(shape=input_shape)
        x = keras.ops.relu(norm(depthwise(stem(inputs))))
        x = keras.ops.mean(x, axis=(1, 2))
        for block in blocks:
            x = x + keras.ops.gelu(block(x), approximate=False)
        outputs = head(final_norm(x))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.stem, self.depthwise, self.norm, self.blocks = stem, depthwise, norm, blocks
        self.final_norm, self.head = final_norm, head
        self._store_config(dict(classes=classes, width=width, input_shape=input_shape))


class CompositePT(DeepVisionModulePT):
    def __init__(self, classes: int = 5, width: int = 8, input_shape=(3, 17, 23)):
        super().__init__()
        self._store_config(dict(classes=classes, width=width, input_shape=input_shape))
        self.stem = core_pt.conv2d(input_shape[0], width, 3, strides=2)
        self.depthwise = core_pt.depthwise_conv2d(width, 3)
        self.norm = core_pt.BatchNorm2d(width, 0.9, 1e-3)
        self.blocks = nn.ModuleList([nn.Linear(width, width), nn.Linear(width, width)])
        self.final_norm = nn.LayerNorm(width, eps=1e-6)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm(self.depthwise(self.stem(x)))).mean((2, 3))
        for block in self.blocks:
            x = x + nn.functional.gelu(block(x))
        return self.head(self.final_norm(x))
