"""Validation of the data file and the download, with urlopen mocked: no network, no framework."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import urllib.error

import numpy as np
import pytest

import deepvision.datasets as datasets
from deepvision.backend import BackendError
from deepvision.datasets import (
    TINY_NERF_URL,
    DatasetDownloadError,
    DatasetNotFoundError,
    InvalidDatasetError,
)
from deepvision.datasets.tiny_nerf import files

from .conftest import npz_bytes, tiny_nerf_arrays


class FakeResponse:
    """What ``urlopen`` returns: a context manager with ``headers`` and ``read``."""

    def __init__(self, payload: bytes, length: int | None = None, fail_after: int | None = None):
        self._stream = io.BytesIO(payload)
        self.headers = {"Content-Length": str(len(payload) if length is None else length)}
        self._fail_after = fail_after

    def read(self, size: int = -1) -> bytes:
        if self._fail_after is not None and self._stream.tell() >= self._fail_after:
            raise ConnectionResetError("connection reset by peer")
        return self._stream.read(min(size, 1024))  # small pieces, as a socket gives them

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture
def serve(monkeypatch):
    """``serve(payload or exception, **FakeResponse options)``: what the mocked urlopen answers."""
    calls = []

    def install(answer, **options):
        def fake_urlopen(request, timeout=None):
            calls.append(request.full_url)
            if isinstance(answer, BaseException):
                raise answer
            return FakeResponse(answer, **options)

        monkeypatch.setattr(files, "urlopen", fake_urlopen)
        return calls

    return install


def no_network(*args, **kwargs):
    raise AssertionError("the network must not be used")


def leftovers(directory) -> list[str]:
    return sorted(os.listdir(directory))


def test_import_is_framework_free():
    code = (
        "import sys, deepvision, deepvision.datasets, deepvision.datasets.tiny_nerf;"
        "deepvision.datasets.load_tiny_nerf;"
        "bad = [m for m in ('tensorflow', 'torch', 'keras') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_valid_file_is_read(make_npz):
    data = files.read_tiny_nerf_file(make_npz(n=5, height=6, width=7))
    assert data.images.shape == (5, 6, 7, 3) and data.images.dtype == np.float32
    assert data.poses.shape == (5, 4, 4) and data.poses.dtype == np.float32
    assert (data.num_images, data.height, data.width) == (5, 6, 7)
    assert data.focal == pytest.approx(1.4 * 7)


def test_uint8_images_are_scaled_and_float64_cast(make_npz):
    images = np.full((3, 4, 4, 3), 255, dtype=np.uint8)
    images[0] = 0
    path = make_npz(n=3, height=4, width=4, images=images, poses=np.tile(np.eye(4), (3, 1, 1)), focal=np.array(5))
    data = files.read_tiny_nerf_file(path)
    assert data.images.dtype == np.float32 and data.images.min() == 0.0 and data.images.max() == 1.0
    assert data.poses.dtype == np.float32 and data.focal == 5.0


def _truncated(make_npz):
    path = make_npz()
    with open(path, "rb") as f:
        payload = f.read()
    with open(path, "wb") as f:
        f.write(payload[: len(payload) // 2])
    return path


def _flipped_byte(make_npz):
    # A damaged byte inside the images member: the zip's CRC check must catch it.
    path = make_npz()
    with open(path, "r+b") as f:
        f.seek(300)
        byte = f.read(1)
        f.seek(300)
        f.write(bytes([byte[0] ^ 0xFF]))
    return path


def _garbage(make_npz):
    path = make_npz()
    with open(path, "wb") as f:
        f.write(b"this is not an npz archive at all" * 10)
    return path


def _empty(make_npz):
    path = make_npz()
    open(path, "wb").close()
    return path


def _npy(make_npz):
    path = make_npz()
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    return path


@pytest.mark.parametrize(
    "make_bad, message",
    [
        (_truncated, "cannot be read"),
        (_flipped_byte, "cannot be read"),
        (_garbage, "cannot be read"),
        (_empty, "cannot be read"),
        (_npy, "not an .npz archive"),
        (lambda make: make(poses=None), "missing key"),
        (lambda make: make(images=np.zeros((10, 8, 8, 3), dtype=np.int32)), "uint8 or floating"),
        (lambda make: make(images=np.zeros((10, 8, 8), dtype=np.float32)), r"\(N, H, W, 3\)"),
        (lambda make: make(images=np.zeros((10, 8, 8, 4), dtype=np.float32)), r"\(N, H, W, 3\)"),
        (lambda make: make(images=np.full((10, 8, 8, 3), np.nan, dtype=np.float32)), "NaN"),
        (lambda make: make(poses=np.zeros((9, 4, 4), dtype=np.float32)), "poses must have shape"),
        (lambda make: make(poses=np.zeros((10, 3, 4), dtype=np.float32)), "poses must have shape"),
        (lambda make: make(poses=np.zeros((10, 4, 4), dtype=np.int64)), "poses must be floating"),
        (lambda make: make(focal=np.array([138.9])), "focal must be a scalar"),
        (lambda make: make(focal=np.array("big")), "focal must be a floating"),
        (lambda make: make(focal=np.array(-1.0)), "positive"),
        (lambda make: make(focal=np.array([None, 1], dtype=object)), "cannot be read"),
    ],
)
def test_invalid_files_are_rejected(make_npz, make_bad, message):
    path = make_bad(make_npz)
    with pytest.raises(InvalidDatasetError, match=message) as info:
        files.ensure_tiny_nerf_file(path, download=True)
    assert path in str(info.value) and "Delete it" in str(info.value)
    assert os.path.exists(path)  # a user's file is reported, never deleted


def test_corrupt_file_fails_before_any_dataset_is_built(make_npz, monkeypatch):
    import deepvision.datasets.tiny_nerf.loader as loader

    def must_not_build(module):
        raise AssertionError(f"{module} imported for a corrupt file")

    monkeypatch.setattr(loader.importlib, "import_module", must_not_build)
    monkeypatch.setattr(loader, "require", lambda backend: "pytorch")
    with pytest.raises(InvalidDatasetError):
        datasets.load_tiny_nerf(_truncated(make_npz), backend="pytorch")


def test_unknown_backend_is_reported_before_any_io(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "urlopen", no_network)
    with pytest.raises(BackendError, match="Unknown backend"):
        datasets.load_tiny_nerf(str(tmp_path / "missing.npz"), backend="jax")
    assert leftovers(tmp_path) == []


def test_missing_file_without_download(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "urlopen", no_network)
    path = str(tmp_path / "tiny.npz")
    with pytest.raises(DatasetNotFoundError) as info:
        files.ensure_tiny_nerf_file(path, download=False)
    assert isinstance(info.value, FileNotFoundError)
    assert path in str(info.value) and TINY_NERF_URL in str(info.value)


def test_present_file_is_not_downloaded(make_npz, monkeypatch):
    monkeypatch.setattr(files, "urlopen", no_network)
    assert files.ensure_tiny_nerf_file(make_npz(), download=True).num_images == 10


def test_download_writes_the_file_with_progress(tmp_path, serve, capsys):
    payload = npz_bytes(**tiny_nerf_arrays(n=4))
    calls = serve(payload)
    path = str(tmp_path / "sub" / "tiny.npz")
    data = files.ensure_tiny_nerf_file(path, download=True, progress=True)
    assert calls == [TINY_NERF_URL]
    assert data.num_images == 4
    with open(path, "rb") as f:
        assert f.read() == payload
    assert leftovers(tmp_path / "sub") == ["tiny.npz"]  # no temporary file left
    assert "tiny.npz" in capsys.readouterr().err  # tqdm's bar, labelled with the file name


def test_download_without_tqdm_is_silent(tmp_path, serve, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm` fail
    serve(npz_bytes(**tiny_nerf_arrays(n=2)))
    path = files.download_tiny_nerf(tmp_path / "tiny.npz", progress=True)
    assert path == str(tmp_path / "tiny.npz") and os.path.exists(path)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "answer, options, message",
    [
        (urllib.error.URLError("no route to host"), {}, "no route to host"),
        (urllib.error.HTTPError(TINY_NERF_URL, 404, "Not Found", {}, None), {}, "404"),
        (TimeoutError("timed out"), {}, "timed out"),
        (npz_bytes(**tiny_nerf_arrays(n=4)), {"fail_after": 2048}, "connection reset"),
        (npz_bytes(**tiny_nerf_arrays(n=4)), {"length": 10**7}, "stopped after"),
        (b"<html>Service unavailable</html>", {}, "did not give a valid"),
    ],
)
def test_failed_download_is_clear_and_leaves_nothing(tmp_path, serve, answer, options, message):
    serve(answer, **options)
    path = str(tmp_path / "tiny.npz")
    with pytest.raises(DatasetDownloadError, match=message) as info:
        files.ensure_tiny_nerf_file(path, download=True, progress=False)
    text = str(info.value)
    assert path in text and TINY_NERF_URL in text and "by hand" in text
    assert leftovers(tmp_path) == []


def test_load_downloads_when_missing(tmp_path, serve):
    pytest.importorskip("torch")
    serve(npz_bytes(**tiny_nerf_arrays(n=5, height=4, width=4)))
    train, valid = datasets.load_tiny_nerf(
        str(tmp_path / "tiny.npz"), backend="pytorch", pos_embed=2, num_ray_samples=3, progress=False
    )
    assert (len(train), len(valid)) == (4, 1)


def test_default_save_path_is_under_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(files, "urlopen", no_network)
    with pytest.raises(DatasetNotFoundError, match=r"\.deepvision/datasets/tiny_nerf_data\.npz"):
        files.ensure_tiny_nerf_file(None, download=False)
