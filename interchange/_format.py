"""Low-level pieces shared by the reader and the writer.

Constants, the dtype table, metadata encoding/decoding and the defensive
safetensors header parser live here, so that ``reader`` and ``writer`` agree
on every rule by construction.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import ml_dtypes
import numpy as np

from .errors import (
    ForeignCheckpointError,
    FormatVersionError,
    HeaderTooLargeError,
    IntegrityError,
    MetadataError,
    NotSafetensorsError,
    TruncatedFileError,
)

FORMAT_NAME = "deepvision.interchange"
SUPPORTED_FORMAT_VERSION = 1
CHECKSUM_ALGORITHM = "crc32"
# Same limit as the reference safetensors implementation: a larger header is
# either garbage or a denial-of-service attempt.
MAX_HEADER_BYTES = 100_000_000
# numpy (>= 1.26) cannot represent more dimensions, nor an array whose non-zero
# dimensions multiply to more bytes than a signed 64-bit size: such headers are refused.
MAX_NDIM = 32
_MAX_NBYTES = 2**63 - 1
# Longer version numbers are refused before int() (Python limits int() to 4300 digits).
_MAX_VERSION_DIGITS = 18
METADATA_KEY = "__metadata__"
CHECKSUM_PLACEHOLDER = "00000000"

# safetensors dtype code -> numpy dtype. Extended precision types come from
# ml_dtypes so that bfloat16/float8 data is viewed without conversion.
_CODE_TO_DTYPE: dict[str, np.dtype] = {
    "F64": np.dtype(np.float64),
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "C64": np.dtype(np.complex64),
    "I64": np.dtype(np.int64),
    "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16),
    "I8": np.dtype(np.int8),
    "U64": np.dtype(np.uint64),
    "U32": np.dtype(np.uint32),
    "U16": np.dtype(np.uint16),
    "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
}
_NAME_TO_CODE: dict[str, str] = {dt.name: code for code, dt in _CODE_TO_DTYPE.items()}
# dtype.name costs tens of microseconds in numpy 2 (it formats the name each time): look it up.
_CODE_TO_NAME: dict[str, str] = {code: name for name, code in _NAME_TO_CODE.items()}
# The floating dtypes a checkpoint's tensors are cast to (save_portable(dtype=...), convert --dtype):
# the one list of them. float8 tensors are stored and read, but never cast to.
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
_FLOAT_NAMES = frozenset({*FLOAT_DTYPES, "float8_e4m3fn", "float8_e5m2"})

# Metadata keys whose values are JSON objects, and keys that must be plain strings.
JSON_OBJECT_KEYS = frozenset({"config", "framework_versions", "preprocessing", "checksums"})
STRING_KEYS = frozenset(
    {"format", "architecture", "schema", "source_backend", "library_version", "dtype", "checksum_algorithm"}
)
# Keys the writer computes itself; values passed by callers are ignored.
_RECOMPUTED_KEYS = frozenset({"checksum_algorithm", "checksums", "json_keys"})

_SCHEMA_ID = re.compile(r"^(?P<arch>[^@\s]+)@(?P<version>[0-9]{1,18})$")


def dtype_name(dtype: Any) -> str:
    """Normalise a dtype given as a name, numpy dtype or scalar type to its numpy name."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype)
    if name not in _NAME_TO_CODE:
        raise TypeError(
            f"dtype {dtype!r} cannot be stored in a safetensors file; "
            f"use one of {sorted(_NAME_TO_CODE)}"
        )
    return name


def dtype_code(name: str) -> str:
    """safetensors dtype code (e.g. ``"F32"``) for a numpy dtype name."""
    return _NAME_TO_CODE[dtype_name(name)]


def numpy_dtype(name: str) -> np.dtype:
    """numpy dtype for a numpy dtype name, including ml_dtypes' types."""
    return _CODE_TO_DTYPE[_NAME_TO_CODE[name]]


def is_float_dtype(name: str) -> bool:
    return name in _FLOAT_NAMES


