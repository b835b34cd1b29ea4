"""Shared fixtures for the interchange tests: small files only, everything under tmp_path."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import interchange

CODES = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}


def sample_tensors() -> dict[str, np.ndarray]:
    """A tiny model-like set of tensors in module order, with mixed dtypes."""
    rng = np.random.default_rng(0)
    return {
        "stem.conv.kernel": rng.standard_normal((3, 3, 3, 8)).astype(np.float32),
        "stem.bn.gamma": rng.standard_normal(8).astype(np.float32),
        "stem.bn.beta": rng.standard_normal(8).astype(np.float32),
        "stem.bn.moving_mean": rng.standard_normal(8).astype(np.float32),
        "stem.bn.moving_variance": rng.random(8).astype(np.float32),
        "blocks.0.attn.qkv.kernel": rng.standard_normal((8, 24)).astype(np.float16),
        "blocks.0.attn.qkv.bias": np.arange(24, dtype=np.float32).astype(ml_dtypes.bfloat16),
        "head.kernel": rng.standard_normal((8, 10)).astype(np.float32),
        "head.bias": np.zeros(10, dtype=np.float32),
        "step": np.array(7, dtype=np.int64),
    }


SAMPLE_META = {
    "architecture": "TinyNet",
    "schema": "TinyNet@1",
    "config": {"include_top": True, "input_shape": [32, 32, 3], "num_classes": 10},
    "source_backend": "tensorflow",
    "library_version": "0.2.0",
    "framework_versions": {"tensorflow": "2.16.1"},
    "preprocessing": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
}


@pytest.fixture
def tensors() -> dict[str, np.ndarray]:
    return sample_tensors()


@pytest.fixture
def ckpt_path(tmp_path: Path) -> Path:
    """A valid interchange checkpoint of ``sample_tensors()`` with ``SAMPLE_META``."""
    path = tmp_path / "model.safetensors"
    interchange.write_checkpoint(path, sample_tensors(), SAMPLE_META)
    return path


def craft_file(
    path: Path,
    tensors: dict[str, np.ndarray],
    metadata: dict[str, str] | None = None,
    *,
    checksums: bool = True,
    interchange_meta: bool = True,
    header_edit=None,
    tail: bytes = b"",
) -> Path:
    """Hand-assemble a safetensors file, optionally editing the header dict before encoding.

    Independent of the writer under test, so reader checks do not rely on it.
    """
    header: dict = {}
    chunks = []
    pos = 0
    sums = {}
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": CODES[arr.dtype.name], "shape": list(arr.shape), "data_offsets": [pos, pos + len(data)]}
        sums[name] = f"{zlib.crc32(data):08x}"
        chunks.append(data)
        pos += len(data)
    meta = dict(metadata or {})
    if interchange_meta:
        meta.setdefault("format", interchange.FORMAT_NAME)
        meta.setdefault("format_version", "1")
        if checksums:
            meta.setdefault("checksum_algorithm", "crc32")
            meta.setdefault("checksums", json.dumps(sums, sort_keys=True))
    if meta:
        header = {"__metadata__": meta, **header}
    if header_edit is not None:
        header_edit(header)
    raw = json.dumps(header).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(chunks) + tail)
    return path


@pytest.fixture
def craft():
    """The :func:`craft_file` helper, as a fixture (conftest modules should not be imported)."""
    return craft_file


@pytest.fixture
def sample_meta() -> dict:
    return json.loads(json.dumps(SAMPLE_META))
