"""A synthetic NeRF scene made analytically: coloured spheres rendered by exact ray intersection.

This machine has no internet, so the NeRF demo makes its own data: views on an orbit around three
Lambert-shaded spheres (view-independent colour, white background as in NeRF's synthetic scenes), stored in the tiny NeRF ``.npz``
layout (``images (N, H, W, 3)`` float32 in [0, 1], ``poses (N, 4, 4)``, ``focal``), camera convention
as in :mod:`deepvision.datasets.tiny_nerf.common`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deepvision.datasets.tiny_nerf.common import camera_rays
from deepvision.io_utils import atomic_output

# (centre xyz, radius, rgb): the scene fits in a ball of radius 1.2, seen from distance 4.
SPHERES = (
    ((0.55, 0.0, 0.0), 0.5, (0.9, 0.2, 0.15)),
    ((-0.45, 0.45, 0.1), 0.45, (0.2, 0.8, 0.25)),
    ((-0.2, -0.55, 0.35), 0.4, (0.2, 0.35, 0.95)),
)
LIGHT = np.array([1.0, 1.0, 2.0]) / np.sqrt(6.0)


def look_at(position: np.ndarray, target: np.ndarray = np.zeros(3), up: np.ndarray = np.array([0.0, 0.0, 1.0])
            ) -> np.ndarray:
    """Camera-to-world matrix (4, 4) of a camera at ``position`` looking at ``target`` (it looks along -z)."""
    position = np.asarray(position, np.float64)
    back = position - target
    back /= np.linalg.norm(back)
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, np.cross(back, right), back, position
    return pose.astype(np.float32)


def orbit_poses(count: int, radius: float = 4.0, elevation_degrees: float = 30.0) -> np.ndarray:
    """``count`` cameras evenly spaced in azimuth on a circle at ``elevation_degrees``: (count, 4, 4)."""
    elevation = np.deg2rad(elevation_degrees)
    poses = []
    for azimuth in np.linspace(0.0, 2 * np.pi, count, endpoint=False):
        position = radius * np.array([np.cos(azimuth) * np.cos(elevation), np.sin(azimuth) * np.cos(elevation),
                                      np.sin(elevation)])
        poses.append(look_at(position))
    return np.stack(poses)


def render_spheres(pose: np.ndarray, height: int, width: int, focal: float, background: float = 1.0) -> np.ndarray:
    """Exact ray-sphere intersection render of :data:`SPHERES` over a grey level ``background``:
    (height, width, 3) float32 in [0, 1]."""
    origins, directions = (a.reshape(-1, 3).astype(np.float64) for a in camera_rays(height, width, focal, pose))
    unit = directions / np.linalg.norm(directions, axis=-1, keepdims=True)
    nearest = np.full(len(unit), np.inf)
    colour = np.full((len(unit), 3), float(background))
    for centre, radius, rgb in SPHERES:
        offset = origins - np.asarray(centre)
        b = np.sum(offset * unit, axis=-1)
        disc = b * b - (np.sum(offset * offset, axis=-1) - radius * radius)
        t = -b - np.sqrt(np.maximum(disc, 0.0))
        hit = (disc > 0) & (t > 0) & (t < nearest)
        normal = (origins[hit] + t[hit, None] * unit[hit] - np.asarray(centre)) / radius
        shade = 0.35 + 0.65 * np.clip(normal @ LIGHT, 0.0, 1.0)
        colour[hit] = np.asarray(rgb) * shade[:, None]
        nearest[hit] = t[hit]
    return colour.reshape(height, width, 3).astype(np.float32)


def make_scene(num_views: int = 40, size: int = 100, focal: float | None = None,
               background: float = 1.0) -> dict[str, np.ndarray]:
    """Views of the sphere scene on an orbit, in the tiny NeRF layout (``images``, ``poses``, ``focal``).
    Render and train it with ``white_background=True`` (the default ``background=1.0``)."""
    focal = float(focal if focal is not None else 1.389 * size)  # the tiny NeRF file's field of view
    poses = orbit_poses(num_views)
    images = np.stack([render_spheres(p, size, size, focal, background) for p in poses])
    return {"images": images, "poses": poses, "focal": np.float32(focal)}


def save_scene(scene: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Write a scene as a tiny NeRF ``.npz`` (atomically)."""
    with atomic_output(path) as tmp:
        np.savez(tmp, **scene)
    return Path(path)