def num_elements(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def parse_schema_id(value: str) -> tuple[str, int]:
    """Split ``"ResNet50V2@1"`` into ``("ResNet50V2", 1)``."""
    match = _SCHEMA_ID.match(value) if isinstance(value, str) else None
    if match is None:
        raise MetadataError(
            f"metadata 'schema' is {value!r}, expected '<Architecture>@<version>' such as 'ResNet50V2@1'; "
            "fix the value passed to write_checkpoint (or re-export the file)"
        )
    return match["arch"], int(match["version"])


def _dumps(key: str, value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"metadata[{key!r}] is not JSON-serialisable ({exc}); pass plain dicts, lists, strings, "
            "finite numbers, booleans or None"
        ) from None


# --------------------------------------------------------------------------- metadata


def encode_metadata(metadata: Mapping[str, Any], dtypes: list[str]) -> dict[str, str]:
    """Turn caller metadata (JSON-able values) into the str->str header dict, without checksums.

    ``dtypes`` are the tensors' dtype names, used to fill in ``dtype`` when absent.
    """
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a mapping of str to JSON-able values, got {type(metadata).__name__}")
    # Honour json_keys from a reader's raw metadata so raw -> write -> read keeps types.
    declared_json: set[str] = set()
    given_json_keys = metadata.get("json_keys")
    if isinstance(given_json_keys, str):
        try:
            given_json_keys = json.loads(given_json_keys)
        except (ValueError, RecursionError):
            given_json_keys = None
    if isinstance(given_json_keys, list):
        declared_json = {k for k in given_json_keys if isinstance(k, str)}

    out: dict[str, str] = {"format": FORMAT_NAME, "format_version": str(SUPPORTED_FORMAT_VERSION)}
    json_keys: list[str] = []
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"metadata keys must be non-empty strings, got {key!r}")
        if value is None or key in _RECOMPUTED_KEYS:
            continue
        if key == "format":
            if value != FORMAT_NAME:
                raise ValueError(f"metadata 'format' must be {FORMAT_NAME!r} (or omitted), got {value!r}")
            continue
        if key == "format_version":
            if str(value) != str(SUPPORTED_FORMAT_VERSION):
                raise ValueError(
                    f"this writer only writes format_version {SUPPORTED_FORMAT_VERSION}, got {value!r}; "
                    "omit 'format_version' from the metadata"
                )
            continue
        if key in JSON_OBJECT_KEYS:
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except (ValueError, RecursionError):
                    raise TypeError(f"metadata[{key!r}] is a string that is not JSON; pass a dict") from None
            if not isinstance(value, Mapping):
                raise TypeError(f"metadata[{key!r}] must be a dict (JSON object), got {type(value).__name__}")
            out[key] = _dumps(key, dict(value))
        elif key in STRING_KEYS:
            if not isinstance(value, str):
                raise TypeError(f"metadata[{key!r}] must be a string, got {type(value).__name__}")
            out[key] = value
        elif isinstance(value, str):
            if key in declared_json:
                try:
                    json.loads(value)
                except (ValueError, RecursionError):
                    raise TypeError(f"metadata[{key!r}] is listed in json_keys but is not JSON") from None
                json_keys.append(key)
            out[key] = value
        else:
            out[key] = _dumps(key, value)
            json_keys.append(key)

    if "schema" in out:
        arch, _ = parse_schema_id(out["schema"])
        if "architecture" in out and out["architecture"] != arch:
            raise ValueError(
                f"metadata 'schema' ({out['schema']!r}) names a different architecture than "
                f"'architecture' ({out['architecture']!r}); make them agree"
            )
    if "dtype" not in out:
        floats = sorted({d for d in dtypes if is_float_dtype(d)})
        if len(floats) == 1:
            out["dtype"] = floats[0]
        elif len(floats) > 1:
            out["dtype"] = "mixed"
    if json_keys:
        out["json_keys"] = json.dumps(sorted(json_keys))
    return out


