"""The tiny NeRF data file: download, and validation of its structure on every load.

The file is an ``.npz`` archive with three arrays:

- ``images``: (N, H, W, 3), floating point in [0, 1] (kept as is, cast to float32) or uint8
  (scaled by 1/255 to float32 in [0, 1]). The published file holds 106 float32 images of 100x100.
- ``poses``: (N, 4, 4) floating point camera-to-world matrices.
- ``focal``: a 0-d floating point or integer array, the focal length in pixels (> 0).
"""

from __future__ import annotations

import http.client
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from urllib.request import Request, urlopen

import numpy as np

from deepvision.datasets.errors import DatasetDownloadError, DatasetNotFoundError, InvalidDatasetError

TINY_NERF_URL = "https://people.eecs.berkeley.edu/~bmild/nerf/tiny_nerf_data.npz"
DEFAULT_SAVE_PATH = os.path.join("~", ".deepvision", "datasets", "tiny_nerf_data.npz")
_CHUNK = 1 << 16


@dataclass(frozen=True)
class TinyNerfData:
    """The validated content of a tiny NeRF file.

    Attributes:
        images: float32 (N, H, W, 3) in [0, 1].
        poses: float32 (N, 4, 4) camera-to-world matrices.
        focal: focal length in pixels.
        path: the file it was read from.
    """

    images: np.ndarray
    poses: np.ndarray
    focal: float
    path: str

    @property
    def num_images(self) -> int:
        return int(self.images.shape[0])

    @property
    def height(self) -> int:
        return int(self.images.shape[1])

    @property
    def width(self) -> int:
        return int(self.images.shape[2])


def _manual_hint(path: str, url: str) -> str:
    return (
        f"Download {url} by hand (for example: curl -L -o '{path}' '{url}') and put it at {path}, "
        "or pass save_path= pointing at an existing copy."
    )


def _invalid(path: str, problem: str) -> InvalidDatasetError:
    return InvalidDatasetError(
        f"The tiny NeRF file {path} is not usable: {problem}. Delete it so that "
        f"load_tiny_nerf(..., download=True) downloads it again, or replace it with a copy of {TINY_NERF_URL}."
    )


