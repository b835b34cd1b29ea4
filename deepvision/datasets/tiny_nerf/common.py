"""Backend-free pieces of the tiny NeRF loader: ray math in NumPy, sample positions, the split.

The NumPy functions here are the reference implementation. The PyTorch dataset calls them
directly; the TensorFlow pipeline mirrors :func:`camera_rays` and :func:`encode_points` with
native ops, operation for operation, so that both backends produce the same float32 numbers.
Sample positions (:func:`sample_t_vals`) are always drawn with NumPy, in both backends, so the
optional jitter is identical too.

Conventions (those of the Keras NeRF tutorial): pixel ``(row j, column i)`` of an ``H x W``
image looks along ``((i - W/2) / focal, -(j - H/2) / focal, -1)`` in camera space, rotated into
world space by ``pose[:3, :3]``; every ray starts at ``pose[:3, 3]``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

NEAR = 2.0
FAR = 6.0


def encoded_dims(pos_embed: int) -> int:
    """Width of one encoded point: ``x`` plus a sine and a cosine per frequency, 3 dims each."""
    return 3 + 3 * 2 * pos_embed


def camera_rays(height: int, width: int, focal: float, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Origins and directions of the rays through every pixel of one camera.

    Args:
        height, width: image size in pixels.
        focal: focal length in pixels.
        pose: camera-to-world matrix, (4, 4) or (3, 4).

    Returns:
        ``(origins, directions)``, both float32 of shape (height, width, 3). Directions are not
        normalised: their camera-space z component is -1.
    """
    f = np.float32(focal)
    rotation = np.asarray(pose, dtype=np.float32)[:3, :3]
    translation = np.asarray(pose, dtype=np.float32)[:3, 3]
    # i runs along columns (x), j along rows (y): "xy" indexing gives both as (H, W).
    i, j = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32), indexing="xy")
    x = (i - np.float32(width * 0.5)) / f
    y = -((j - np.float32(height * 0.5)) / f)
    z = -np.ones_like(x)
    # R @ d written out term by term, in a fixed order the TF mirror repeats, so that both
    # backends round identically (a reduce_sum may add in another order).
    directions = x[..., None] * rotation[:, 0] + y[..., None] * rotation[:, 1] + z[..., None] * rotation[:, 2]
    origins = np.broadcast_to(translation, directions.shape).copy()
    return origins, directions.astype(np.float32, copy=False)


def base_t_vals(num_samples: int, near: float = NEAR, far: float = FAR) -> np.ndarray:
    """Evenly spaced sample distances from ``near`` to ``far`` inclusive: float32 (num_samples,)."""
    return np.linspace(near, far, num_samples, dtype=np.float64).astype(np.float32)


def sample_t_vals(
    height: int,
    width: int,
    num_samples: int,
    near: float = NEAR,
    far: float = FAR,
    *,
    jitter: bool = False,
    seed: int = 0,
    index: int = 0,
) -> np.ndarray:
    """Distances along each ray at which the scene is sampled: float32 (height, width, num_samples).

    Without jitter every ray gets :func:`base_t_vals`. With jitter each distance is pushed
    forward by ``U(0, 1) * (far - near) / num_samples``; the noise comes from a NumPy generator
    seeded with ``(seed, index)``, so one image gets the same samples in every epoch and in both
    backends, and different images (or seeds) get different ones.
    """
    t_vals = np.broadcast_to(base_t_vals(num_samples, near, far), (height, width, num_samples))
    if not jitter:
        return t_vals.copy()
    rng = np.random.default_rng([int(seed), int(index)])
    noise = rng.random((height, width, num_samples), dtype=np.float32)
    return t_vals + noise * np.float32((far - near) / num_samples)


def encode_points(points: np.ndarray, pos_embed: int) -> np.ndarray:
    """Positional encoding ``[x, sin(2^0 x), cos(2^0 x), ..., sin(2^(L-1) x), cos(2^(L-1) x)]``.

    Args:
        points: float32 (P, 3).
        pos_embed: number of frequencies ``L``.

    Returns:
        float32 (P, 3 + 6 * L).
    """
    points = np.asarray(points, dtype=np.float32)
    num_points = points.shape[0]
    # Scaling by a power of two is exact, so both backends take sin/cos of the same numbers.
    scales = (2.0 ** np.arange(pos_embed)).astype(np.float32)
    scaled = points[:, None, :] * scales[:, None]  # (P, L, 3)
    # Viewed as (P, 1 + 2L, 3): slot 0 is x, then (sin, cos) pairs per frequency. Writing all
    # frequencies at once is faster than one ufunc call per column block.
    out = np.empty((num_points, 1 + 2 * pos_embed, 3), dtype=np.float32)
    out[:, 0] = points
    pairs = out[:, 1:].reshape(num_points, pos_embed, 2, 3)
    np.sin(scaled, out=pairs[:, :, 0])
    np.cos(scaled, out=pairs[:, :, 1])
    return out.reshape(num_points, encoded_dims(pos_embed))


def rays_for_pose(
    pose: np.ndarray,
    height: int,
    width: int,
    focal: float,
    *,
    pos_embed: int,
    num_samples: int,
    near: float = NEAR,
    far: float = FAR,
    jitter: bool = False,
    seed: int = 0,
    index: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Encoded sample points and sample distances for one camera.

    Returns:
        ``(rays, t_vals)``: rays float32 (height * width * num_samples, 3 + 6 * pos_embed), the
        points ``origin + t * direction`` in (row, column, sample) order, encoded; t_vals float32
        (height, width, num_samples).
    """
    origins, directions = camera_rays(height, width, focal, pose)
    t_vals = sample_t_vals(height, width, num_samples, near, far, jitter=jitter, seed=seed, index=index)
    points = origins[..., None, :] + directions[..., None, :] * t_vals[..., None]
    return encode_points(points.reshape(-1, 3), pos_embed), t_vals


def split_sizes(num_images: int, validation_split: float) -> tuple[int, int]:
    """Sizes of the train and validation parts: the first ``floor(N * (1 - split))`` images train.

    106 images with a split of 0.2 give (84, 22). A tiny tolerance keeps exact products such
    as 10 * 0.7 from rounding down to 6 through float error.
    """
    num_train = math.floor(num_images * (1.0 - validation_split) + 1e-9)
    num_train = min(num_train, num_images)
    if num_train < 1:
        raise ValueError(
            f"validation_split={validation_split} leaves no training image out of {num_images}; "
            "use a smaller split."
        )
    return num_train, num_images - num_train


def check_options(
    validation_split: float,
    pos_embed: int,
    num_ray_samples: int,
    near: float,
    far: float,
    seed: int,
) -> None:
    """Raise ``ValueError``/``TypeError`` for loader options that cannot work, before any I/O."""
    if isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real):
        raise TypeError(f"validation_split must be a number in [0, 1), got {validation_split!r}.")
    if not 0.0 <= float(validation_split) < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}.")
    for name, value, low in (("pos_embed", pos_embed, 0), ("num_ray_samples", num_ray_samples, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {value!r}.")
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}.")
    for name, value in (("near", near), ("far", far)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}.")
    if not near < far:
        raise ValueError(f"near must be smaller than far, got near={near}, far={far}.")
