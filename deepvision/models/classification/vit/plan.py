"""ViT feature levels (``features_only``), framework-free, shared by both backends.

As timm's ``VisionTransformer.forward_intermediates(norm=False)``: level ``i`` is block ``i``'s output
tokens (the pre-norm residual stream, no final norm), the class token dropped and the patch tokens
reshaped to the patch grid: ``(B, H/p, W/p, D)`` in Keras, ``(B, D, H/p, W/p)`` in PyTorch, at
reduction ``p`` (the patch size). The default is the last three blocks (timm's ``out_indices=3``).
"""

from __future__ import annotations

from collections.abc import Sequence

from deepvision.models.features import FeatureLevel


def feature_levels(num_layers: int, project_dim: int, patch_size: int) -> list[FeatureLevel]:
    """One level per block: ``blocks.i`` (``tap`` = ``i + 1`` blocks run), ``project_dim`` channels."""
    return [FeatureLevel(int(project_dim), int(patch_size), f"blocks.{i}", i + 1) for i in range(int(num_layers))]


def default_out_indices(num_layers: int) -> range:
    """The last three blocks (fewer when the model has fewer)."""
    return range(-min(3, int(num_layers)), 0)


def features_layout(num_layers: int, selected: Sequence[FeatureLevel]) -> tuple[int, list[str]]:
    """What a features-only ViT builds: ``(number of blocks, pruned canonical prefixes)``.

    The blocks after the last selected one, the final ``norm`` and the ``head`` are not built.
    """
    blocks = max(level.tap for level in selected)
    return blocks, [f"blocks.{i}" for i in range(blocks, int(num_layers))] + ["norm", "head"]
