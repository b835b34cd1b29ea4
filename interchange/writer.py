"""Streaming, atomic writer of interchange checkpoints.

The header is fully determined by names, shapes and dtypes, so it is written
before any tensor is fetched (with placeholder checksums). Tensors are then
fetched, checksummed and written one at a time, and the header is patched in
place with the real checksums (same length by construction). Peak memory is
one tensor, whatever the model size.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import struct
import sys
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._format import (
    CHECKSUM_ALGORITHM,
    CHECKSUM_PLACEHOLDER,
    MAX_HEADER_BYTES,
    METADATA_KEY,
    dtype_code,
    dtype_name,
    encode_metadata,
    num_elements,
    numpy_dtype,
)

__all__ = ["TensorEntry", "write_checkpoint"]

# Non-contiguous tensors are made contiguous in slabs of about this size, and
# contiguous ones are checksummed/written in pieces of this size.
_CHUNK_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class TensorEntry:
    """One tensor for :func:`write_checkpoint`: declared name/shape/dtype plus a lazy ``fetch``.

    ``fetch`` is called exactly once, when the tensor is written, and must return an
    array of exactly ``shape`` and ``dtype`` (any memory layout).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    fetch: Callable[[], np.ndarray]

    def __post_init__(self) -> None:
        # Normalise so that e.g. shape=[3, 4] or dtype=np.float32 are accepted.
        try:
            shape = tuple(int(d) for d in self.shape)
        except (TypeError, ValueError):
            raise ValueError(f"tensor {self.name!r}: shape must be a sequence of ints, got {self.shape!r}") from None
        if any(d < 0 for d in shape):
            raise ValueError(f"tensor {self.name!r}: shape has a negative dimension: {shape}")
        try:
            name = dtype_name(self.dtype)
        except TypeError as exc:
            raise ValueError(f"tensor {self.name!r}: {exc}") from None
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", name)
        if not callable(self.fetch):
            raise TypeError(f"tensor {self.name!r}: fetch must be a callable returning the array")

    @classmethod
    def from_array(cls, name: str, array: Any) -> TensorEntry:
        """Entry for an array that is already in memory."""
        arr = np.asarray(array)
        return cls(name, arr.shape, arr.dtype.name, lambda: arr)

    @property
    def nbytes(self) -> int:
        return num_elements(self.shape) * numpy_dtype(self.dtype).itemsize


def _coerce_entries(entries: Any) -> list[TensorEntry]:
    if isinstance(entries, Mapping):
        return [TensorEntry.from_array(name, value) for name, value in entries.items()]
    out: list[TensorEntry] = []
    for item in entries:
        if isinstance(item, TensorEntry):
            out.append(item)
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            out.append(TensorEntry.from_array(item[0], item[1]))
        else:
            raise TypeError(
                f"entries must be TensorEntry objects, (name, array) pairs or a name->array mapping; got {item!r}"
            )
    seen: set[str] = set()
    for entry in out:
        if not isinstance(entry.name, str) or not entry.name:
            raise ValueError(f"tensor names must be non-empty strings, got {entry.name!r}")
        if entry.name == METADATA_KEY:
            raise ValueError(f"{METADATA_KEY!r} is reserved by safetensors and cannot be a tensor name")
        if entry.name in seen:
            raise ValueError(f"tensor name {entry.name!r} appears more than once")
        seen.add(entry.name)
    return out


def _header_bytes(
    metadata: dict[str, str],
    entries: list[TensorEntry],
    offsets: dict[str, tuple[int, int]],
    checksums: dict[str, str],
) -> bytes:
    meta = dict(metadata)
    meta["checksum_algorithm"] = CHECKSUM_ALGORITHM
    meta["checksums"] = json.dumps(checksums, sort_keys=True)
    header: dict[str, Any] = {METADATA_KEY: dict(sorted(meta.items()))}
    for entry in entries:
        header[entry.name] = {
            "dtype": dtype_code(entry.dtype),
            "shape": list(entry.shape),
            "data_offsets": list(offsets[entry.name]),
        }
    # ASCII-only so the byte length cannot depend on anything but the characters we choose.
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    # Pad with spaces (valid JSON whitespace) so the data buffer starts 8-byte aligned.
    return raw + b" " * (-len(raw) % 8)