class Metadata(Mapping[str, Any]):
    """Read-only view of ``__metadata__`` with values parsed back to Python objects.

    ``format_version`` is an int, JSON-object keys (``config``, ``checksums``, ...)
    and keys listed in ``json_keys`` are parsed JSON, the rest are strings.
    ``raw`` gives the str->str dict exactly as stored. For files not written in
    this format (``typed=False``) nothing is parsed, because the keys are not ours.
    """

    def __init__(self, raw: Mapping[str, str], *, typed: bool = True) -> None:
        self._raw = dict(raw)
        self._typed = typed
        self._parsed: dict[str, Any] = {}
        if typed:
            # Parse everything now so a malformed value fails at open, not later.
            json_keys = self._json_keys()
            for key, text in self._raw.items():
                self._parsed[key] = self._parse(key, text, json_keys)
        else:
            self._parsed = dict(self._raw)

    def _json_keys(self) -> set[str]:
        text = self._raw.get("json_keys")
        if text is None:
            return set()
        try:
            keys = json.loads(text)
        except (ValueError, RecursionError):  # deep nesting exhausts the JSON decoder's stack
            keys = None
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise MetadataError(
                f"metadata 'json_keys' must be a JSON list of strings, got {text!r}; the file is damaged"
            )
        return set(keys)

    @staticmethod
    def _parse(key: str, text: str, json_keys: set[str]) -> Any:
        if key == "format_version":
            return _parse_format_version(text)
        if key == "json_keys":
            return json.loads(text)
        if key in STRING_KEYS:  # always plain strings, even if json_keys (wrongly) lists them
            return text
        if key in JSON_OBJECT_KEYS or key in json_keys:
            try:
                value = json.loads(text)
            except (ValueError, RecursionError):
                raise MetadataError(
                    f"metadata {key!r} is not valid JSON ({text[:80]!r}); the file is damaged: re-export it"
                ) from None
            if key in JSON_OBJECT_KEYS and not isinstance(value, dict):
                raise MetadataError(
                    f"metadata {key!r} must be a JSON object, got {type(value).__name__}; the file is damaged"
                )
            return value
        return text

    @property
    def raw(self) -> dict[str, str]:
        """The metadata exactly as stored (all values strings); a copy."""
        return dict(self._raw)

    def __getitem__(self, key: str) -> Any:
        return self._parsed[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parsed)

    def __len__(self) -> int:
        return len(self._parsed)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the parsed values."""
        return dict(self._parsed)

    def __repr__(self) -> str:
        return f"Metadata({self._parsed!r})"


def _parse_format_version(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text or "") or len(text) > _MAX_VERSION_DIGITS or int(text) < 1:
        raise FormatVersionError(
            f"format_version is {text!r}, expected a positive integer; the file is damaged or was written "
            "by an incompatible tool: re-export it with deepvision-toolkit"
        )
    return int(text)


# --------------------------------------------------------------------------- header


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives in the file."""

    name: str
    dtype: str  # numpy name
    shape: tuple[int, ...]
    begin: int  # relative to the start of the data buffer
    end: int


@dataclass(frozen=True)
class Header:
    """A parsed and structurally validated safetensors header."""

    path: str
    header_length: int
    file_size: int
    tensors: dict[str, TensorInfo]  # header order
    raw_metadata: dict[str, str]

    @property
    def data_start(self) -> int:
        return 8 + self.header_length


_MAGIC_HINTS = (
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras .h5 weights?)"),
    (b"PK\x03\x04", "a zip archive (PyTorch .pt/.pth, Keras .keras or .npz?)"),
    (b"\x93NUMPY", "a numpy .npy file"),
    (b"GGUF", "a GGUF file"),
)


def _sniff(prefix: bytes) -> str | None:
    for magic, what in _MAGIC_HINTS:
        if prefix.startswith(magic):
            return what
    if len(prefix) >= 2 and prefix[0] == 0x80 and 2 <= prefix[1] <= 5:
        return "a Python pickle (legacy PyTorch .pt/.pth?)"
    return None


