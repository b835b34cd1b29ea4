"""Pictures of a trained NeRF: rendered views next to the truth (PNG) and an orbit (GIF)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepvision.io_utils import atomic_output
from deepvision.nerf.rendering import render_image


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_views(model: Callable, poses: Sequence[np.ndarray], focal: float, height: int, width: int,
               path: str | os.PathLike, *, truth: Sequence[np.ndarray] | None = None, **render: Any) -> Path:
    """Render ``poses`` and write them side by side as one PNG (with the true images above, if given)."""
    from PIL import Image

    rows = [np.concatenate([render_image(model, p, focal, height, width, **render)["rgb"] for p in poses], axis=1)]
    if truth is not None:
        rows.insert(0, np.concatenate(list(truth), axis=1))
    with atomic_output(path) as tmp:
        Image.fromarray(_to_uint8(np.concatenate(rows, axis=0))).save(tmp, format="PNG")
    return Path(path)


def save_orbit(model: Callable, focal: float, height: int, width: int, path: str | os.PathLike, *,
               frames: int = 24, radius: float = 4.0, elevation_degrees: float = 30.0, duration_ms: int = 80,
               **render: Any) -> Path:
    """Render ``frames`` views on an orbit around the origin and write them as a looping GIF."""
    from PIL import Image

    from deepvision.nerf.scene import orbit_poses

    images = [Image.fromarray(_to_uint8(render_image(model, p, focal, height, width, **render)["rgb"]))
              for p in orbit_poses(frames, radius, elevation_degrees)]
    with atomic_output(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return Path(path)