def _layout(entries: list[TensorEntry]) -> tuple[list[TensorEntry], dict[str, tuple[int, int]]]:
    # Stable sort by itemsize, largest first: with an 8-aligned data start every
    # tensor then starts at a multiple of its itemsize (aligned memmap views),
    # while tensors of equal itemsize keep the caller's (module) order.
    order = sorted(entries, key=lambda e: -numpy_dtype(e.dtype).itemsize)
    offsets: dict[str, tuple[int, int]] = {}
    pos = 0
    for entry in order:
        offsets[entry.name] = (pos, pos + entry.nbytes)
        pos += entry.nbytes
    return order, offsets


def _little_endian(arr: np.ndarray) -> np.ndarray:
    order = arr.dtype.byteorder
    if order == ">" or (order == "=" and sys.byteorder == "big"):
        return arr.astype(arr.dtype.newbyteorder("<"))
    return arr


def _write_tensor(f: Any, entry: TensorEntry) -> int:
    """Fetch one tensor, check it against its declaration, write it; return its CRC-32."""
    arr = entry.fetch()
    if not isinstance(arr, np.ndarray):
        arr = np.asarray(arr)
    try:
        actual_dtype = dtype_name(arr.dtype)
    except TypeError:
        actual_dtype = str(arr.dtype)
    if actual_dtype != entry.dtype or tuple(arr.shape) != entry.shape:
        raise ValueError(
            f"tensor {entry.name!r}: fetch() returned shape {tuple(arr.shape)} dtype {actual_dtype}, but the "
            f"entry declares shape {entry.shape} dtype {entry.dtype}; fix the exporter so they agree"
        )
    arr = _little_endian(arr)
    crc = 0
    if arr.flags.c_contiguous:
        flat = memoryview(arr.reshape(-1).view(np.uint8))
        for start in range(0, len(flat), _CHUNK_BYTES):
            piece = flat[start : start + _CHUNK_BYTES]
            crc = zlib.crc32(piece, crc)
            f.write(piece)
    else:
        # Make contiguous slab by slab along the first axis, so a transposed
        # view never needs a second full-size copy.
        row_bytes = max(1, arr[0].nbytes) if arr.shape[0] else 1
        rows = max(1, _CHUNK_BYTES // row_bytes)
        for start in range(0, arr.shape[0], rows):
            slab = np.ascontiguousarray(arr[start : start + rows])
            data = memoryview(slab.reshape(-1).view(np.uint8))
            crc = zlib.crc32(data, crc)
            f.write(data)
    return crc


def _create_temp(target: Path) -> tuple[Path, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = target.with_name(f"{target.name}.tmp{secrets.token_hex(4)}")
        try:
            # Mode 0o666 lets the umask decide, as for any newly created file.
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {target}")


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, so best effort.
    if not hasattr(os, "O_DIRECTORY"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_checkpoint(
    path: str | os.PathLike,
    entries: Iterable[TensorEntry] | Iterable[tuple[str, Any]] | Mapping[str, Any],
    metadata: Mapping[str, Any],
) -> None:
    """Write an interchange checkpoint atomically, streaming one tensor at a time.

    ``entries``: :class:`TensorEntry` objects (or ``(name, array)`` pairs, or a
    name->array mapping), in module order. ``metadata``: JSON-able values; see
    SPEC.md section 3. On any error the target is left untouched and no
    temporary file remains.
    """
    target = Path(os.fspath(path))
    items = _coerce_entries(entries)
    meta = encode_metadata(metadata, [e.dtype for e in items])
    order, offsets = _layout(items)
    header = _header_bytes(meta, items, offsets, {e.name: CHECKSUM_PLACEHOLDER for e in items})
    if len(header) > MAX_HEADER_BYTES:
        raise ValueError(f"the header would be {len(header)} bytes, above the {MAX_HEADER_BYTES}-byte limit")
    data_len = sum(e.nbytes for e in items)

    tmp, fd = _create_temp(target)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(header)))
            f.write(header)
            crcs: dict[str, str] = {}
            for entry in order:
                crcs[entry.name] = f"{_write_tensor(f, entry):08x}"
            if f.tell() != 8 + len(header) + data_len:  # pragma: no cover - guards our own arithmetic
                raise AssertionError("internal error: data size differs from the header's offsets")
            final = _header_bytes(meta, items, offsets, crcs)
            if len(final) != len(header):  # pragma: no cover - fixed-width checksums make this impossible
                raise AssertionError("internal error: header length changed when patching checksums")
            f.seek(8)
            f.write(final)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(OSError):
            if target.exists():
                os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)
