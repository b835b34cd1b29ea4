"""Migrations: old schema versions are presented lazily in the newest layout."""

from __future__ import annotations

import numpy as np
import pytest

from interchange import (
    Checkpoint,
    MigrationError,
    latest_version,
    migration_chain,
    register_migration,
    registered_migrations,
    unregister_migration,
    write_checkpoint,
)

ARCH = "MadeUpNet"


@pytest.fixture
def migrations():
    """Register MadeUpNet v1->v2->v3 for one test only."""
    # v1 -> v2: "fc" became "head"; "aux.weight" was dropped.
    register_migration(ARCH, 1, 2, lambda name: None if name == "aux.weight" else name.replace("fc.", "head."))
    # v2 -> v3: kernels were stored (out, in) and become (in, out); a dict rename too.
    register_migration(
        ARCH,
        2,
        3,
        {"stem.w": "stem.conv.kernel"},
        transform=lambda name, arr: arr.T if name == "head.kernel" else arr,
        shape_transform=lambda name, shape: tuple(reversed(shape)) if name == "head.kernel" else shape,
    )
    yield
    unregister_migration(ARCH, 1)
    unregister_migration(ARCH, 2)
    assert registered_migrations(ARCH) == []


@pytest.fixture
def v1_file(tmp_path):
    path = tmp_path / "old.safetensors"
    tensors = {
        "stem.w": np.arange(12, dtype=np.float32).reshape(3, 4),
        "fc.kernel": np.arange(6, dtype=np.float32).reshape(2, 3),
        "fc.bias": np.ones(2, np.float32),
        "aux.weight": np.zeros(5, np.float32),
    }
    write_checkpoint(path, tensors, {"architecture": ARCH, "schema": f"{ARCH}@1", "config": {}})
    return path, tensors


def test_chain_is_applied_lazily(migrations, v1_file):
    path, tensors = v1_file
    ckpt = Checkpoint(path)
    assert ckpt.schema_version == 3 and ckpt.migrated_from == 1
    assert ckpt.names == ["stem.conv.kernel", "head.kernel", "head.bias"]
    assert ckpt.stored_names == list(tensors)
    assert ckpt.shape("head.kernel") == (3, 2)  # from shape_transform, no data read
    np.testing.assert_array_equal(ckpt.get("head.kernel"), tensors["fc.kernel"].T)
    np.testing.assert_array_equal(ckpt.get("stem.conv.kernel"), tensors["stem.w"])
    assert not ckpt.get("head.kernel").flags.writeable
    assert ckpt.dtype("head.kernel") == "float32"
    assert "aux.weight" not in ckpt and "fc.kernel" not in ckpt
    assert ckpt.num_parameters() == 12 + 6 + 2
    ckpt.verify(["head.kernel", "aux.weight"])  # migrated or stored names both verify


def test_migrate_false_shows_stored_layout(migrations, v1_file):
    path, tensors = v1_file
    ckpt = Checkpoint(path, migrate=False)
    assert ckpt.schema_version == 1 and ckpt.migrated_from is None
    assert ckpt.names == list(tensors)


def test_current_version_is_untouched(migrations, tmp_path):
    path = tmp_path / "new.safetensors"
    write_checkpoint(path, {"head.kernel": np.ones((3, 2), np.float32)}, {"schema": f"{ARCH}@3"})
    ckpt = Checkpoint(path)
    assert ckpt.schema_version == 3 and ckpt.migrated_from is None
    assert ckpt.architecture == ARCH


def test_rewrite_migrated_checkpoint(migrations, v1_file, tmp_path):
    path, tensors = v1_file
    ckpt = Checkpoint(path)
    out = tmp_path / "upgraded.safetensors"
    write_checkpoint(out, ckpt.entries(), {**ckpt.metadata, "schema": f"{ARCH}@3"})
    upgraded = Checkpoint(out)
    assert upgraded.migrated_from is None and upgraded.names == ckpt.names
    np.testing.assert_array_equal(upgraded.get("head.kernel"), tensors["fc.kernel"].T)


def test_transform_without_shape_transform_reads_data(tmp_path):
    register_migration("Other", 1, 2, {}, transform=lambda name, arr: arr.reshape(-1).astype(np.float64))
    try:
        path = tmp_path / "o.safetensors"
        write_checkpoint(path, {"w": np.ones((2, 2), np.float32)}, {"schema": "Other@1"})
        ckpt = Checkpoint(path)
        assert ckpt.shape("w") == (4,) and ckpt.dtype("w") == "float64"
    finally:
        unregister_migration("Other", 1)


def test_registry_queries(migrations):
    assert latest_version(ARCH) == 3
    assert [m.to_version for m in migration_chain(ARCH, 1)] == [2, 3]
    assert migration_chain(ARCH, 3) == []
    assert latest_version("NoSuchNet") is None
    with pytest.raises(MigrationError, match="already registered"):
        register_migration(ARCH, 1, 2, {})
    with pytest.raises(MigrationError, match="from_version < to_version"):
        register_migration(ARCH, 5, 4, {})
    assert unregister_migration(ARCH, 99) is None


def test_incomplete_chain(tmp_path):
    register_migration("Gappy", 2, 3, {})
    try:
        path = tmp_path / "g.safetensors"
        write_checkpoint(path, {"w": np.ones(1, np.float32)}, {"schema": "Gappy@1"})
        with pytest.raises(MigrationError, match="no migration starts at v1"):
            Checkpoint(path)
        Checkpoint(path, migrate=False)
    finally:
        unregister_migration("Gappy", 2)


def test_colliding_renames(tmp_path):
    register_migration("Clash", 1, 2, {"a": "c", "b": "c"})
    try:
        path = tmp_path / "c.safetensors"
        write_checkpoint(path, {"a": np.ones(1, np.float32), "b": np.ones(1, np.float32)}, {"schema": "Clash@1"})
        with pytest.raises(MigrationError, match="maps both 'a' and 'b' to 'c'"):
            Checkpoint(path)
    finally:
        unregister_migration("Clash", 1)


def test_bad_rename_result(tmp_path):
    register_migration("BadRename", 1, 2, lambda name: 42)
    try:
        path = tmp_path / "b.safetensors"
        write_checkpoint(path, {"a": np.ones(1, np.float32)}, {"schema": "BadRename@1"})
        with pytest.raises(MigrationError, match="non-empty string or None"):
            Checkpoint(path)
    finally:
        unregister_migration("BadRename", 1)
