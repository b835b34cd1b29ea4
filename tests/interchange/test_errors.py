"""Every error class, triggered by a crafted or damaged file; messages say what to do."""

from __future__ import annotations

import json
import pickle
import struct
import zipfile

import numpy as np
import pytest

import interchange
from interchange import (
    Checkpoint,
    DigestMismatchError,
    ForeignCheckpointError,
    FormatVersionError,
    HeaderTooLargeError,
    IntegrityError,
    InterchangeError,
    MetadataError,
    MissingTensorError,
    NotSafetensorsError,
    TruncatedFileError,
    read_metadata,
)


def _header_len(path) -> int:
    return struct.unpack("<Q", path.read_bytes()[:8])[0]


def test_error_hierarchy():
    import interchange.errors as errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, InterchangeError)
        assert getattr(interchange, name) is cls


# ------------------------------------------------------------------ not safetensors


def test_too_short(tmp_path):
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"\x01\x02\x03")
    with pytest.raises(NotSafetensorsError, match="fewer than 8"):
        Checkpoint(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    with pytest.raises(NotSafetensorsError):
        Checkpoint(path)


def test_garbage_text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are not the weights you are looking for\n" * 3)
    with pytest.raises(NotSafetensorsError, match="deepvision convert"):
        Checkpoint(path)


def test_hdf5_file_is_recognised(tmp_path):
    path = tmp_path / "weights.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(NotSafetensorsError, match="HDF5") as info:
        Checkpoint(path)
    assert not isinstance(info.value, HeaderTooLargeError)
    assert "deepvision convert" in str(info.value)


def test_pytorch_zip_file_is_recognised(tmp_path):
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", b"x" * 64)
    with pytest.raises(NotSafetensorsError, match="zip archive.*deepvision convert"):
        Checkpoint(path)


def test_pickle_file_is_recognised(tmp_path):
    path = tmp_path / "legacy.pt"
    path.write_bytes(pickle.dumps({"w": list(range(50))}, protocol=2))
    with pytest.raises(NotSafetensorsError, match="pickle"):
        Checkpoint(path)


def test_huge_header_length(tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", interchange.MAX_HEADER_BYTES + 1) + b"{}      ")
    with pytest.raises(HeaderTooLargeError, match="limit"):
        Checkpoint(path)
    path.write_bytes(struct.pack("<Q", 2**63) + b"{}")
    with pytest.raises(HeaderTooLargeError):
        read_metadata(path)
    with pytest.raises(NotSafetensorsError):  # what a caller that checks for "not safetensors" catches
        Checkpoint(path)


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (b"[1, 2, 3]", "not an object"),
        (b'"just a string"', "not an object"),
        (b"{not json at all", "not UTF-8 JSON"),
        (b'{"a": "\xff\xfe"}', "not UTF-8 JSON"),
        (b'{"__metadata__": {"k": 1}}', "strings to strings"),
        (b'{"__metadata__": {}, "__metadata__": {}}', "repeats the key"),
        (b'{"w": {"dtype": "F32"}}', "lacks dtype/shape/data_offsets"),
    ],
)
def test_malformed_headers(tmp_path, header, match):
    path = tmp_path / "bad.safetensors"
    header += b" " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(NotSafetensorsError, match=match):
        Checkpoint(path)


def _edit(name, key, value):
    def edit(header):
        header[name][key] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (_edit("a", "dtype", "F33"), "unsupported dtype code 'F33'"),
        (_edit("a", "shape", [2, -1]), "invalid shape"),
        (_edit("a", "shape", [2, "x"]), "invalid shape"),
        (_edit("a", "data_offsets", [8, 4]), "invalid data_offsets"),
        (_edit("a", "data_offsets", [0]), "invalid data_offsets"),
        (_edit("b", "data_offsets", [20, 36]), "leaves a gap"),
        (_edit("b", "data_offsets", [12, 28]), "overlaps"),
        (_edit("a", "shape", [3]), "needs 12 bytes but data_offsets span 16"),
    ],
)
def test_bad_tensor_entries(tmp_path, craft, edit, match):
    path = craft(
        tmp_path / "e.safetensors",
        {"a": np.ones(4, np.float32), "b": np.ones(4, np.float32)},
        header_edit=edit,
    )
    with pytest.raises(NotSafetensorsError, match=match):
        Checkpoint(path)


def test_trailing_bytes(tmp_path, craft):
    path = craft(tmp_path / "t.safetensors", {"a": np.ones(4, np.float32)}, tail=b"junk")
    with pytest.raises(NotSafetensorsError, match="4 unexpected bytes"):
        Checkpoint(path)


# ------------------------------------------------------------------ truncation


def test_truncated_data(ckpt_path):
    data = ckpt_path.read_bytes()
    ckpt_path.write_bytes(data[:-5])
    with pytest.raises(TruncatedFileError, match="5 bytes missing") as info:
        Checkpoint(ckpt_path)
    assert "re-download" in str(info.value).lower()


