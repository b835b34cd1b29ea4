"""Keras implementation of ConvNeXt (mirrors ``convnext_pt.py``; structure in the family ``__init__``).

The same network as ``keras.applications.ConvNeXt*`` as a functional ``keras.Model`` subclass
(weights exist after ``__init__``); its depthwise convolutions are ``DepthwiseConv2D`` layers
(keras.applications uses ``Conv2D(groups=C)``: the same numbers in another kernel layout).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from deepvision.layers.convnext_block_tf import ConvNeXtBlockTF
from deepvision.layers.core_tf import conv2d
from deepvision.models.base_tf import DeepVisionModelTF
from deepvision.models.classification.convnext import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    check_config,
    drop_path_rates,
    feature_levels,
    pruned_modules,
    stage_of_blocks,
)
from deepvision.models.features import check_feature_arguments, select_levels


@keras.saving.register_keras_serializable(package="deepvision")
class ConvNeXtTF(DeepVisionModelTF):
    """ConvNeXt for (N, H, W, C) input, generic over depths and widths.

    Args:
        depths: blocks per stage (4 entries; default ConvNeXt-T's).
        projection_dims: channels per stage (4 entries; default ConvNeXt-T's).
        include_top: end with global average pooling, ``head_norm`` and the ``head`` Dense (logits).
        classes: number of logits.
        input_shape: (H, W, C); default (224, 224, 3); H and W may be None (at least 32 each).
        pooling: without the top: ``None`` returns the normalised feature map (N, h, w, C) (as
            keras.applications, which applies its final LayerNorm to the map), ``"avg"``/``"max"``
            pool first, then normalise.
        drop_path_rate: stochastic depth of the last block (linear over all blocks).
        features_only: return the list of the selected stage outputs (N, H/s, W/s, C_s), s = 4..32.
        out_indices: which of the four stages (negative from the end); ``None``: all four.
        layer_scale_init_value: initial layer-scale gammas (1e-6); ``None`` leaves layer scale out.
        layer_norm_epsilon: epsilon of every LayerNorm (1e-6).
        include_preprocessing: take [0, 255] pixels and normalise with the ImageNet mean/std inside
            the model (only for 3 channels), as keras.applications' ``include_preprocessing``.

    Output: logits (N, classes) with ``include_top``; pooled (N, C) or (N, h, w, C) features otherwise;
    a list of feature maps with ``features_only``.
    """

    def __init__(
        self,
        depths: Sequence[int] = (3, 3, 9, 3),
        projection_dims: Sequence[int] = (96, 192, 384, 768),
        include_top: bool = True,
        classes: int = 1000,
        input_shape: Sequence[int | None] | None = None,
        pooling: str | None = None,
        drop_path_rate: float = 0.0,
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
        layer_scale_init_value: float | None = 1e-6,
        layer_norm_epsilon: float = 1e-6,
        include_preprocessing: bool = True,
        **kwargs,
    ) -> None:
        arguments = dict(locals())
        arguments["depths"] = [int(d) for d in depths]
        arguments["projection_dims"] = [int(c) for c in projection_dims]
        check_config(depths, projection_dims, pooling)
        check_feature_arguments(features_only, out_indices)
        levels = feature_levels(depths, projection_dims)
        selected, positions = (select_levels(levels, out_indices, default=range(len(levels)))
                               if features_only else ([], None))
        stages_built = positions[-1] + 1 if features_only else 4
        input_shape = tuple(input_shape) if input_shape is not None else (224, 224, 3)
        channels = input_shape[-1]
        eps = float(layer_norm_epsilon)
        inputs = keras.Input(shape=input_shape)
        x = inputs

        normalization = None
        if include_preprocessing and channels == 3:
            # keras.applications' PreStem: ImageNet mean/std on [0, 255] pixels.
            normalization = keras.layers.Normalization(
                mean=[m * 255 for m in IMAGENET_MEAN], variance=[(s * 255) ** 2 for s in IMAGENET_STD],
                axis=-1, name="normalization",
            )
            x = normalization(x)
        stem_conv = conv2d(channels, projection_dims[0], 4, 4, padding="valid", name="stem_conv")
        stem_norm = keras.layers.LayerNormalization(epsilon=eps, name="stem_norm")
        x = stem_norm(stem_conv(x))

        rates = drop_path_rates(drop_path_rate, depths)
        stages = stage_of_blocks(depths)
        downsample_norms, downsample_convs, blocks, stage_outputs = [], [], [], []
        for k, stage in enumerate(stages):
            if stage >= stages_built:
                break
            if stage > 0 and stages[k - 1] != stage:
                norm = keras.layers.LayerNormalization(epsilon=eps, name=f"downsample_norm_{stage - 1}")
                conv = conv2d(projection_dims[stage - 1], projection_dims[stage], 2, 2, padding="valid",
                              name=f"downsample_conv_{stage - 1}")
                x = conv(norm(x))
                downsample_norms.append(norm)
                downsample_convs.append(conv)
            block = ConvNeXtBlockTF(projection_dims[stage], rates[k], layer_scale_init_value, eps,
                                    name=f"block_{k}")
            x = block(x)
            blocks.append(block)
            if k + 1 == len(stages) or stages[k + 1] != stage:
                stage_outputs.append(x)
        features = x

        pool = head_norm = head = None
        if features_only:
            outputs = [stage_outputs[p] for p in positions]
        else:
            if include_top or pooling is not None:
                mode = "avg" if include_top else pooling
                pool = (keras.layers.GlobalAveragePooling2D(name="avg_pool") if mode == "avg"
                        else keras.layers.GlobalMaxPooling2D(name="max_pool"))
                x = pool(x)
            head_norm = keras.layers.LayerNormalization(epsilon=eps, name="head_norm")
            x = head_norm(x)
            if include_top:
                # Logits in float32 even under a mixed-precision policy.
                head = keras.layers.Dense(classes, dtype="float32", name="head")
                x = head(x)
            outputs = x

        super().__init__(inputs=inputs, outputs=outputs, name=kwargs.pop("name", "convnext"), **kwargs)
        # Public attributes, in the PyTorch model's order: they define the canonical names.
        self.normalization = normalization
        self.stem_conv = stem_conv
        self.stem_norm = stem_norm
        self.downsample_norms = downsample_norms
        self.downsample_convs = downsample_convs
        self.blocks = blocks
        self.pool = pool
        self.head_norm = head_norm
        self.head = head
        object.__setattr__(self, "_dv_features", features)
        object.__setattr__(self, "_dv_features_model", None)
        self._store_config(arguments)
        self._dv_init_features(levels, positions, pruned_modules(depths, stages_built, features_only))

    def forward_features(self, x: Any) -> Any:
        """The last stage's output before pooling and ``head_norm``, (N, h, w, C) (timm's ``forward_features``)."""
        if self._dv_features_model is None:
            object.__setattr__(self, "_dv_features_model", keras.Model(self.input, self._dv_features))
        return self._dv_features_model(x)
