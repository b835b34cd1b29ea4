"""Synthetic tiny NeRF files: same format as the published one, small sizes, no network."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest


def random_pose(rng: np.random.Generator, radius: float = 4.0) -> np.ndarray:
    """A camera-to-world matrix with a random rotation and a translation of about ``radius``."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))  # a proper, uniformly drawn orthogonal matrix
    pose = np.eye(4)
    pose[:3, :3] = q
    pose[:3, 3] = rng.normal(size=3) * radius
    return pose


def tiny_nerf_arrays(n: int = 10, height: int = 8, width: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """Arrays in the published format: float32 images and poses, a 0-d float64 focal."""
    rng = np.random.default_rng(seed)
    return {
        "images": rng.random((n, height, width, 3), dtype=np.float32),
        "poses": np.stack([random_pose(rng) for _ in range(n)]).astype(np.float32),
        "focal": np.array(1.4 * width),
    }


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.fixture
def make_npz(tmp_path):
    """``make_npz(name="data.npz", **overrides)`` writes a synthetic file and returns its path.

    ``n``, ``height``, ``width`` and ``seed`` size it; any array keyword replaces that array, and
    an array given as ``None`` is left out.
    """

    def make(name: str = "data.npz", n: int = 10, height: int = 8, width: int = 8, seed: int = 0, **overrides) -> str:
        arrays = tiny_nerf_arrays(n, height, width, seed)
        arrays.update(overrides)
        arrays = {key: value for key, value in arrays.items() if value is not None}
        path = os.path.join(tmp_path, name)
        with open(path, "wb") as f:
            f.write(npz_bytes(**arrays))
        return path

    return make
