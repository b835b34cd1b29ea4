"""``PatchingAndEmbedding``: a ViT's patch projection, class token and learned position embedding.

Canonical tensors (attribute names, identical in both backends):
``projection.kernel`` (p, p, C, D), ``projection.bias`` (D,), ``class_token`` (1, 1, D),
``position_embedding`` (1, 1 + N, D) with N = (H // p) * (W // p) patches in row-major order.
Loading a checkpoint into a block (or ViT) of another image size resamples the position embedding
over the patch grid, as timm does (see ``deepvision.models.classification.vit.resample``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deepvision import checks
from deepvision.layers._block import build_block, register_block
from deepvision.models.classification.vit.resample import position_embedding_adapter
from deepvision.portable import portable_converters, register_shape_adapter

DEFAULT_IMAGE_SHAPE = (224, 224, 3)  # channels-last; what input_shape=None means


def check_image_size(height: int | None, width: int | None) -> None:
    """Both backends reject an image shape without a fixed size alike."""
    if height is None or width is None:
        raise ValueError("PatchingAndEmbedding needs a fixed image size (its position embedding has one entry per patch).")


def check_images(shape: Any, layout: str, *, channels: int, patch_size: int, grid: tuple[int, int],
                 dynamic_img_size: bool) -> None:
    """The call-time check of both backends: a batch of images with ``channels`` channels, at least one
    patch a side, and either the patch grid the position embedding was made for (sizes that floor
    to it are fine) or, with ``dynamic_img_size``, sides that are multiples of the patch size.

    Raises:
        deepvision.checks.InputShapeError: naming the problem, the expected and the received shape.
    """
    name = "PatchingAndEmbedding"
    checks.check_image(name, shape, layout, channels=channels, min_size=patch_size)
    if dynamic_img_size:
        checks.check_image(f"{name}(dynamic_img_size=True)", shape, layout, channels=channels,
                           multiple_of=patch_size)
        return
    dims = tuple(shape)
    height, width = (dims[1], dims[2]) if layout == checks.CHANNELS_LAST else (dims[2], dims[3])
    if height is not None and width is not None and (height // patch_size, width // patch_size) != tuple(grid):
        checks.fail(name, f"made for a {grid[0]}x{grid[1]} patch grid but got images of {height}x{width}: pass "
                    "input_shape to match (or dynamic_img_size=True)",
                    checks.image_dims(grid[0] * patch_size, grid[1] * patch_size, channels, layout), dims)


def _build_shape(config: dict) -> tuple:
    return tuple(config.get("input_shape") or DEFAULT_IMAGE_SHAPE)


ARCHITECTURE = register_block(
    "PatchingAndEmbedding",
    "patching_and_embedding",
    build_shape=_build_shape,
    reference_config={"project_dim": 16, "patch_size": 4, "input_shape": [16, 16, 3]},
)
register_shape_adapter(position_embedding_adapter)


def PatchingAndEmbedding(
    project_dim: int,
    patch_size: int,
    input_shape: Sequence[int] | None = None,
    dynamic_img_size: bool = False,
    backend: str | None = None,
    **kwargs: Any,
) -> Any:
    """Split an image into patches, project them, prepend a class token and add position embeddings.

    Args:
        project_dim: embedding width D.
        patch_size: side p of the square patches (conv kernel = stride = p, with bias).
        input_shape: image shape in the backend's layout ((H, W, C) for TensorFlow, (C, H, W) for
            PyTorch); fixes the number of positions. ``None`` means 224x224x3.
        dynamic_img_size: accept any image whose sides are multiples of ``patch_size``: the
            position embedding (kept at the ``input_shape`` grid) is resampled at call time, bicubic
            with antialias as timm, by two interpolation matrices from
            ``vit.resample.interpolation_matrices`` (static sizes: compiles under XLA and torch.compile).
        backend: ``"tensorflow"`` or ``"pytorch"``.

    Input: images (B, H, W, C) TensorFlow / (B, C, H, W) PyTorch.
    Output: tokens (B, 1 + N, D) in both, class token first, patches in row-major order
    (N = (H // p) * (W // p) of the input with ``dynamic_img_size``).
    """
    return build_block("PatchingAndEmbedding", locals())


tf_to_pt, pt_to_tf = portable_converters("PatchingAndEmbedding")
