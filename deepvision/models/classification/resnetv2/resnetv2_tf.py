"""Keras ResNetV2 (mirrors ``resnetv2_pt.py``): keras.applications' ResNetV2, layer for layer.

Structure (channels-last)::

    stem_pad (zero 3) -> stem_conv (7x7/2, bias) -> stem_pool_pad (zero 1) -> stem_pool (max 3x3/2)
    -> blocks (PreActBottleneck or PreActBasicBlock; stride on the last block of a stage)
    -> post_norm (BN, eps 1.001e-5) -> post_act (relu) -> pool (global avg) -> head (Dense, float32)

The stem max-pool reads zero padding, as keras.applications does (its input can be negative, so
padding with -inf would differ).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from deepvision.layers.core_tf import Activation, batch_norm, conv2d
from deepvision.layers.preact_basic_block_tf import PreActBasicBlockTF
from deepvision.layers.preact_bottleneck_tf import PreActBottleneckTF
from deepvision.models.base_tf import DeepVisionModelTF
from deepvision.models.classification.resnetv2.plan import (
    BLOCK_TYPES,
    BN_EPSILON,
    BN_MOMENTUM,
    STEM_FILTERS,
    block_plan,
    check_pooling,
    feature_levels,
    features_layout,
)
from deepvision.models.features import check_feature_arguments, select_levels

_BLOCKS = {"bottleneck": PreActBottleneckTF, "basic": PreActBasicBlockTF}


@keras.saving.register_keras_serializable(package="deepvision")
class ResNetV2TF(DeepVisionModelTF):
    """Pre-activation ResNet (ResNetV2), generic over stage depths and block type.

    Args:
        include_top: add global average pooling and the ``head`` classifier (logits, no softmax).
        classes: number of classes of ``head``.
        input_shape: channels-last ``(H, W, C)``; ``None`` means ``(224, 224, 3)``. ``H``/``W`` may be
            ``None`` (the network is fully convolutional).
        pooling: without the top, ``None`` (return the 4D feature map), ``"avg"`` or ``"max"``.
        drop_path_rate: largest drop-path rate (linear over the blocks); 0 in keras.applications.
        features_only: return the list of feature maps of ``out_indices`` instead of logits or
            pooled features (levels at reductions 2, 4, 8, 16, 32 for the standard configs, see
            ``plan.feature_levels``; ``feature_info`` describes them); no head is built.
        out_indices: which levels (negative from the end); ``None``: all five.
        stackwise_blocks: blocks per stage, e.g. ``(3, 4, 6, 3)`` for ResNet50V2.
        stackwise_filters: width of each stage (the bottleneck width for bottleneck blocks).
        stackwise_strides: stride of each stage, applied by its LAST block (keras.applications).
        block_type: ``"bottleneck"`` (ResNet50V2 and deeper) or ``"basic"`` (ResNet18V2/34V2).

    Input ``(B, H, W, C)`` float; output logits ``(B, classes)``, features ``(B, H/32, W/32, F)``,
    pooled ``(B, F)``, or a list of ``(B, H_i, W_i, F_i)`` with ``features_only``.
    """

    def __init__(
        self,
        include_top: bool = True,
        classes: int = 1000,
        input_shape: Sequence[int | None] | None = None,
        pooling: str | None = None,
        drop_path_rate: float = 0.0,
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
        stackwise_blocks: Sequence[int] = (3, 4, 6, 3),
        stackwise_filters: Sequence[int] = (64, 128, 256, 512),
        stackwise_strides: Sequence[int] = (2, 2, 2, 1),
        block_type: str = "bottleneck",
        bn_momentum: float = BN_MOMENTUM,
        bn_epsilon: float = BN_EPSILON,
        **kwargs,
    ) -> None:
        arguments = dict(locals())
        check_pooling(pooling)
        check_feature_arguments(features_only, out_indices)
        plan = block_plan(stackwise_blocks, stackwise_filters, stackwise_strides, block_type, drop_path_rate)
        levels, positions, selected = feature_levels(plan, block_type), None, []
        built_blocks, post, pruned = len(plan), True, []
        if features_only:
            selected, positions = select_levels(levels, out_indices, range(len(levels)))
            built_blocks, post, pruned = features_layout(plan, selected)
        shape = tuple(input_shape) if input_shape is not None else (224, 224, 3)
        channels = int(stackwise_filters[-1]) * BLOCK_TYPES[block_type]

        stem_pad = keras.layers.ZeroPadding2D(3)
        stem_conv = conv2d(shape[-1], STEM_FILTERS, 7, 2, padding="valid", use_bias=True)
        stem_pool_pad = keras.layers.ZeroPadding2D(1)
        stem_pool = keras.layers.MaxPooling2D(3, strides=2)
        blocks = [
            _BLOCKS[block_type](
                spec.input_filters, spec.filters, strides=spec.strides, conv_shortcut=spec.conv_shortcut,
                bn_momentum=bn_momentum, bn_epsilon=bn_epsilon, drop_path_rate=spec.drop_path_rate,
            )
            for spec in plan[:built_blocks]
        ]
        post_norm = batch_norm(bn_momentum, bn_epsilon) if post else None
        post_act = Activation("relu") if post else None
        pool = head = None
        if features_only:
            pass
        elif include_top or pooling == "avg":
            pool = keras.layers.GlobalAveragePooling2D()
        elif pooling == "max":
            pool = keras.layers.GlobalMaxPooling2D()
        if include_top and not features_only:
            # float32 logits under mixed precision.
            head = keras.layers.Dense(classes, dtype="float32", name="head")

        inputs = keras.Input(shape=shape)
        # points[t] is the tensor at tap t (see plan.feature_levels): stem conv, stem pool, blocks, post.
        points = [stem_conv(stem_pad(inputs))]
        x = stem_pool(stem_pool_pad(points[0]))
        points.append(x)
        for block in blocks:
            x = block(x)
            points.append(x)
        if post:
            x = post_act(post_norm(x))
            points.append(x)
        if features_only:
            outputs = [points[level.tap] for level in selected]
        else:
            outputs = x if pool is None else pool(x)
            outputs = outputs if head is None else head(outputs)
        kwargs.setdefault("name", "resnetv2")
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # Public attributes in the same order as ResNetV2PT: they define the canonical names.
        self.stem_pad = stem_pad
        self.stem_conv = stem_conv
        self.stem_pool_pad = stem_pool_pad
        self.stem_pool = stem_pool
        self.blocks = blocks
        self.post_norm = post_norm
        self.post_act = post_act
        self.pool = pool
        self.head = head
        self.num_features = channels
        self._store_config(arguments)
        self._dv_init_features(levels, positions, pruned)

    def forward_features(self, x, training: bool = False):
        """The last feature map before pooling: ``(B, H, W, C) -> (B, H/32, W/32, F)`` (post-norm, relu)."""
        x = self.stem_pool(self.stem_pool_pad(self.stem_conv(self.stem_pad(x))))
        for block in self.blocks:
            x = block(x, training=training)
        return self.post_act(self.post_norm(x, training=training))