def _not_safetensors(path: str, reason: str, prefix: bytes = b"") -> NotSafetensorsError:
    what = _sniff(prefix)
    found = f" It looks like {what}." if what else ""
    return NotSafetensorsError(
        f"{path}: this is not a safetensors file ({reason}).{found} If it is a Keras (.h5/.keras) or "
        "PyTorch (.pt/.pth) file, convert it with `deepvision convert`; if it should be a checkpoint, "
        "it is damaged: re-download or re-export it."
    )


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads silently keeps the last duplicate; a header with duplicate
    # names is ambiguous, so refuse it.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_header(path: str | os.PathLike, fileobj: BinaryIO | None = None) -> Header:
    """Read and structurally validate the header of a safetensors file (no data is read).

    ``fileobj``: an already open binary file for ``path``, read from its start;
    the reader passes it so that the header and the memory map see the same file.
    """
    spath = os.fspath(path)
    with contextlib.nullcontext(fileobj) if fileobj is not None else open(spath, "rb") as f:
        f.seek(0)
        file_size = os.fstat(f.fileno()).st_size
        prefix = f.read(8)
        if len(prefix) < 8:
            raise _not_safetensors(spath, f"the file has only {len(prefix)} bytes, fewer than 8", prefix)
        (n,) = struct.unpack("<Q", prefix)
        if n > MAX_HEADER_BYTES:
            # Other formats' magic bytes read as absurd lengths: name the format when we know it.
            if _sniff(prefix) is not None:
                raise _not_safetensors(spath, f"header length field {n} is absurd", prefix)
            raise HeaderTooLargeError(
                f"{spath}: the header length field says {n} bytes, above the {MAX_HEADER_BYTES}-byte limit. "
                "This is not a valid checkpoint (or not a safetensors file at all). If it is a Keras/PyTorch "
                "file, convert it with `deepvision convert`; otherwise re-download or re-export it."
            )
        if n < 2:
            raise _not_safetensors(spath, f"header length {n} is too small for a JSON object", prefix)
        header_bytes = f.read(n)
    if len(header_bytes) < n:
        if header_bytes.lstrip()[:1] == b"{":
            raise TruncatedFileError(
                f"{spath}: the file is {file_size} bytes but its header alone needs {8 + n}; the file is "
                "incomplete (interrupted download or copy). Re-download or re-export it."
            )
        raise _not_safetensors(spath, f"header length {n} exceeds the file size {file_size}", prefix)

    try:
        text = header_bytes.decode("utf-8")
        header = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise _not_safetensors(spath, f"the header repeats the key {exc.args[0]!r}") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _not_safetensors(spath, "the header is not UTF-8 JSON", prefix) from None
    if not isinstance(header, dict):
        raise _not_safetensors(spath, f"the header is JSON {type(header).__name__}, not an object")

    raw_meta = header.pop(METADATA_KEY, None)
    if raw_meta is None:
        raw_meta = {}
    if not isinstance(raw_meta, dict) or not all(isinstance(v, str) for v in raw_meta.values()):
        raise _not_safetensors(spath, "'__metadata__' must map strings to strings")

    tensors: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        tensors[name] = _tensor_info(spath, name, entry)

    # The tensors must tile the data buffer exactly, like the reference reader demands.
    expected = 0
    for info in sorted(tensors.values(), key=lambda t: (t.begin, t.end)):
        if info.begin != expected:
            problem = "overlaps another tensor" if info.begin < expected else "leaves a gap before it"
            raise _not_safetensors(
                spath, f"data_offsets of {info.name!r} start at {info.begin}, expected {expected} ({problem})"
            )
        expected = info.end
    needed = 8 + n + expected
    if file_size < needed:
        raise TruncatedFileError(
            f"{spath}: the file is {file_size} bytes but its header describes {needed}; it is incomplete "
            f"({needed - file_size} bytes missing: interrupted download or copy). Re-download or re-export it."
        )
    if file_size > needed:
        raise _not_safetensors(
            spath, f"{file_size - needed} unexpected bytes follow the last tensor (file {file_size}, expected {needed})"
        )
    return Header(spath, n, file_size, tensors, dict(raw_meta))


