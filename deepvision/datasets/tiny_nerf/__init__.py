"""The tiny NeRF scene: 106 images of 100x100 with camera poses and a focal length.

Backend modules (``tiny_nerf_tf``, ``tiny_nerf_pt``) import their framework; this package and
``common``/``files``/``loader`` do not.
"""

from __future__ import annotations

from deepvision.datasets.tiny_nerf.files import TINY_NERF_URL, download_tiny_nerf, read_tiny_nerf_file
from deepvision.datasets.tiny_nerf.loader import load_tiny_nerf

__all__ = ["TINY_NERF_URL", "download_tiny_nerf", "load_tiny_nerf", "read_tiny_nerf_file"]
