"""Keras Vision Transformer (mirrors ``vit_pt.py``): timm's ``VisionTransformer``, layer for layer.

Structure (channels-last input, tokens (B, 1 + N, D))::

    patch_embed (PatchingAndEmbedding: patch conv, class token, position embedding)
    -> blocks (TransformerEncoder x num_layers, pre-norm)
    -> pooling "token": norm (LayerNorm) on every token, then the class token
       pooling "avg"/"max": mean/max of the patch tokens, then norm (timm's fc_norm placement)
    -> head (Dense, float32)
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from deepvision.layers.core_tf import activation_name
from deepvision.layers.patching_and_embedding_tf import PatchingAndEmbeddingTF
from deepvision.layers.transformer_encoder_tf import TransformerEncoderTF
from deepvision.models.base_tf import DeepVisionModelTF
from deepvision.models.classification.vit import drop_path_rates, resolve_pooling
from deepvision.models.classification.vit.plan import default_out_indices, feature_levels, features_layout
from deepvision.models.features import check_feature_arguments, select_levels


def _pool_tokens(x, mode: str):
    """(B, 1 + N, D) -> (B, D): the class token, or the mean/max of the patch tokens."""
    if mode == "token":
        return x[:, 0]
    patches = x[:, 1:]
    return ops.mean(patches, axis=1) if mode == "avg" else ops.max(patches, axis=1)


@keras.saving.register_keras_serializable(package="deepvision")
class TokenGrid(keras.layers.Layer):
    """Patch tokens on their grid: tokens (B, 1 + N, D) and images (B, H, W, C) -> (B, H/p, W/p, D).

    The class token is dropped; the grid side comes from the image at run time (any size with
    ``dynamic_img_size``). No weights.
    """

    def __init__(self, patch_size: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.patch_size = int(patch_size)

    def call(self, tokens, images):
        shape = ops.shape(images)
        grid = (ops.shape(tokens)[0], shape[1] // self.patch_size, shape[2] // self.patch_size, tokens.shape[-1])
        return ops.reshape(tokens[:, 1:], grid)

    def compute_output_shape(self, tokens_shape, images_shape):
        side = [None if s is None else s // self.patch_size for s in images_shape[1:3]]
        return (tokens_shape[0], *side, tokens_shape[-1])

    def get_config(self) -> dict:
        return {**super().get_config(), "patch_size": self.patch_size}


@keras.saving.register_keras_serializable(package="deepvision")
class ViTTF(DeepVisionModelTF):
    """Vision Transformer, generic over patch size, width, depth, heads and MLP width.

    Args:
        include_top: add the ``head`` classifier (logits, no softmax) on the pooled features.
        classes: number of classes of ``head``.
        input_shape: channels-last ``(H, W, C)``; ``None`` means ``(224, 224, 3)``. Fixed sizes only
            (one position embedding per patch); load a checkpoint into a model of another size to
            resample the position embedding.
        pooling: ``"token"`` (class token; the default with a top), ``"avg"`` or ``"max"`` (over the
            patch tokens, normalised after pooling as timm's ``fc_norm``), or ``None`` without a
            top (return all tokens after the final norm).
        drop_path_rate: largest stochastic-depth rate (linear over the blocks, as timm).
        features_only: return the list of the ``out_indices`` blocks' outputs on the patch grid,
            ``(B, H/p, W/p, D)`` each (class token dropped, no final norm: timm's
            ``forward_intermediates``); the later blocks, ``norm`` and ``head`` are not built.
        out_indices: which blocks (negative from the end); ``None``: the last three.
        patch_size: side of the square patches.
        project_dim: token width D.
        num_layers: number of transformer blocks (timm's ``depth``).
        num_heads: attention heads per block.
        mlp_dim: hidden width of each block's MLP.
        layer_norm_epsilon: epsilon of every LayerNorm (timm: 1e-6).
        mlp_dropout: dropout in the MLPs and after the attention projections.
        attention_dropout: dropout on the attention probabilities.
        activation: MLP activation (``"gelu"``: exact erf GELU, as timm).
        dynamic_img_size: accept any input whose sides are multiples of ``patch_size``; the
            position embedding (learned for the ``input_shape`` grid) is resampled at call time
            (bicubic, antialias, as timm; see ``PatchingAndEmbedding``).

    Input ``(B, H, W, C)``; output logits ``(B, classes)``, pooled features ``(B, D)``, tokens
    ``(B, 1 + N, D)``, or a list of ``(B, H/p, W/p, D)`` maps with ``features_only``.
    """

    def __init__(
        self,
        include_top: bool = True,
        classes: int = 1000,
        input_shape: Sequence[int] | None = None,
        pooling: str | None = None,
        drop_path_rate: float = 0.0,
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
        patch_size: int = 16,
        project_dim: int = 768,
        num_layers: int = 12,
        num_heads: int = 12,
        mlp_dim: int = 3072,
        layer_norm_epsilon: float = 1e-6,
        mlp_dropout: float = 0.0,
        attention_dropout: float = 0.0,
        activation: str = "gelu",
        dynamic_img_size: bool = False,
        **kwargs,
    ) -> None:
        arguments = dict(locals())
        pool_mode = resolve_pooling(include_top, pooling)
        shape = tuple(input_shape) if input_shape is not None else (224, 224, 3)
        # The config records the image size in use: it fixes the position grid that checkpoints carry.
        arguments["input_shape"] = list(shape)
        activation = activation_name(activation)
        check_feature_arguments(features_only, out_indices)
        levels, positions, selected, pruned = feature_levels(num_layers, project_dim, patch_size), None, [], []
        built = num_layers
        if features_only:
            selected, positions = select_levels(levels, out_indices, default_out_indices(num_layers))
            built, pruned = features_layout(num_layers, selected)

        patch_embed = PatchingAndEmbeddingTF(project_dim, patch_size, input_shape=shape,
                                             dynamic_img_size=dynamic_img_size)
        blocks = [
            TransformerEncoderTF(project_dim, mlp_dim, num_heads, mlp_dropout=mlp_dropout,
                                 attention_dropout=attention_dropout, activation=activation,
                                 layer_norm_epsilon=layer_norm_epsilon, drop_path_rate=rate)
            for rate in drop_path_rates(drop_path_rate, num_layers)[:built]
        ]
        norm = None if features_only else keras.layers.LayerNormalization(epsilon=layer_norm_epsilon)
        # float32 logits under mixed precision.
        head = keras.layers.Dense(classes, dtype="float32", name="head") if include_top and not features_only else None

        inputs = keras.Input(shape=(None, None, shape[-1]) if dynamic_img_size else shape)
        x, points = patch_embed(inputs), {}
        for i, block in enumerate(blocks):
            x = block(x)
            points[i + 1] = x  # tap = blocks run (see plan.feature_levels)
        if not features_only and pool_mode in (None, "token"):
            x = norm(x)
        if features_only:
            to_grid = TokenGrid(patch_size)
            outputs = [to_grid(points[level.tap], inputs) for level in selected]
        elif pool_mode is None:
            outputs = x
        else:
            x = _pool_tokens(x, pool_mode)
            if pool_mode != "token":
                x = norm(x)
            outputs = x if head is None else head(x)
        kwargs.setdefault("name", "vit")
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # Public attributes in the same order as ViTPT: they define the canonical names.
        self.patch_embed = patch_embed
        self.blocks = blocks
        self.norm = norm
        self.head = head
        self.pool_mode = pool_mode
        self.num_features = int(project_dim)
        self._store_config(arguments)
        self._dv_init_features(levels, positions, pruned)

    def check_input(self, shape) -> None:
        """Rank and channels, then the patch embedding's own check (patch grid, or multiples of the
        patch size with ``dynamic_img_size``), before Keras's input-spec check: as ``ViTPT`` reports it."""
        super().check_input(shape)
        self.patch_embed.check_input(shape)

    def forward_features(self, x, training: bool = False):
        """Tokens after the last block and, with token pooling, the final norm: ``(B, H, W, C) -> (B, 1 + N, D)``."""
        x = self.patch_embed(x)
        for block in self.blocks:
            x = block(x, training=training)
        return self.norm(x) if self.pool_mode in (None, "token") else x

    def forward_head(self, x, pre_logits: bool = False):
        """Pool ``forward_features`` tokens ``(B, 1 + N, D)``; ``pre_logits=True`` stops before ``head``."""
        x = _pool_tokens(x, self.pool_mode or "token")
        if self.pool_mode in ("avg", "max"):
            x = self.norm(x)
        return x if pre_logits or self.head is None else self.head(x)