def read_tiny_nerf_file(path: str | os.PathLike) -> TinyNerfData:
    """Read and validate a tiny NeRF ``.npz`` file; every array is read fully before any is used.

    Raises:
        DatasetNotFoundError: there is no file at ``path``.
        InvalidDatasetError: the file is not a readable ``.npz`` archive (truncated, bad CRC, ...),
            lacks a key, or has a wrong dtype, shape, or non-finite values.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DatasetNotFoundError(f"No tiny NeRF file at {path}. {_manual_hint(path, TINY_NERF_URL)}")
    arrays: dict[str, np.ndarray] = {}
    try:
        # allow_pickle=False: a data file must never be able to run code.
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise _invalid(path, "it holds a single .npy array, not an .npz archive")
        with archive:
            missing = [key for key in ("images", "poses", "focal") if key not in archive.files]
            if missing:
                raise _invalid(path, f"missing key(s) {missing} (found {sorted(archive.files)})")
            for key in ("images", "poses", "focal"):
                # Decompressing here also checks each member's CRC, so truncation shows up now.
                arrays[key] = archive[key]
    except InvalidDatasetError:
        raise
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError) as err:
        raise _invalid(path, f"it cannot be read as an .npz archive ({type(err).__name__}: {err})") from err
    return _validated(path, arrays["images"], arrays["poses"], arrays["focal"])


def _validated(path: str, images: np.ndarray, poses: np.ndarray, focal: np.ndarray) -> TinyNerfData:
    if images.ndim != 4 or images.shape[-1] != 3 or min(images.shape) < 1:
        raise _invalid(path, f"images must have shape (N, H, W, 3) with N, H, W >= 1, got {images.shape}")
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / np.float32(255.0)
    elif np.issubdtype(images.dtype, np.floating):
        images = images.astype(np.float32)
        if not np.isfinite(images).all():
            raise _invalid(path, "images contain NaN or infinite values")
    else:
        raise _invalid(path, f"images must be uint8 or floating point, got dtype {images.dtype}")

    num_images = images.shape[0]
    if poses.shape != (num_images, 4, 4):
        raise _invalid(path, f"poses must have shape ({num_images}, 4, 4) to match images {images.shape}, got {poses.shape}")
    if not np.issubdtype(poses.dtype, np.floating):
        raise _invalid(path, f"poses must be floating point, got dtype {poses.dtype}")
    poses = poses.astype(np.float32)
    if not np.isfinite(poses).all():
        raise _invalid(path, "poses contain NaN or infinite values")

    if focal.ndim != 0:
        raise _invalid(path, f"focal must be a scalar (0-d array), got shape {focal.shape}")
    if focal.dtype == np.bool_ or not (np.issubdtype(focal.dtype, np.floating) or np.issubdtype(focal.dtype, np.integer)):
        raise _invalid(path, f"focal must be a floating point or integer number, got dtype {focal.dtype}")
    focal_value = float(focal)
    if not np.isfinite(focal_value) or focal_value <= 0:
        raise _invalid(path, f"focal must be a finite positive number, got {focal_value}")
    return TinyNerfData(images=images, poses=poses, focal=focal_value, path=path)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int | None, description: str, enabled: bool):
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm  # optional: without tqdm the download is silent
    except ImportError:
        return _NoBar()
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=description)


def download_tiny_nerf(
    save_path: str | os.PathLike,
    url: str = TINY_NERF_URL,
    *,
    progress: bool = True,
    timeout: float = 60.0,
) -> str:
    """Download the tiny NeRF file (about 12.7 MB) to ``save_path``, atomically.

    The bytes go to a temporary file in the destination folder, are checked (length announced by
    the server, then the structure of the archive), and only then renamed onto ``save_path``; an
    interrupted or failed download leaves nothing behind.

    Returns:
        The absolute path of the file.

    Raises:
        DatasetDownloadError: the download failed or gave an invalid file; the message says where
            to put a hand-downloaded copy.
    """
    path = os.path.abspath(os.path.expanduser(os.fspath(save_path)))
    tmp_path = None
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".part", dir=os.path.dirname(path))
        request = Request(url, headers={"User-Agent": "deepvision-toolkit"})
        with os.fdopen(fd, "wb") as out, urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length") if response.headers is not None else None
            total = int(length) if length and length.isdigit() else None
            bar = _progress_bar(total, os.path.basename(path), progress)
            received = 0
            try:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            finally:
                bar.close()
            out.flush()
            os.fsync(out.fileno())
        if total is not None and received != total:
            raise DatasetDownloadError(
                f"The download of {url} stopped after {received} of {total} bytes. {_manual_hint(path, url)}"
            )
        try:
            read_tiny_nerf_file(tmp_path)
        except InvalidDatasetError as err:
            raise DatasetDownloadError(
                f"{url} did not give a valid tiny NeRF file ({err}). {_manual_hint(path, url)}"
            ) from err
        os.replace(tmp_path, path)
        tmp_path = None
        return path
    except DatasetDownloadError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as err:
        raise DatasetDownloadError(
            f"Could not download the tiny NeRF dataset from {url} ({type(err).__name__}: {err}). "
            f"{_manual_hint(path, url)}"
        ) from err
    finally:
        if tmp_path is not None and os.path.exists(tmp_path):
            os.remove(tmp_path)


def ensure_tiny_nerf_file(
    save_path: str | os.PathLike | None,
    download: bool,
    url: str = TINY_NERF_URL,
    progress: bool = True,
) -> TinyNerfData:
    """Return the validated content of ``save_path``, downloading the file first when missing.

    Raises:
        DatasetNotFoundError: missing file and ``download=False``.
        DatasetDownloadError: missing file and the download failed.
        InvalidDatasetError: the file (present or just downloaded) is corrupt.
    """
    path = os.path.abspath(os.path.expanduser(os.fspath(save_path if save_path is not None else DEFAULT_SAVE_PATH)))
    if not os.path.exists(path):
        if not download:
            raise DatasetNotFoundError(
                f"No tiny NeRF file at {path} and download=False. Pass download=True to fetch it, "
                f"or: {_manual_hint(path, url)}"
            )
        download_tiny_nerf(path, url, progress=progress)
    return read_tiny_nerf_file(path)
