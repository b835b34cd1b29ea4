"""Datasets for the models of deepvision, for both backends.

``import deepvision.datasets`` imports neither TensorFlow nor PyTorch: the framework of the
requested backend is imported when a dataset is built.

- :func:`load_tiny_nerf`: the tiny NeRF scene (106 images of 100x100 with camera poses) as a
  ``tf.data.Dataset`` or a ``torch.utils.data.Dataset``.
"""

from __future__ import annotations

from deepvision.datasets.errors import (
    DatasetDownloadError,
    DatasetError,
    DatasetNotFoundError,
    InvalidDatasetError,
)
from deepvision.datasets.tiny_nerf import TINY_NERF_URL, download_tiny_nerf, load_tiny_nerf

__all__ = [
    "DatasetDownloadError",
    "DatasetError",
    "DatasetNotFoundError",
    "InvalidDatasetError",
    "TINY_NERF_URL",
    "download_tiny_nerf",
    "load_tiny_nerf",
]
