"""Position-embedding resampling in pure numpy, identical for both backends.

timm's ``resample_abs_pos_embed`` resizes the patch part of a ViT position embedding with
``F.interpolate(mode="bicubic", antialias=True, align_corners=False)``. PyTorch's and TensorFlow's
bicubic kernels disagree (by 0.36 without antialias), so deepvision does the resampling once, here,
in numpy: the same numbers whichever backend loads the checkpoint, and no framework needed.

The resampler follows PyTorch's separable antialiased kernel (the PIL algorithm): a Keys cubic
filter with ``a = -0.5`` whose support widens by the scale factor when downsampling, weights
normalised per output pixel, the width pass first and the height pass second, float32 arithmetic.
Its weights are bit-identical to PyTorch's; upsampled embeddings are bit-identical too, downsampled
ones agree to a float32 rounding or two (relative 1e-7: PyTorch's CPU kernel sums long filters
in an order that depends on how it was compiled).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

logger = logging.getLogger("deepvision")

_F32 = np.float32
_F64 = np.float64
_A = -0.5  # PyTorch's cubic coefficient when antialias=True (PIL's value); -0.75 otherwise.


def _fma(a: float, b: float, c: float) -> np.float32:
    """float32 ``a * b + c`` with one rounding, as the fused multiply-add PyTorch's CPU kernel compiles to.

    The product of two float32 numbers is exact in float64, so one float64 add and one rounding to
    float32 reproduce the hardware instruction.
    """
    return _F32(_F64(a) * _F64(b) + _F64(c))


def _cubic(x: np.float32) -> np.float32:
    """Keys cubic convolution kernel (a = -0.5) at ``|x|``, float32 with PyTorch's fused operations."""
    x = abs(_F32(x))
    if x < 1:
        t = _fma(_F32(_A + 2), x, -_F32(_A + 3))
        return _fma(_F32(t * x), x, 1.0)
    if x < 2:
        t = _fma(_F32(_A), x, -_F32(5 * _A))
        t = _fma(t, x, _F32(8 * _A))
        return _fma(t, x, -_F32(4 * _A))
    return _F32(0)


def antialias_bicubic_weights(in_size: int, out_size: int) -> np.ndarray:
    """The (out_size, in_size) float32 matrix that resamples one axis like PyTorch's antialiased bicubic.

    ``align_corners=False`` and no explicit scale factor, as timm calls ``F.interpolate``. Each step
    mirrors the float/double mix of PyTorch's CPU kernel, so the weights are bit-identical to it.
    """
    scale = _F32(in_size) / _F32(out_size)
    downsampling = scale >= 1.0
    support = _F32(2.0 * _F64(scale)) if downsampling else _F32(2.0)  # widened filter when shrinking
    invscale = _F32(1.0 / _F64(scale)) if downsampling else _F32(1.0)
    matrix = np.zeros((out_size, in_size), dtype=np.float32)
    for i in range(out_size):
        center = _F32(_F64(scale) * (i + 0.5))
        # C++ truncation toward zero, then clamped to the input range.
        xmin = max(int(_F64(_F32(center - support)) + 0.5), 0)
        xsize = min(int(_F64(_F32(center + support)) + 0.5), in_size) - xmin
        weights = [_cubic(_F32((_F64(_F32(_F32(j + xmin) - center)) + 0.5) * _F64(invscale))) for j in range(xsize)]
        total = _F32(0)
        for w in weights:
            total = _F32(total + w)
        if total != 0:
            weights = [_F32(w / total) for w in weights]
        matrix[i, xmin:xmin + xsize] = weights
    return matrix


