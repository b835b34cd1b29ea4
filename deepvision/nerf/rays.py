"""Ray batches for NeRF training, in numpy, shared by both backends.

NeRF trains on rays drawn at random across all training images: :func:`image_rays` turns images and
poses into one table of ``(origin, direction, colour)`` rows; each backend's trainer batches it
(``tf.data`` or a ``DataLoader``). The first wave's tiny NeRF loader yields whole images with encoded
sample points instead; :func:`rays_from_samples` recovers the rays from those, so its elements feed the
trainers directly.
"""

from __future__ import annotations

import numpy as np

from deepvision.datasets.tiny_nerf.common import camera_rays


def image_rays(images: np.ndarray, poses: np.ndarray, focal: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pixel's ray of a set of views.

    Args:
        images: ``(N, H, W, 3)`` colours in [0, 1].
        poses: ``(N, 4, 4)`` camera-to-world matrices.
        focal: focal length in pixels.

    Returns:
        ``origins (N*H*W, 3)``, ``directions (N*H*W, 3)``, ``colours (N*H*W, 3)``, float32, image-major.
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must have shape (N, H, W, 3), got {images.shape}.")
    if len(poses) != len(images):
        raise ValueError(f"{len(images)} images but {len(poses)} poses.")
    height, width = images.shape[1:3]
    origins, directions = zip(*(camera_rays(height, width, focal, pose) for pose in poses))
    return (np.stack(origins).reshape(-1, 3), np.stack(directions).reshape(-1, 3), images.reshape(-1, 3))


def rays_from_samples(points: np.ndarray, t_vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Origins and directions of rays given two or more sample points on each.

    Args:
        points: ``(..., S, 3)`` positions ``o + t_s d``.
        t_vals: ``(..., S)`` their distances.

    Returns:
        ``origins (..., 3)`` and ``directions (..., 3)`` (the direction scaled as the loader's, z = -1
        in camera space).
    """
    span = (t_vals[..., -1] - t_vals[..., 0])[..., None]
    directions = (points[..., -1, :] - points[..., 0, :]) / span
    origins = points[..., 0, :] - t_vals[..., 0, None] * directions
    return origins, directions
