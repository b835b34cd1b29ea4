"""Writing and reading: bit-exact round trips, metadata, laziness, safetensors compatibility."""

from __future__ import annotations

import json
import struct
import tempfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import interchange
from interchange import Checkpoint, TensorEntry, read_metadata, write_checkpoint

ALL_DTYPES = ["float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"]


def _np_dtype(name: str) -> np.dtype:
    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


def _random_array(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    dt = _np_dtype(dtype)
    if dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    # Random bit patterns: NaNs with payloads, infinities, denormals all included.
    raw = rng.integers(0, 256, size=int(np.prod(shape)) * dt.itemsize, dtype=np.uint8)
    return raw.view(dt).reshape(shape)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _base_memmap(arr: np.ndarray) -> bool:
    base = arr
    while base is not None:
        if isinstance(base, np.memmap):
            return True
        base = getattr(base, "base", None)
    return False


# database=None: no .hypothesis/ folder in the repository root.
@settings(max_examples=12, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=st.lists(
        st.tuples(st.sampled_from(ALL_DTYPES), st.lists(st.integers(0, 5), min_size=0, max_size=3)),
        min_size=1,
        max_size=6,
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_dtype_round_trips_bit_exactly(specs, seed):
    rng = np.random.default_rng(seed)
    arrays = {f"t{i}.{dtype}": _random_array(rng, dtype, tuple(shape)) for i, (dtype, shape) in enumerate(specs)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.safetensors"
        write_checkpoint(path, arrays, {"architecture": "Rand"})
        with Checkpoint(path) as ckpt:
            assert ckpt.names == list(arrays)
            for name, arr in arrays.items():
                got = ckpt.get(name)
                assert _same_bits(got, arr), name
                assert ckpt.shape(name) == arr.shape
                assert ckpt.dtype(name) == arr.dtype.name
                # Aligned layout: every view starts at a multiple of its itemsize.
                assert got.ctypes.data % got.dtype.itemsize == 0 or got.size == 0


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_each_dtype_fixed(tmp_path, dtype):
    arr = _random_array(np.random.default_rng(1), dtype, (2, 3))
    path = tmp_path / "d.safetensors"
    write_checkpoint(path, [TensorEntry.from_array("x", arr)], {})
    with Checkpoint(path) as ckpt:
        assert _same_bits(ckpt.get("x"), arr)


def test_bfloat16_through_ml_dtypes(tmp_path):
    values = np.array([1.0, -2.5, np.inf, np.nan, 3.140625], dtype=np.float32).astype(ml_dtypes.bfloat16)
    path = tmp_path / "bf.safetensors"
    write_checkpoint(path, {"w": values}, {"architecture": "X"})
    ckpt = Checkpoint(path)
    got = ckpt.get("w")
    assert got.dtype == np.dtype(ml_dtypes.bfloat16)
    assert ckpt.dtype("w") == "bfloat16"
    assert _same_bits(got, values)
    assert ckpt.metadata["dtype"] == "bfloat16"
    raw = json.loads(path.read_bytes()[8 : 8 + struct.unpack("<Q", path.read_bytes()[:8])[0]])
    assert raw["w"]["dtype"] == "BF16"


def test_metadata_round_trip(ckpt_path, sample_meta):
    ckpt = Checkpoint(ckpt_path)
    meta = ckpt.metadata
    for key, value in sample_meta.items():
        assert meta[key] == value, key
    assert meta["format"] == interchange.FORMAT_NAME
    assert meta["format_version"] == 1 and ckpt.format_version == 1
    assert meta["checksum_algorithm"] == "crc32"
    assert set(meta["checksums"]) == set(ckpt.names)
    assert all(len(v) == 8 for v in meta["checksums"].values())
    assert meta["dtype"] == "mixed"  # float32 + float16 + bfloat16
    assert ckpt.architecture == "TinyNet" and ckpt.schema_version == 1
    assert ckpt.config == sample_meta["config"]
    assert ckpt.migrated_from is None
    # Raw values are exactly what safetensors stores: all strings, JSON with sorted keys.
    raw = ckpt.raw_metadata
    assert all(isinstance(v, str) for v in raw.values())
    assert raw["config"] == json.dumps(sample_meta["config"], sort_keys=True)
    assert raw["format_version"] == "1"
    assert read_metadata(ckpt_path) == meta.to_dict()


def test_extra_metadata_keys_keep_their_types(tmp_path):
    path = tmp_path / "m.safetensors"
    meta = {"architecture": "X", "notes": "free text", "epochs": 90, "tags": ["a", "b"], "ignored": None}
    write_checkpoint(path, {"w": np.ones(2, np.float32)}, meta)
    ckpt = Checkpoint(path)
    assert ckpt.metadata["notes"] == "free text"
    assert ckpt.metadata["epochs"] == 90
    assert ckpt.metadata["tags"] == ["a", "b"]
    assert "ignored" not in ckpt.metadata
    # Passing either view of the metadata back to the writer preserves it.
    for source in (ckpt.metadata, ckpt.raw_metadata):
        again = tmp_path / "again.safetensors"
        write_checkpoint(again, ckpt.entries(), source)
        assert Checkpoint(again).metadata.to_dict() == ckpt.metadata.to_dict()


def test_output_is_deterministic(tmp_path, tensors, sample_meta):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    write_checkpoint(a, tensors, sample_meta)
    write_checkpoint(b, dict(tensors), dict(reversed(list(sample_meta.items()))))
    assert a.read_bytes() == b.read_bytes()


def test_header_layout(ckpt_path):
    data = ckpt_path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0
    header = json.loads(data[8 : 8 + n])
    assert list(header)[0] == "__metadata__"
    spans = sorted(tuple(v["data_offsets"]) for k, v in header.items() if k != "__metadata__")
    assert spans[0][0] == 0 and spans[-1][1] == len(data) - 8 - n
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


def test_readable_by_official_safetensors(ckpt_path, tensors):
    from safetensors import deserialize, safe_open
    from safetensors.numpy import load_file

    plain = {k: v for k, v in tensors.items() if v.dtype != np.dtype(ml_dtypes.bfloat16)}
    path = ckpt_path.with_name("plain.safetensors")
    write_checkpoint(path, plain, {"architecture": "TinyNet"})
    loaded = load_file(path)
    assert set(loaded) == set(plain)
    for name, arr in plain.items():
        assert _same_bits(loaded[name], arr)

    # The checksum-patched header of the full (bf16-containing) file is valid too.
    with safe_open(ckpt_path, framework="np") as f:
        assert set(f.keys()) == set(tensors)
        assert f.metadata() == Checkpoint(ckpt_path).raw_metadata
        for name, arr in tensors.items():
            if arr.dtype == np.dtype(ml_dtypes.bfloat16):
                assert f.get_slice(name).get_dtype() == "BF16"
                assert list(f.get_slice(name).get_shape()) == list(arr.shape)
            else:
                assert _same_bits(f.get_tensor(name), arr)
    raw = dict(deserialize(ckpt_path.read_bytes()))
    for name, arr in tensors.items():
        assert bytes(raw[name]["data"]) == arr.tobytes()


def test_get_returns_read_only_memmap_views(ckpt_path, tensors):
    ckpt = Checkpoint(ckpt_path)
    arr = ckpt.get("stem.conv.kernel")
    assert _base_memmap(arr)
    assert not arr.flags.owndata
    assert not arr.flags.writeable
    with pytest.raises(ValueError):
        arr[0, 0, 0, 0] = 1.0
    assert np.array_equal(ckpt["head.kernel"], tensors["head.kernel"])
    # Views survive close(); new reads do not.
    ckpt.close()
    assert float(arr.sum()) == pytest.approx(float(tensors["stem.conv.kernel"].sum()), rel=1e-5)
    with pytest.raises(ValueError, match="closed"):
        ckpt.get("head.bias")


def test_mapping_protocol_and_counts(ckpt_path, tensors):
    with interchange.open_checkpoint(ckpt_path) as ckpt:
        assert len(ckpt) == len(tensors)
        assert list(ckpt) == list(tensors)
        assert "head.bias" in ckpt and "nope" not in ckpt
        assert ckpt.num_parameters() == sum(a.size for a in tensors.values())
        assert "TinyNet" in repr(ckpt)


def test_non_contiguous_and_big_endian_inputs(tmp_path, monkeypatch):
    import interchange.writer as writer

    monkeypatch.setattr(writer, "_CHUNK_BYTES", 64)  # force several slabs
    base = np.arange(600, dtype=np.float32).reshape(20, 30)
    arrays = {
        "transposed": base.T,
        "strided": base[::2, ::3],
        "fortran": np.asfortranarray(base),
        "big_endian": base.astype(">f4"),
        "empty": np.zeros((0, 5), np.float32),
        "scalar": np.float32(2.5),
    }
    path = tmp_path / "nc.safetensors"
    write_checkpoint(path, arrays, {})
    with Checkpoint(path) as ckpt:
        for name, arr in arrays.items():
            got = ckpt.get(name)
            assert got.shape == np.shape(arr)
            assert np.array_equal(got, arr), name


def test_fetch_called_once_in_streaming_order(tmp_path):
    calls: list[str] = []

    def entry(name, arr):
        def fetch():
            calls.append(name)
            return arr

        return TensorEntry(name, arr.shape, arr.dtype.name, fetch)

    entries = [
        entry("a", np.ones(3, np.float16)),
        entry("b", np.ones(3, np.float64)),
        entry("c", np.ones(3, np.float32)),
        entry("d", np.ones(3, np.float64)),
    ]
    path = tmp_path / "s.safetensors"
    write_checkpoint(path, iter(entries), {})
    # Each fetched exactly once; data laid out largest itemsize first, stable otherwise.
    assert calls == ["b", "d", "c", "a"]
    assert Checkpoint(path).names == ["a", "b", "c", "d"]


def test_entries_accept_lists_and_numpy_dtype_objects(tmp_path):
    arr = np.arange(4, dtype=np.int32)
    entry = TensorEntry("x", [4], np.int32, lambda: arr)
    assert entry.shape == (4,) and entry.dtype == "int32"
    write_checkpoint(tmp_path / "x.safetensors", [entry, ("y", np.zeros(2, np.uint8))], {})
    assert Checkpoint(tmp_path / "x.safetensors").names == ["x", "y"]


@pytest.mark.parametrize(
    ("entries", "match"),
    [
        ([("a", np.ones(1)), ("a", np.ones(1))], "more than once"),
        ([("", np.ones(1))], "non-empty"),
        ([("__metadata__", np.ones(1))], "reserved"),
        ([TensorEntry("w", (2, 2), "float32", lambda: np.ones((2, 3), np.float32))], r"'w'.*shape \(2, 3\)"),
        ([TensorEntry("w", (2,), "float32", lambda: np.ones(2, np.float64))], r"'w'.*float64"),
    ],
)
def test_writer_rejects_bad_entries(tmp_path, entries, match):
    path = tmp_path / "bad.safetensors"
    with pytest.raises(ValueError, match=match):
        write_checkpoint(path, entries, {})
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_unstorable_dtype():
    with pytest.raises(ValueError, match="cannot be stored"):
        TensorEntry("s", (2,), "U3", lambda: np.array(["a", "b"]))


@pytest.mark.parametrize(
    ("meta", "error"),
    [
        ({"config": [1, 2]}, TypeError),
        ({"architecture": 3}, TypeError),
        ({"format": "other"}, ValueError),
        ({"format_version": 2}, ValueError),
        ({"schema": "no-version"}, interchange.MetadataError),
        ({"architecture": "A", "schema": "B@1"}, ValueError),
        ({"weird": {1, 2}}, TypeError),
        ({"nan": float("nan")}, TypeError),
    ],
)
def test_writer_rejects_bad_metadata(tmp_path, meta, error):
    with pytest.raises(error):
        write_checkpoint(tmp_path / "m.safetensors", {"w": np.ones(1, np.float32)}, meta)
    assert list(tmp_path.iterdir()) == []


def test_rewrite_in_place_from_own_entries(ckpt_path, tensors):
    # Reading lazily from the file being replaced is safe: the temp file is renamed over it.
    with Checkpoint(ckpt_path) as ckpt:
        write_checkpoint(ckpt_path, ckpt.entries(), ckpt.metadata)
    with Checkpoint(ckpt_path) as again:
        for name, arr in tensors.items():
            assert _same_bits(again.get(name), arr)


def test_empty_checkpoint(tmp_path):
    from safetensors.numpy import load_file

    path = tmp_path / "empty.safetensors"
    write_checkpoint(path, {}, {"architecture": "Nothing"})
    ckpt = Checkpoint(path)
    assert ckpt.names == [] and ckpt.num_parameters() == 0
    assert "dtype" not in ckpt.metadata
    assert load_file(path) == {}


def test_read_metadata_reads_only_the_header(ckpt_path):
    data = bytearray(ckpt_path.read_bytes())
    data[-1] ^= 0xFF  # corrupt the data: read_metadata neither reads nor verifies it
    ckpt_path.write_bytes(bytes(data))
    meta = read_metadata(ckpt_path)
    assert meta["architecture"] == "TinyNet" and meta["config"]["num_classes"] == 10
    with pytest.raises(interchange.DigestMismatchError):
        Checkpoint(ckpt_path)