def _tensor_info(path: str, name: str, entry: Any) -> TensorInfo:
    if not name:
        raise _not_safetensors(path, "a tensor has an empty name")
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise _not_safetensors(path, f"entry {name!r} lacks dtype/shape/data_offsets")
    code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(code, str) or code not in _CODE_TO_DTYPE:
        raise _not_safetensors(
            path, f"tensor {name!r} has unsupported dtype code {code!r} (supported: {', '.join(_CODE_TO_DTYPE)})"
        )
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise _not_safetensors(path, f"tensor {name!r} has invalid shape {shape!r}")
    dtype = _CODE_TO_DTYPE[code]
    if len(shape) > MAX_NDIM:
        raise _not_safetensors(path, f"tensor {name!r} has {len(shape)} dimensions, more than the {MAX_NDIM} supported")
    if math.prod(d for d in shape if d) * dtype.itemsize > _MAX_NBYTES:
        raise _not_safetensors(path, f"tensor {name!r} has shape {shape}, too large for any array")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_int(o) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise _not_safetensors(path, f"tensor {name!r} has invalid data_offsets {offsets!r}")
    nbytes = math.prod(shape) * dtype.itemsize
    if offsets[1] - offsets[0] != nbytes:
        raise _not_safetensors(
            path,
            f"tensor {name!r} ({code}, shape {shape}) needs {nbytes} bytes but data_offsets span "
            f"{offsets[1] - offsets[0]}",
        )
    return TensorInfo(name, _CODE_TO_NAME[code], tuple(shape), offsets[0], offsets[1])


def check_format(header: Header, *, allow_foreign: bool) -> int | None:
    """Check the interchange-specific metadata; return the format version (None for foreign files)."""
    meta = header.raw_metadata
    fmt = meta.get("format")
    if fmt != FORMAT_NAME:
        if allow_foreign:
            return None
        what = "has no 'format' metadata" if fmt is None else f"has format {fmt!r}"
        raise ForeignCheckpointError(
            f"{header.path} is a valid safetensors file but not a deepvision interchange checkpoint (it {what}). "
            "Import it with an importer, e.g. `deepvision convert --from timm ...`, or pass the architecture "
            "and config explicitly; importers can read it with Checkpoint(path, allow_foreign=True)."
        )
    version = _parse_format_version(meta.get("format_version", ""))
    if version > SUPPORTED_FORMAT_VERSION:
        raise FormatVersionError(
            f"{header.path} uses interchange format_version {version}, but this deepvision-toolkit only "
            f"supports up to {SUPPORTED_FORMAT_VERSION}: upgrade deepvision-toolkit to read it."
        )
    return version


def parse_checksums(header: Header) -> dict[str, int]:
    """Validate and return the per-tensor CRC-32 values of an interchange file."""
    meta = header.raw_metadata
    algorithm = meta.get("checksum_algorithm")
    if algorithm is None or "checksums" not in meta:
        raise IntegrityError(
            f"{header.path} has no checksums (format version 1 requires 'checksum_algorithm' and "
            "'checksums'), so corruption cannot be detected. Re-export it with deepvision-toolkit."
        )
    if algorithm != CHECKSUM_ALGORITHM:
        raise IntegrityError(
            f"{header.path} uses checksum algorithm {algorithm!r}; only {CHECKSUM_ALGORITHM!r} is supported. "
            "Re-export the file with deepvision-toolkit."
        )
    try:
        sums = json.loads(meta["checksums"])
    except (ValueError, RecursionError):
        sums = None
    if not isinstance(sums, dict):
        raise IntegrityError(f"{header.path}: 'checksums' metadata is not a JSON object; the file is damaged")
    bad = [k for k, v in sums.items() if not (isinstance(v, str) and re.fullmatch(r"[0-9a-f]{8}", v))]
    missing = [n for n in header.tensors if n not in sums]
    extra = [k for k in sums if k not in header.tensors]
    if bad or missing or extra:
        parts = []
        if missing:
            parts.append(f"no checksum for {missing[:10]}")
        if extra:
            parts.append(f"checksums for absent tensors {extra[:10]}")
        if bad:
            parts.append(f"malformed checksums for {bad[:10]}")
        raise IntegrityError(
            f"{header.path}: {'; '.join(parts)}. The file is damaged or was edited by hand: re-export it."
        )
    return {k: int(v, 16) for k, v in sums.items()}
