"""The writer replaces the target atomically and cleans up after any failure."""

from __future__ import annotations

import os

import numpy as np
import pytest

from interchange import Checkpoint, TensorEntry, write_checkpoint


class Boom(RuntimeError):
    pass


def _entries(fail_at: int | None, fetched: list[str]):
    out = []
    for i in range(5):
        name = f"blocks.{i}.kernel"

        def fetch(i=i, name=name):
            fetched.append(name)
            if i == fail_at:
                raise Boom(f"export of {name} failed")
            return np.full((4, 4), i, np.float32)

        out.append(TensorEntry(name, (4, 4), "float32", fetch))
    return out


def test_failing_fetch_leaves_old_file_untouched(tmp_path, ckpt_path):
    before = ckpt_path.read_bytes()
    fetched: list[str] = []
    with pytest.raises(Boom):
        write_checkpoint(ckpt_path, _entries(fail_at=2, fetched=fetched), {"architecture": "X"})
    assert fetched == ["blocks.0.kernel", "blocks.1.kernel", "blocks.2.kernel"]  # stopped midway
    assert ckpt_path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [ckpt_path.name]
    Checkpoint(ckpt_path)  # still valid


def test_failing_fetch_without_existing_target(tmp_path):
    target = tmp_path / "new.safetensors"
    with pytest.raises(Boom):
        write_checkpoint(target, _entries(fail_at=0, fetched=[]), {})
    assert list(tmp_path.iterdir()) == []


def test_shape_error_midway_cleans_up(tmp_path, ckpt_path):
    before = ckpt_path.read_bytes()
    entries = _entries(fail_at=None, fetched=[])
    entries.append(TensorEntry("bad", (3,), "float32", lambda: np.ones(4, np.float32)))
    with pytest.raises(ValueError, match="'bad'"):
        write_checkpoint(ckpt_path, entries, {})
    assert ckpt_path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [ckpt_path.name]


def test_temp_file_lives_next_to_target(tmp_path, monkeypatch):
    seen: list[str] = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(os.fspath(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    target = tmp_path / "m.safetensors"
    write_checkpoint(target, {"w": np.ones(2, np.float32)}, {})
    assert len(seen) == 1
    tmp = os.path.basename(seen[0])
    assert os.path.dirname(seen[0]) == str(tmp_path)
    assert tmp.startswith("m.safetensors.tmp")
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_success_replaces_existing_file(ckpt_path):
    write_checkpoint(ckpt_path, {"only": np.arange(3, dtype=np.int8)}, {"architecture": "Other"})
    ckpt = Checkpoint(ckpt_path)
    assert ckpt.names == ["only"] and ckpt.architecture == "Other"