def _resample_axis(x: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """Apply ``weights`` (out, in) along ``axis`` of a float32 array, tap by tap with fused multiply-adds."""
    x = np.moveaxis(np.asarray(x, dtype=np.float32), axis, 0)
    out = np.zeros((weights.shape[0], *x.shape[1:]), dtype=np.float32)
    for i, row in enumerate(weights):
        taps = np.nonzero(row)[0]
        if taps.size == 0:
            continue
        first, last = int(taps[0]), int(taps[-1]) + 1
        acc = (x[first].astype(np.float64) * _F64(row[first])).astype(np.float32)
        for j in range(first + 1, last):
            acc = (x[j].astype(np.float64) * _F64(row[j]) + acc).astype(np.float32)
        out[i] = acc
    return np.moveaxis(out, 0, axis)


def resize_bicubic_antialias(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Resize a channels-last float array (H, W, C) to ``size`` = (new_h, new_w).

    Equals ``F.interpolate(nchw, size, mode="bicubic", antialias=True, align_corners=False)`` (to float32
    rounding: see the module docstring). An axis whose size does not change is left alone, as
    PyTorch does.
    """
    new_h, new_w = (int(s) for s in size)
    out = np.asarray(image, dtype=np.float32)
    if out.shape[1] != new_w:
        out = _resample_axis(out, antialias_bicubic_weights(out.shape[1], new_w), axis=1)
    if out.shape[0] != new_h:
        out = _resample_axis(out, antialias_bicubic_weights(out.shape[0], new_h), axis=0)
    return out


def resample_position_embedding(
    embedding: np.ndarray,
    new_grid: Sequence[int],
    old_grid: Sequence[int] | None = None,
    num_prefix_tokens: int = 1,
) -> np.ndarray:
    """Resample a ViT position embedding (1, prefix + h*w, D) to (1, prefix + new_h*new_w, D).

    The prefix (class) tokens are kept as they are; the patch part, laid out row-major over the
    (h, w) patch grid, is resized with antialiased bicubic interpolation in float32 and cast back to
    the input dtype, exactly as timm's ``resample_abs_pos_embed`` with its defaults.

    Args:
        embedding: (1, prefix + h*w, D) array.
        new_grid: (new_h, new_w) patch grid.
        old_grid: (h, w); a square grid is assumed when ``None``.
        num_prefix_tokens: leading tokens that are not on the grid (1: the class token).
    """
    embedding = np.asarray(embedding)
    if embedding.ndim != 3 or embedding.shape[0] != 1:
        raise ValueError(f"expected a (1, tokens, dim) position embedding, got shape {embedding.shape}")
    patches = embedding.shape[1] - num_prefix_tokens
    if old_grid is None:
        side = math.isqrt(patches)
        if side * side != patches:
            raise ValueError(f"{patches} patch positions do not form a square grid: pass old_grid=(h, w)")
        old_grid = (side, side)
    old_h, old_w = (int(s) for s in old_grid)
    if old_h * old_w != patches:
        raise ValueError(f"grid {old_h}x{old_w} does not match the {patches} patch positions of the embedding")
    dim = embedding.shape[2]
    grid = embedding[0, num_prefix_tokens:].astype(np.float32).reshape(old_h, old_w, dim)
    resized = resize_bicubic_antialias(grid, new_grid).reshape(1, -1, dim).astype(embedding.dtype)
    return np.concatenate([embedding[:, :num_prefix_tokens], resized], axis=1)


@functools.lru_cache(maxsize=64)
def interpolation_matrices(old_grid: tuple[int, int], new_grid: tuple[int, int]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The (new_h, old_h) and (new_w, old_w) float32 matrices of :func:`resize_bicubic_antialias`.

    Resampling is linear and separable, so a grid ``g`` (old_h, old_w, D) resizes as
    ``Mh @ g @ Mw^T`` (over the two grid axes): this is how ViT's ``dynamic_img_size`` resamples its
    position embedding inside the graph (static sizes at trace time, so it compiles under XLA and
    ``torch.compile``, and gradients flow to the embedding). ``None`` for an axis whose size does
    not change (left alone, as PyTorch does). Read-only arrays, cached per pair of grids.
    """
    (old_h, old_w), (new_h, new_w) = (int(s) for s in old_grid), (int(s) for s in new_grid)
    mats = []
    for old, new in ((old_h, new_h), (old_w, new_w)):
        if old == new:
            mats.append(None)
            continue
        matrix = antialias_bicubic_weights(old, new)
        matrix.setflags(write=False)
        mats.append(matrix)
    return mats[0], mats[1]


def patch_grid(config: Mapping[str, Any]) -> tuple[int, int] | None:
    """The (h, w) patch grid of a ViT-like config (``input_shape`` channels-last, ``patch_size``)."""
    shape, patch = config.get("input_shape"), config.get("patch_size")
    if not shape or not patch or shape[0] is None or shape[1] is None:
        return None
    return int(shape[0]) // int(patch), int(shape[1]) // int(patch)


def position_embedding_adapter(
    name: str, array: np.ndarray, target_shape: tuple, file_config: Mapping[str, Any], model_config: Mapping[str, Any]
) -> np.ndarray | None:
    """Shape adapter for :func:`deepvision.portable.register_shape_adapter`.

    Resamples a ``...position_embedding`` tensor whose patch grid differs between the file and the
    model (one class token kept); declines (``None``) anything else.
    """
    if not name.split(".")[-1] == "position_embedding":
        return None
    if array.ndim != 3 or len(target_shape) != 3 or array.shape[0] != 1 or target_shape[0] != 1:
        return None
    if array.shape[2] != target_shape[2]:
        return None
    prefix = 1
    old_grid = patch_grid(file_config)
    if old_grid is None or old_grid[0] * old_grid[1] + prefix != array.shape[1]:
        old_grid = None  # square assumed
    new_grid = patch_grid(model_config)
    if new_grid is None or new_grid[0] * new_grid[1] + prefix != target_shape[1]:
        side = math.isqrt(target_shape[1] - prefix)
        if side * side + prefix != target_shape[1]:
            return None
        new_grid = (side, side)
    try:
        out = resample_position_embedding(array, new_grid, old_grid, prefix)
    except ValueError:
        return None
    old = old_grid or (math.isqrt(array.shape[1] - prefix),) * 2
    logger.info(
        "deepvision: resampled %s from a %dx%d to a %dx%d patch grid (bicubic, antialias, class token kept)",
        name, old[0], old[1], new_grid[0], new_grid[1],
    )
    return out
