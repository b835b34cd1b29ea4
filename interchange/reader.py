"""Lazy, memory-mapped reader of interchange checkpoints."""

from __future__ import annotations

import difflib
import functools
import os
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._format import (
    Header,
    Metadata,
    check_format,
    num_elements,
    numpy_dtype,
    parse_checksums,
    parse_schema_id,
    read_header,
)
from .errors import DigestMismatchError, IntegrityError, MetadataError, MigrationError, MissingTensorError
from .migrations import Migration, migration_chain
from .writer import TensorEntry

__all__ = ["Checkpoint", "open_checkpoint", "read_metadata"]


@dataclass
class _ViewEntry:
    """A tensor as presented (possibly renamed/transformed by migrations)."""

    stored: str
    steps: list[tuple[Migration, str]] = field(default_factory=list)  # (step, name after step)


class Checkpoint:
    """A checkpoint file opened lazily: tensors are zero-copy views into a memory map.

    ``verify``: check every CRC-32 now (cheap; detects corruption before use).
    ``migrate``: present old schema versions through registered migrations.
    ``allow_foreign``: also read safetensors files not written in this format
    (for importers); their metadata fields are then None and nothing is verified.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        verify: bool = True,
        migrate: bool = True,
        allow_foreign: bool = False,
    ) -> None:
        self.path = Path(os.fspath(path))
        # Header and memory map come from the same open file, so a concurrent
        # os.replace of the path cannot pair one file's header with another's data.
        with open(self.path, "rb") as f:
            self._header: Header = read_header(self.path, f)
            fmt_version = check_format(self._header, allow_foreign=allow_foreign)
            self._mm: np.memmap | None = np.memmap(f, dtype=np.uint8, mode="r", shape=(self._header.file_size,))
        self.is_foreign = fmt_version is None
        #: Format version of the file (None for a foreign safetensors file).
        self.format_version: int | None = fmt_version
        # Checksums first: a damaged 'checksums' value is an integrity problem, not a metadata one.
        self._checksums: dict[str, int] = {} if self.is_foreign else parse_checksums(self._header)
        self.metadata = Metadata(self._header.raw_metadata, typed=not self.is_foreign)

        self.architecture: str | None = None
        self.schema_version: int | None = None
        self.config: dict[str, Any] | None = None
        if not self.is_foreign:
            self._read_identity()
        self.migrated_from: int | None = None

        self._view: dict[str, _ViewEntry] = {name: _ViewEntry(name) for name in self._header.tensors}
        if migrate and self.architecture is not None and self.schema_version is not None:
            chain = migration_chain(self.architecture, self.schema_version)
            if chain:
                self._apply_migrations(chain)
        self._shape_cache: dict[str, tuple[int, ...]] = {}
        self._dtype_cache: dict[str, str] = {}
        if verify and not self.is_foreign:
            self.verify()

    # ------------------------------------------------------------------ identity

    def _read_identity(self) -> None:
        meta = self.metadata
        arch = meta.get("architecture")
        if "schema" in meta:
            schema_arch, self.schema_version = parse_schema_id(meta["schema"])
            if arch is not None and arch != schema_arch:
                raise MetadataError(
                    f"{self.path}: metadata 'architecture' is {arch!r} but 'schema' is {meta['schema']!r}; "
                    "the file is inconsistent: re-export it"
                )
            arch = schema_arch
        self.architecture = arch
        self.config = meta.get("config")

    def _apply_migrations(self, chain: list[Migration]) -> None:
        current = self._view
        for step in chain:
            renamed: dict[str, _ViewEntry] = {}
            origin: dict[str, str] = {}
            for name, entry in current.items():
                new = step.new_name(name)
                if new is None:
                    continue
                if new in renamed:
                    raise MigrationError(
                        f"migration {step.architecture} v{step.from_version}->v{step.to_version} maps both "
                        f"{origin[new]!r} and {name!r} to {new!r}; fix the migration"
                    )
                origin[new] = name
                changes = step.transform is not None or step.shape_transform is not None
                renamed[new] = _ViewEntry(entry.stored, entry.steps + ([(step, new)] if changes else []))
            current = renamed
        self._view = current
        self.migrated_from = self.schema_version
        self.schema_version = chain[-1].to_version

    # ------------------------------------------------------------------ mapping protocol

    @property
    def raw_metadata(self) -> dict[str, str]:
        """The ``__metadata__`` dict exactly as stored (a copy)."""
        return self.metadata.raw

    @property
    def names(self) -> list[str]:
        """Tensor names in file (header) order, after migrations."""
        return list(self._view)

    @property
    def stored_names(self) -> list[str]:
        """Tensor names as stored in the file, before migrations."""
        return list(self._header.tensors)

    def __contains__(self, name: object) -> bool:
        return name in self._view

    def __len__(self) -> int:
        return len(self._view)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._view))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.get(name)

    def _entry(self, name: str) -> _ViewEntry:
        try:
            return self._view[name]
        except KeyError:
            pass
        close = difflib.get_close_matches(name, list(self._view), n=5, cutoff=0.6) if isinstance(name, str) else []
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise MissingTensorError(
            f"{self.path} has no tensor {name!r} ({len(self._view)} tensors).{hint} "
            "List them with Checkpoint.names.",
            name,
        ) from None

    def shape(self, name: str) -> tuple[int, ...]:
        """Shape of a tensor, from the header (no data read unless a migration transform needs it)."""
        entry = self._entry(name)
        if not entry.steps:
            return self._header.tensors[entry.stored].shape
        if name not in self._shape_cache:
            if all(step.transform is None or step.shape_transform is not None for step, _ in entry.steps):
                shape = self._header.tensors[entry.stored].shape
                for step, new in entry.steps:
                    if step.shape_transform is not None:
                        shape = tuple(int(d) for d in step.shape_transform(new, shape))
            else:
                shape = tuple(self.get(name).shape)
            self._shape_cache[name] = shape
        return self._shape_cache[name]

    def dtype(self, name: str) -> str:
        """numpy dtype name of a tensor (e.g. ``"float32"``, ``"bfloat16"``)."""
        entry = self._entry(name)
        if all(step.transform is None for step, _ in entry.steps):
            return self._header.tensors[entry.stored].dtype
        if name not in self._dtype_cache:
            self._dtype_cache[name] = self.get(name).dtype.name
        return self._dtype_cache[name]

    # ------------------------------------------------------------------ data

    def _mmap(self) -> np.memmap:
        if self._mm is None:
            raise ValueError(f"checkpoint {self.path} is closed; open it again to read tensors")
        return self._mm

    def _stored_array(self, stored: str) -> np.ndarray:
        info = self._header.tensors[stored]
        dtype = numpy_dtype(info.dtype)
        if sys.byteorder == "big":  # pragma: no cover - data is little-endian on disk
            dtype = dtype.newbyteorder("<")
        # A plain ndarray over the read-only map: zero-copy and itself read-only.
        return np.ndarray(info.shape, dtype=dtype, buffer=self._mmap(), offset=self._header.data_start + info.begin)

    def get(self, name: str) -> np.ndarray:
        """The tensor as a read-only array; a zero-copy view of the file unless a migration transforms it."""
        entry = self._entry(name)
        arr = self._stored_array(entry.stored)
        for step, new in entry.steps:
            if step.transform is not None:
                arr = np.asarray(step.transform(new, arr))
            elif step.shape_transform is not None:
                arr = arr.reshape(step.shape_transform(new, arr.shape))
        if arr.flags.writeable:
            arr.setflags(write=False)
        return arr

    def entries(self) -> list[TensorEntry]:
        """The tensors as lazy :class:`TensorEntry` objects, e.g. to rewrite the file."""
        return [TensorEntry(n, self.shape(n), self.dtype(n), functools.partial(self.get, n)) for n in self._view]

    def num_parameters(self) -> int:
        """Total number of elements over all tensors."""
        return sum(num_elements(self.shape(n)) for n in self._view)

    def verify(self, names: Sequence[str] | None = None) -> None:
        """Check CRC-32 checksums (of all tensors, or of ``names``); raise DigestMismatchError listing every bad one."""
        if self.is_foreign:
            raise IntegrityError(
                f"{self.path} is not an interchange checkpoint and has no checksums to verify; "
                "import it with `deepvision convert` to get a verifiable checkpoint"
            )
        stored: list[str] = []
        for name in self._header.tensors if names is None else names:
            if name in self._view:
                stored.append(self._view[name].stored)
            elif name in self._header.tensors:  # a pre-migration name is fine too
                stored.append(name)
            else:
                self._entry(name)  # raises MissingTensorError with suggestions
        mm = self._mmap()
        start = self._header.data_start
        bad: list[tuple[str, int, int]] = []
        for name in dict.fromkeys(stored):
            info = self._header.tensors[name]
            actual = zlib.crc32(memoryview(mm[start + info.begin : start + info.end]))
            if actual != self._checksums[name]:
                bad.append((name, self._checksums[name], actual))
        if bad:
            listing = "\n".join(f"  {n}: expected crc32 {e:08x}, got {a:08x}" for n, e, a in bad[:50])
            more = f"\n  ... and {len(bad) - 50} more" if len(bad) > 50 else ""
            raise DigestMismatchError(
                f"{self.path} is corrupt: {len(bad)} tensor(s) do not match their checksum:\n{listing}{more}\n"
                "Re-download or re-export the file.",
                [n for n, _, _ in bad],
            )

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Drop the memory map. Arrays already returned stay valid (they keep the map alive)."""
        self._mm = None

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        schema = f"@{self.schema_version}" if self.schema_version is not None else ""
        return f"Checkpoint({str(self.path)!r}, architecture={self.architecture!r}{schema}, tensors={len(self)})"


def open_checkpoint(path: str | os.PathLike, **kwargs: Any) -> Checkpoint:
    """Open a checkpoint; keyword arguments as for :class:`Checkpoint`."""
    return Checkpoint(path, **kwargs)


def read_metadata(path: str | os.PathLike, *, allow_foreign: bool = False) -> dict[str, Any]:
    """Parsed ``__metadata__`` of a checkpoint, reading only the header (fast, no tensor data)."""
    header = read_header(path)
    version = check_format(header, allow_foreign=allow_foreign)
    return Metadata(header.raw_metadata, typed=version is not None).to_dict()
