"""Keras Mix Transformer encoder (mirrors ``mit_pt.py``): transformers' ``SegformerModel``, stage for stage.

Structure (channels-last)::

    stages.i (patch_embed -> blocks -> norm), i = 0..3, at strides 4, 8, 16, 32
    -> include_top: spatial mean of the last map -> head (Dense), as SegformerForImageClassification
       pooling "avg"/"max": pooled last map; None: the last map; features_only: the selected maps
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from deepvision.models.segmentation.segformer.encoder_tf import (
    MiTEncoderTF,
    encoder_graph,
    encoder_output,
    pool,
)


@keras.saving.register_keras_serializable(package="deepvision")
class MiTTF(MiTEncoderTF):
    """Mix Transformer (MiT) encoder, generic over widths, depths, heads and reductions.

    Args (as ``deepvision.models.segmentation.segformer.MIT_ARGUMENTS``): ``include_top`` (classifier on
    the spatial mean of the last stage), ``classes``, ``input_shape`` (channels-last; ``None``: any
    size, 3 channels), ``pooling`` (``None``/``"avg"``/``"max"`` without the top), ``drop_path_rate``
    (linear over all blocks), ``features_only`` / ``out_indices`` (stage maps at strides 4..32),
    ``embed_dims``, ``depths``, ``num_heads``, ``sr_ratios``, ``patch_sizes``, ``strides``,
    ``mlp_ratio``, ``layer_norm_epsilon``, ``dropout``, ``attention_dropout``.

    Input ``(B, H, W, C)``; output logits ``(B, classes)``, pooled ``(B, C4)``, the last map
    ``(B, H/32, W/32, C4)`` or a list of maps.
    """

    def __init__(
        self,
        include_top: bool = False,
        classes: int = 1000,
        input_shape: Sequence[int | None] | None = None,
        pooling: str | None = None,
        drop_path_rate: float = 0.0,
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
        embed_dims: Sequence[int] = (32, 64, 160, 256),
        depths: Sequence[int] = (2, 2, 2, 2),
        num_heads: Sequence[int] = (1, 2, 5, 8),
        sr_ratios: Sequence[int] = (8, 4, 2, 1),
        patch_sizes: Sequence[int] = (7, 3, 3, 3),
        strides: Sequence[int] = (4, 2, 2, 2),
        mlp_ratio: int = 4,
        layer_norm_epsilon: float = 1e-5,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        **kwargs,
    ) -> None:
        arguments = dict(locals())
        layout, inputs, stages, maps = encoder_graph(arguments)
        head = keras.layers.Dense(classes, dtype="float32", name="head") if layout.with_top else None
        outputs = head(pool(maps[-1], "avg")) if head is not None else encoder_output(maps, layout)
        kwargs.setdefault("name", "mit")
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # Public attributes in the same order as MiTPT: they define the canonical names.
        self.stages = stages
        self.head = head
        self._dv_finish_encoder(arguments, layout, "head")
