"""PyTorch Vision Transformer (mirrors ``vit_tf.py``): timm's ``VisionTransformer``, layer for layer.

Structure (channels-first input, tokens (B, 1 + N, D))::

    patch_embed (PatchingAndEmbedding: patch conv, class token, position embedding)
    -> blocks (TransformerEncoder x num_layers, pre-norm, scaled_dot_product_attention)
    -> pooling "token": norm (LayerNorm) on every token, then the class token
       pooling "avg"/"max": mean/max of the patch tokens, then norm (timm's fc_norm placement)
    -> head (Linear)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepvision.layers.core_pt import activation_name
from deepvision.layers.patching_and_embedding_pt import PatchingAndEmbeddingPT
from deepvision.layers.transformer_encoder_pt import TransformerEncoderPT
from deepvision.models.base_pt import DeepVisionModulePT
from deepvision.models.classification.vit import drop_path_rates, resolve_pooling
from deepvision.models.classification.vit.plan import default_out_indices, feature_levels, features_layout
from deepvision.models.features import check_feature_arguments, select_levels


def _pool_tokens(x: torch.Tensor, mode: str) -> torch.Tensor:
    """(B, 1 + N, D) -> (B, D): the class token, or the mean/max of the patch tokens."""
    if mode == "token":
        return x[:, 0]
    patches = x[:, 1:]
    return patches.mean(dim=1) if mode == "avg" else patches.amax(dim=1)


class ViTPT(DeepVisionModulePT):
    """Vision Transformer, generic over patch size, width, depth, heads and MLP width.

    Same arguments as ``ViTTF`` (see there), except that ``input_shape`` is channels-first
    ``(C, H, W)`` (``None``: ``(3, 224, 224)``).

    Input ``(B, C, H, W)``; output logits ``(B, classes)``, pooled features ``(B, D)``, tokens
    ``(B, 1 + N, D)``, or a list of ``(B, D, H/p, W/p)`` maps with ``features_only=True``.
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
    ) -> None:
        arguments = dict(locals())
        super().__init__()
        pool_mode = resolve_pooling(include_top, pooling)
        shape = tuple(input_shape) if input_shape is not None else (3, 224, 224)
        # The config records the image size in use: it fixes the position grid that checkpoints carry.
        arguments["input_shape"] = list(shape)
        activation = activation_name(activation)
        check_feature_arguments(features_only, out_indices)
        levels, positions, selected, pruned = feature_levels(num_layers, project_dim, patch_size), None, [], []
        built = num_layers
        if features_only:
            selected, positions = select_levels(levels, out_indices, default_out_indices(num_layers))
            built, pruned = features_layout(num_layers, selected)
        self.features_only = features_only
        self._taps = [level.tap for level in selected]

        self.patch_embed = PatchingAndEmbeddingPT(project_dim, patch_size, input_shape=shape,
                                                  dynamic_img_size=dynamic_img_size)
        self.blocks = nn.ModuleList([
            TransformerEncoderPT(project_dim, mlp_dim, num_heads, mlp_dropout=mlp_dropout,
                                 attention_dropout=attention_dropout, activation=activation,
                                 layer_norm_epsilon=layer_norm_epsilon, drop_path_rate=rate)
            for rate in drop_path_rates(drop_path_rate, num_layers)[:built]
        ])
        self.norm = None if features_only else nn.LayerNorm(project_dim, eps=layer_norm_epsilon)
        self.head = nn.Linear(project_dim, classes) if include_top and not features_only else None
        self.pool_mode = pool_mode
        self.num_features = int(project_dim)
        self._store_config(arguments)
        self._dv_init_features(levels, positions, pruned)

    def _final_norm(self, x: torch.Tensor) -> torch.Tensor:
        # Token pooling normalises every token; avg/max pooling normalises after pooling (timm's fc_norm).
        return self.norm(x) if self.pool_mode in (None, "token") else x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens after the last block and, with token pooling, the final norm: ``(B, C, H, W) -> (B, 1 + N, D)``."""
        x = self.patch_embed(x)
        for block in self.blocks:
            x = self._dv_run_block(block, x)
        return self._final_norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool ``forward_features`` tokens ``(B, 1 + N, D)``; ``pre_logits=True`` stops before ``head``."""
        x = _pool_tokens(x, self.pool_mode or "token")
        if self.pool_mode in ("avg", "max"):
            x = self.norm(x)
        return x if pre_logits or self.head is None else self.head(x)

    def forward_intermediates(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The ``features_only`` levels: the selected blocks' outputs on the patch grid, (B, D, H/p, W/p)."""
        batch, grid = x.shape[0], (x.shape[-2] // self.patch_embed.patch_size, x.shape[-1] // self.patch_embed.patch_size)
        taps, out = set(self._taps), []
        tokens = self.patch_embed(x)
        for i, block in enumerate(self.blocks):
            tokens = self._dv_run_block(block, tokens)
            if i + 1 in taps:
                # Class token dropped; (B, N, D) row-major patches -> (B, D, gh, gw).
                out.append(tokens[:, 1:].reshape(batch, grid[0], grid[1], -1).permute(0, 3, 1, 2))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if self.features_only:
            return self.forward_intermediates(x)
        x = self.forward_features(x)
        if self.pool_mode is None:
            return x
        return self.forward_head(x)
