"""Keras implementation of EfficientNetV2 (mirrors ``efficientnetv2_pt.py``).

The same network as ``keras.applications.EfficientNetV2*`` (layer for layer, with the same
initialisers), as a functional ``keras.Model`` subclass: weights exist after ``__init__``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import keras

from deepvision.layers.core_tf import Activation, batch_norm, conv2d
from deepvision.layers.fused_mbconv_tf import FusedMBConvTF
from deepvision.layers.mbconv_tf import MBConvTF
from deepvision.layers.squeeze_excitation_tf import CONV_KERNEL_INITIALIZER
from deepvision.models.base_tf import DeepVisionModelTF
from deepvision.models.classification.efficientnetv2 import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    block_plan,
    check_arguments,
    feature_levels,
    features_layout,
    stem_filters,
    top_filters,
)
from deepvision.models.features import check_feature_arguments, select_levels

DENSE_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"},
}


@keras.saving.register_keras_serializable(package="deepvision")
class EfficientNetV2TF(DeepVisionModelTF):
    """EfficientNetV2 for (N, H, W, C) input, generic over width/depth scaling and the stage table.

    Args:
        width_coefficient: filter multiplier (rounded to multiples of ``depth_divisor``).
        depth_coefficient: per-stage repeat multiplier (rounded up).
        blocks_args: keras.applications' stage table: dicts with ``conv_type`` (1 fused, 0 MBConv),
            ``kernel_size``, ``num_repeat``, ``input_filters``, ``output_filters``, ``expand_ratio``,
            ``se_ratio``, ``strides``.
        include_top: end with global average pooling, dropout and the ``head`` Dense (logits).
        classes: number of logits.
        input_shape: (H, W, C); default (224, 224, 3); H and W may be None.
        pooling: ``None``, ``"avg"`` or ``"max"``, applied when ``include_top=False``.
        drop_path_rate: drop-path rate of the last block (linear in depth; keras.applications uses 0.2).
        features_only: return the list of feature maps of ``out_indices`` (timm's levels: the last
            stage end at each stride, see ``feature_levels``; ``feature_info`` describes them); no
            top conv or head, and no block after the last selected level.
        out_indices: which levels (negative from the end); ``None``: all of them.
        dropout_rate: dropout before the head.
        include_preprocessing: take [0, 255] pixels and normalise inside the model, as keras.applications.
        preprocessing_mode: ``"imagenet"`` (x / 255, then ImageNet mean/std; B0..B3 with 3 channels)
            or ``"symmetric"`` (x / 128 - 1; S/M/L, and any input that does not have 3 channels).
        depth_divisor, min_depth: filter rounding (multiples of ``depth_divisor``, at least ``min_depth``).
        min_filter_ratio: MobileNet's rounding guard (a count rounded below this fraction of the scaled
            count goes up by one divisor), as the seed's models use; ``None`` rounds like keras.applications.
            Only B3 differs among the registered variants (14,486,374 vs 14,467,622 parameters).
        bn_momentum, bn_epsilon: BatchNorm momentum (Keras convention) and epsilon.
        activation: activation name (``"swish"``).

    Output: logits (N, classes) with ``include_top``; else (N, C) pooled features or the (N, h, w, C)
    feature map; a list of (N, h_i, w_i, C_i) with ``features_only``.
    """

    def __init__(
        self,
        width_coefficient: float,
        depth_coefficient: float,
        blocks_args: Sequence[dict[str, Any]],
        include_top: bool = True,
        classes: int = 1000,
        input_shape: Sequence[int | None] | None = None,
        pooling: str | None = None,
        drop_path_rate: float = 0.0,
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
        dropout_rate: float = 0.2,
        include_preprocessing: bool = True,
        preprocessing_mode: str = "imagenet",
        depth_divisor: int = 8,
        min_depth: int | None = 8,
        min_filter_ratio: float | None = 0.9,
        bn_momentum: float = 0.9,
        bn_epsilon: float = 1e-3,
        activation: str = "swish",
        **kwargs,
    ) -> None:
        arguments = dict(locals())
        arguments["blocks_args"] = copy.deepcopy(list(blocks_args))
        check_arguments(pooling, preprocessing_mode)
        check_feature_arguments(features_only, out_indices)
        input_shape = tuple(input_shape) if input_shape is not None else (224, 224, 3)
        channels = input_shape[-1]
        inputs = keras.Input(shape=input_shape)
        x = inputs

        rescaling = normalization = None
        if include_preprocessing:
            # keras.applications: ImageNet mean/std only for the B variants with 3 channels.
            if preprocessing_mode == "imagenet" and channels == 3:
                rescaling = keras.layers.Rescaling(1.0 / 255, name="rescaling")
                normalization = keras.layers.Normalization(
                    mean=list(IMAGENET_MEAN), variance=[s**2 for s in IMAGENET_STD], axis=-1, name="normalization"
                )
            else:
                rescaling = keras.layers.Rescaling(1.0 / 128.0, offset=-1, name="rescaling")
            x = rescaling(x)
            if normalization is not None:
                x = normalization(x)

        conv_init = {"kernel_initializer": CONV_KERNEL_INITIALIZER}
        stem = stem_filters(width_coefficient, blocks_args, depth_divisor, min_depth, min_filter_ratio)
        stem_conv = conv2d(channels, stem, 3, 2, use_bias=False, name="stem_conv", **conv_init)
        stem_bn = batch_norm(bn_momentum, bn_epsilon, name="stem_bn")
        stem_act = Activation(activation, name="stem_act")
        x = stem_act(stem_bn(stem_conv(x)))

        blocks, points = [], {}
        plan = block_plan(width_coefficient, depth_coefficient, blocks_args, depth_divisor, min_depth, drop_path_rate,
                          min_filter_ratio)
        levels, positions, selected, pruned = feature_levels(plan), None, [], []
        built = len(plan)
        if features_only:
            selected, positions = select_levels(levels, out_indices, range(len(levels)))
            built, pruned = features_layout(plan, selected)
        for i, spec in enumerate(plan[:built]):
            block_cls = FusedMBConvTF if spec["fused"] else MBConvTF
            block = block_cls(
                spec["input_filters"], spec["output_filters"], spec["expand_ratio"], spec["kernel_size"],
                spec["strides"], spec["se_ratio"], bn_momentum, activation, spec["dropout"], bn_epsilon,
                name=f"block{spec['stage'] + 1}{chr(spec['index'] + 97)}",
            )
            x = block(x)
            blocks.append(block)
            points[i + 1] = x  # tap = blocks run (see feature_levels)

        top_conv = top_bn = top_act = pool = dropout = head = None
        if features_only:
            features = x
            outputs = [points[level.tap] for level in selected]
        else:
            top = top_filters(width_coefficient, depth_divisor, min_depth, min_filter_ratio)
            top_conv = conv2d(plan[-1]["output_filters"], top, 1, use_bias=False, name="top_conv", **conv_init)
            top_bn = batch_norm(bn_momentum, bn_epsilon, name="top_bn")
            top_act = Activation(activation, name="top_act")
            x = features = top_act(top_bn(top_conv(x)))
            if include_top:
                pool = keras.layers.GlobalAveragePooling2D(name="avg_pool")
                x = pool(x)
                if dropout_rate > 0:
                    dropout = keras.layers.Dropout(dropout_rate, name="top_dropout")
                    x = dropout(x)
                # Logits in float32 even under a mixed-precision policy.
                head = keras.layers.Dense(
                    classes, kernel_initializer=DENSE_KERNEL_INITIALIZER, bias_initializer="zeros",
                    dtype="float32", name="head",
                )
                x = head(x)
            elif pooling is not None:
                pool = (keras.layers.GlobalAveragePooling2D(name="avg_pool") if pooling == "avg"
                        else keras.layers.GlobalMaxPooling2D(name="max_pool"))
                x = pool(x)
            outputs = x

        super().__init__(inputs=inputs, outputs=outputs, name=kwargs.pop("name", "efficientnetv2"), **kwargs)
        # Public attributes, in the PyTorch model's order: they define the canonical names.
        self.rescaling = rescaling
        self.normalization = normalization
        self.stem_conv = stem_conv
        self.stem_bn = stem_bn
        self.stem_act = stem_act
        self.blocks = blocks
        self.top_conv = top_conv
        self.top_bn = top_bn
        self.top_act = top_act
        self.pool = pool
        self.dropout = dropout
        self.head = head
        # The feature map as a symbolic tensor, kept out of Keras's tracking.
        object.__setattr__(self, "_dv_features", features)
        object.__setattr__(self, "_dv_features_model", None)
        self._store_config(arguments)
        self._dv_init_features(levels, positions, pruned)

    def forward_features(self, x: Any) -> Any:
        """The last feature map before pooling, (N, h, w, C) (the last built block's output with ``features_only``)."""
        if self._dv_features_model is None:
            object.__setattr__(self, "_dv_features_model", keras.Model(self.input, self._dv_features))
        return self._dv_features_model(x)
