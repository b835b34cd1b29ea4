"""``load_tiny_nerf``: the one entry point, for both backends."""

from __future__ import annotations

import importlib
import os
from typing import Any

from deepvision.backend import TENSORFLOW, require
from deepvision.datasets.tiny_nerf import common
from deepvision.datasets.tiny_nerf.files import TINY_NERF_URL, ensure_tiny_nerf_file


def load_tiny_nerf(
    save_path: str | os.PathLike | None = None,
    validation_split: float = 0.2,
    backend: str | None = None,
    pos_embed: int = 16,
    num_ray_samples: int = 32,
    download: bool = True,
    *,
    near: float = common.NEAR,
    far: float = common.FAR,
    jitter: bool = False,
    seed: int = 0,
    url: str = TINY_NERF_URL,
    progress: bool = True,
) -> tuple[Any, Any]:
    """Load the tiny NeRF scene as ``(train, validation)`` datasets of the chosen backend.

    Each element is ``(image, (rays, t_vals))``, float32:

    - image: (H, W, 3) in [0, 1] (100x100 in the published file);
    - rays: (H * W * num_ray_samples, 3 + 6 * pos_embed), the points ``origin + t * direction``
      sampled along the ray of every pixel, in (row, column, sample) order, positionally
      encoded as ``[x, sin(2^k x), cos(2^k x) for k < pos_embed]``; (320000, 99) by default;
    - t_vals: (H, W, num_ray_samples), the distance ``t`` of each sample.

    Rays are computed when an element is read (126 MB each at the default sizes), never for all
    images at once. Both backends give the same numbers for the same file.

    Args:
        save_path: where the ``.npz`` file is (or is downloaded to); default
            ``~/.deepvision/datasets/tiny_nerf_data.npz``.
        validation_split: fraction in [0, 1) of the images kept for validation; the first
            ``floor(N * (1 - validation_split))`` images train, the rest validate (106 -> 84 / 22
            with 0.2). 0 gives an empty validation dataset.
        backend: ``"tensorflow"`` (a ``tf.data.Dataset``) or ``"pytorch"`` (a
            :class:`~deepvision.datasets.tiny_nerf.tiny_nerf_pt.TinyNerfDataset`, usable with a
            ``DataLoader``); ``None`` reads ``DEEPVISION_BACKEND``.
        pos_embed: number of encoding frequencies.
        num_ray_samples: samples per ray.
        download: fetch the file from ``url`` when it is missing at ``save_path``.
        near, far: distance range sampled along each ray.
        jitter: push each sample forward by ``U(0, 1) * (far - near) / num_ray_samples``; the
            noise is fixed by ``(seed, index of the image in the file)``, so it repeats across
            epochs and backends.
        seed: non-negative seed of the jitter.
        url: where to download the file from.
        progress: show a download progress bar (needs ``tqdm``).

    Returns:
        ``(train, validation)``; ``len()`` works on both.

    Raises:
        BackendError: unknown backend, or its framework is not installed.
        DatasetNotFoundError: missing file and ``download=False``.
        DatasetDownloadError: the download failed; the message says where to put the file by hand.
        InvalidDatasetError: the file is corrupt or has the wrong structure (checked on every
            load, before any dataset is built).
    """
    # Everything that can be checked without I/O is checked first, so a typo costs no download.
    name = require(backend)
    common.check_options(validation_split, pos_embed, num_ray_samples, near, far, seed)
    data = ensure_tiny_nerf_file(save_path, download, url=url, progress=progress)
    num_train, _ = common.split_sizes(data.num_images, validation_split)
    splits = (range(num_train), range(num_train, data.num_images))
    module = "tiny_nerf_tf" if name == TENSORFLOW else "tiny_nerf_pt"
    builder = importlib.import_module(f"deepvision.datasets.tiny_nerf.{module}")
    train, validation = builder.make_datasets(
        data,
        splits,
        pos_embed=int(pos_embed),
        num_ray_samples=int(num_ray_samples),
        near=float(near),
        far=float(far),
        jitter=bool(jitter),
        seed=int(seed),
    )
    return train, validation
