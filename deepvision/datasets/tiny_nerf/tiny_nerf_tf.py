"""TensorFlow side of the tiny NeRF loader: a ``tf.data`` pipeline.

Rays are computed per element in a ``map`` with native TF ops that mirror the NumPy reference
code of :mod:`.common` operation for operation, so both backends give the same numbers. Only the
optional jitter of the sample positions is drawn with NumPy (``tf.numpy_function``), because it
must match the PyTorch side bit for bit.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from deepvision.backend import require_tensorflow
from deepvision.datasets.tiny_nerf import common
from deepvision.datasets.tiny_nerf.files import TinyNerfData

require_tensorflow()
import tensorflow as tf  # noqa: E402  (imported after the check that explains a missing install)


def camera_rays(height: int, width: int, focal: tf.Tensor, pose: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """TF mirror of :func:`common.camera_rays`: origins and directions, float32 (H, W, 3)."""
    rotation = pose[:3, :3]
    i, j = tf.meshgrid(tf.range(width, dtype=tf.float32), tf.range(height, dtype=tf.float32), indexing="xy")
    x = (i - tf.constant(width * 0.5, tf.float32)) / focal
    y = -((j - tf.constant(height * 0.5, tf.float32)) / focal)
    z = -tf.ones_like(x)
    # Same term order as the NumPy code (see there).
    directions = x[..., None] * rotation[:, 0] + y[..., None] * rotation[:, 1] + z[..., None] * rotation[:, 2]
    origins = tf.broadcast_to(pose[:3, 3], tf.shape(directions))
    return origins, directions


def encode_points(points: tf.Tensor, pos_embed: int) -> tf.Tensor:
    """TF mirror of :func:`common.encode_points`: (P, 3) -> (P, 3 + 6 * pos_embed)."""
    features = [points]
    for k in range(pos_embed):
        scaled = points * tf.constant(2.0**k, tf.float32)
        features += [tf.sin(scaled), tf.cos(scaled)]
    return tf.concat(features, axis=-1)


def _jittered_t_vals(index: np.ndarray, **options) -> np.ndarray:
    return common.sample_t_vals(index=int(index), jitter=True, **options)


def make_rays_fn(
    height: int,
    width: int,
    focal: float,
    *,
    pos_embed: int,
    num_ray_samples: int,
    near: float = common.NEAR,
    far: float = common.FAR,
    jitter: bool = False,
    seed: int = 0,
):
    """Build ``fn(pose, index) -> (rays (H*W*S, 3 + 6*pos_embed), t_vals (H, W, S))`` for ``map``.

    ``index`` is the image's index in the file; it only seeds the jitter.
    """
    num_samples = num_ray_samples
    focal_t = tf.constant(focal, tf.float32)
    base = tf.constant(common.base_t_vals(num_samples, near, far))
    jitter_fn = functools.partial(
        _jittered_t_vals, height=height, width=width, num_samples=num_samples, near=near, far=far, seed=seed
    )

    def rays_fn(pose: tf.Tensor, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        origins, directions = camera_rays(height, width, focal_t, pose)
        if jitter:
            t_vals = tf.numpy_function(jitter_fn, [index], tf.float32, stateful=False)
            t_vals = tf.ensure_shape(t_vals, (height, width, num_samples))
        else:
            t_vals = tf.broadcast_to(base, (height, width, num_samples))
        points = origins[..., None, :] + directions[..., None, :] * t_vals[..., None]
        rays = encode_points(tf.reshape(points, (height * width * num_samples, 3)), pos_embed)
        return rays, t_vals

    return rays_fn


def make_dataset(data: TinyNerfData, indices: Sequence[int], **options) -> tf.data.Dataset:
    """``tf.data.Dataset`` of ``(image (H, W, 3), (rays, t_vals))`` for the file images ``indices``.

    Images and poses are sliced once (a few MB); rays are mapped per element, so ``len()`` stays
    known and no more than a few elements' rays exist at a time.
    """
    indices = np.asarray(indices, dtype=np.int64)
    images = tf.data.Dataset.from_tensor_slices(data.images[indices])
    poses = tf.data.Dataset.from_tensor_slices((data.poses[indices], indices))
    rays_fn = make_rays_fn(data.height, data.width, data.focal, **options)
    rays = poses.map(rays_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return tf.data.Dataset.zip((images, rays))


def make_datasets(data: TinyNerfData, splits: Sequence[Sequence[int]], **options) -> tuple[tf.data.Dataset, ...]:
    """One dataset per list of file indices in ``splits``."""
    return tuple(make_dataset(data, indices, **options) for indices in splits)
