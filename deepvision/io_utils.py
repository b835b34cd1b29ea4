"""File helpers: every file deepvision writes is written whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def full_suffix(path: str | os.PathLike) -> str:
    """``.weights.h5`` for ``x.weights.h5``, else the last suffix (``.pt``)."""
    name = Path(path).name.lower()
    return ".weights.h5" if name.endswith(".weights.h5") else Path(name).suffix


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, which some writers insist on); on success
    it replaces ``path`` in one rename, on failure it is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=full_suffix(path), dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.unlink()  # writers such as Keras refuse to overwrite, or open the file their own way
    try:
        yield tmp_path
        if not tmp_path.exists():
            raise RuntimeError(f"nothing was written for {path}")
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