def test_truncated_header(ckpt_path):
    data = ckpt_path.read_bytes()
    ckpt_path.write_bytes(data[: 8 + _header_len(ckpt_path) // 2])
    with pytest.raises(TruncatedFileError, match="incomplete"):
        Checkpoint(ckpt_path)
    with pytest.raises(TruncatedFileError):
        read_metadata(ckpt_path)


# ------------------------------------------------------------------ integrity


def _flip_byte_of(path, name, index=0):
    ckpt = Checkpoint(path, verify=False)
    begin = ckpt._header.data_start + ckpt._header.tensors[name].begin
    ckpt.close()
    data = bytearray(path.read_bytes())
    data[begin + index] ^= 0x01
    path.write_bytes(bytes(data))


def test_flipped_byte_is_detected(ckpt_path):
    _flip_byte_of(ckpt_path, "head.kernel", 5)
    with pytest.raises(DigestMismatchError, match="head.kernel") as info:
        Checkpoint(ckpt_path)
    assert info.value.corrupted == ["head.kernel"]
    assert "corrupt" in str(info.value) and "re-export" in str(info.value)
    with pytest.raises(IntegrityError):  # what a caller that checks integrity in general catches
        Checkpoint(ckpt_path)


def test_every_corrupted_tensor_is_listed(ckpt_path):
    _flip_byte_of(ckpt_path, "head.kernel")
    _flip_byte_of(ckpt_path, "stem.conv.kernel")
    ckpt = Checkpoint(ckpt_path, verify=False)  # lazy: opens fine
    ckpt.verify(["head.bias", "step"])  # untouched tensors verify
    with pytest.raises(DigestMismatchError) as info:
        ckpt.verify()
    assert sorted(info.value.corrupted) == ["head.kernel", "stem.conv.kernel"]
    with pytest.raises(MissingTensorError):
        ckpt.verify(["not.there"])


@pytest.mark.parametrize(
    ("meta", "match"),
    [
        ({"checksums": "{}"}, "no checksum for"),
        ({"checksum_algorithm": "md5"}, "md5"),
        ({"checksums": '{"a": "xyz", "ghost": "00000000"}'}, "malformed checksums"),
        ({"checksums": "[1]"}, "not a JSON object"),
    ],
)
def test_bad_checksum_metadata(tmp_path, craft, meta, match):
    path = craft(tmp_path / "c.safetensors", {"a": np.ones(2, np.float32)}, meta)
    with pytest.raises(IntegrityError, match=match):
        Checkpoint(path)


def test_missing_checksums(tmp_path, craft):
    path = craft(tmp_path / "c.safetensors", {"a": np.ones(2, np.float32)}, checksums=False)
    with pytest.raises(IntegrityError, match="no checksums"):
        Checkpoint(path, verify=False)


# ------------------------------------------------------------------ format identity


def test_foreign_safetensors(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "timm.safetensors"
    weights = {"patch_embed.proj.weight": np.ones((4, 3, 2, 2), np.float32), "cls_token": np.zeros((1, 1, 4), np.float32)}
    save_file(weights, path)
    with pytest.raises(ForeignCheckpointError, match="deepvision convert --from timm"):
        Checkpoint(path)
    with pytest.raises(ForeignCheckpointError):
        read_metadata(path)

    ckpt = Checkpoint(path, allow_foreign=True)
    assert ckpt.is_foreign and ckpt.format_version is None
    assert ckpt.architecture is None and ckpt.config is None and ckpt.schema_version is None
    assert set(ckpt.names) == set(weights)
    assert np.array_equal(ckpt.get("patch_embed.proj.weight"), weights["patch_embed.proj.weight"])
    with pytest.raises(IntegrityError, match="no checksums"):
        ckpt.verify()
    assert read_metadata(path, allow_foreign=True) == {}


def test_other_format_name(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": np.ones(2, np.float32)}, path, metadata={"format": "pt", "config": "not json"})
    with pytest.raises(ForeignCheckpointError, match="'pt'"):
        Checkpoint(path)
    # Foreign metadata is not interpreted, so a non-JSON 'config' is fine.
    assert Checkpoint(path, allow_foreign=True).metadata["config"] == "not json"


def test_newer_format_version(tmp_path, craft):
    path = craft(tmp_path / "v99.safetensors", {"a": np.ones(2, np.float32)}, {"format_version": "99"})
    with pytest.raises(FormatVersionError, match="upgrade deepvision-toolkit"):
        Checkpoint(path)
    with pytest.raises(FormatVersionError):
        read_metadata(path)


@pytest.mark.parametrize("version", ["abc", "0", "-1", "1.0", ""])
def test_invalid_format_version(tmp_path, craft, version):
    path = craft(tmp_path / "v.safetensors", {"a": np.ones(2, np.float32)}, {"format_version": version})
    with pytest.raises(FormatVersionError, match="positive integer"):
        Checkpoint(path)


@pytest.mark.parametrize(
    ("meta", "match"),
    [
        ({"config": "[1, 2]"}, "'config' must be a JSON object"),
        ({"config": "{oops"}, "'config' is not valid JSON"),
        ({"schema": "Foo"}, "'<Architecture>@<version>'"),
        ({"architecture": "Bar", "schema": "Foo@1"}, "inconsistent"),
        ({"json_keys": "nope"}, "json_keys"),
    ],
)
def test_invalid_known_metadata(tmp_path, craft, meta, match):
    path = craft(tmp_path / "m.safetensors", {"a": np.ones(2, np.float32)}, meta)
    with pytest.raises(MetadataError, match=match):
        Checkpoint(path)


# ------------------------------------------------------------------ missing tensors


def test_missing_tensor_suggests_close_names(ckpt_path):
    ckpt = Checkpoint(ckpt_path)
    with pytest.raises(MissingTensorError, match="head.kernel") as info:
        ckpt.get("head.kernal")
    assert isinstance(info.value, KeyError)
    assert info.value.name == "head.kernal"
    assert str(info.value).startswith(str(ckpt_path))  # plain message, not KeyError's repr
    with pytest.raises(KeyError):
        ckpt["nothing.like.it"]
    with pytest.raises(MissingTensorError):
        ckpt.shape("nothing")


def test_crafted_file_is_otherwise_valid(tmp_path, craft):
    # Guards the helper itself: without edits the crafted file opens and verifies.
    path = craft(tmp_path / "ok.safetensors", {"a": np.arange(3, dtype=np.int32)}, {"architecture": "A", "x": json.dumps(1)})
    assert Checkpoint(path).get("a").tolist() == [0, 1, 2]
