"""Regression tests for hostile headers: each once escaped as a non-InterchangeError.

Found while fuzzing the header parser (tools/fuzz_header.py, see BENCHMARKS.md). Each
input is a structurally plausible safetensors header; before the fix it raised TypeError,
ValueError (numpy's or int()'s digit limit) or RecursionError instead of a clear
InterchangeError. Each test also replays through the fuzz harness's own target, so the
harness and the tests agree on what "handled" means.
"""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path

import numpy as np
import pytest

import interchange
from interchange import (
    Checkpoint,
    FormatVersionError,
    IntegrityError,
    InterchangeError,
    MetadataError,
    NotSafetensorsError,
    read_metadata,
)

OURS = {"format": "deepvision.interchange", "format_version": "1", "checksum_algorithm": "crc32", "checksums": "{}"}
DEEP = "[" * 100_000 + "]" * 100_000  # deeper than the JSON decoder's recursion limit


def _write(path: Path, header: dict, data: bytes = b"") -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


CASES = [
    # (id, header, data, expected error, message fragment)
    ("dtype-not-a-string", {"w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4,
     NotSafetensorsError, "unsupported dtype code"),
    ("more-dims-than-numpy", {"w": {"dtype": "F32", "shape": [1] * 70, "data_offsets": [0, 4]}}, b"\0" * 4,
     NotSafetensorsError, "70 dimensions"),
    ("empty-but-huge-dims", {"w": {"dtype": "F32", "shape": [2**62, 2**62, 0], "data_offsets": [0, 0]}}, b"",
     NotSafetensorsError, "too large"),
    ("dim-above-int64", {"w": {"dtype": "U8", "shape": [2**64, 0], "data_offsets": [0, 0]}}, b"",
     NotSafetensorsError, "too large"),
    ("format-version-5000-digits", {"__metadata__": {**OURS, "format_version": "1" * 5000}}, b"",
     FormatVersionError, "positive integer"),
    ("schema-version-5000-digits", {"__metadata__": {**OURS, "schema": "A@" + "1" * 5000}}, b"",
     MetadataError, "<Architecture>@<version>"),
    ("deeply-nested-checksums", {"__metadata__": {**OURS, "checksums": DEEP}}, b"",
     IntegrityError, "not a JSON object"),
    ("deeply-nested-config", {"__metadata__": {**OURS, "config": DEEP}}, b"",
     MetadataError, "not valid JSON"),
    ("deeply-nested-json-keys", {"__metadata__": {**OURS, "json_keys": DEEP}}, b"",
     MetadataError, "json_keys"),
    ("json-keys-lists-schema", {"__metadata__": {**OURS, "json_keys": '["schema"]', "schema": "1"}}, b"",
     MetadataError, "<Architecture>@<version>"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_header_raises_a_clear_interchange_error(tmp_path, case):
    _, header, data, error, fragment = case
    path = _write(tmp_path / "hostile.safetensors", header, data)
    with pytest.raises(error, match=fragment):
        Checkpoint(path)
    with pytest.raises(InterchangeError):
        Checkpoint(path, allow_foreign=True, verify=False)


def test_json_keys_cannot_turn_a_string_key_into_json(tmp_path):
    # 'architecture' is always a plain string, even when json_keys lists it.
    header = {"__metadata__": {**OURS, "json_keys": '["architecture"]', "architecture": "[1]"}}
    meta = read_metadata(_write(tmp_path / "m.safetensors", header))
    assert meta["architecture"] == "[1]"


def test_valid_edge_shapes_still_load(tmp_path):
    # The new limits refuse nothing real: 32 dimensions, and empty tensors with large dimensions.
    header = {
        "deep": {"dtype": "F32", "shape": [1] * 32, "data_offsets": [0, 4]},
        "empty": {"dtype": "F32", "shape": [2**40, 0], "data_offsets": [4, 4]},
    }
    with Checkpoint(_write(tmp_path / "edge.safetensors", header, b"\0" * 4), allow_foreign=True) as ckpt:
        assert ckpt["deep"].shape == (1,) * 32
        assert ckpt["empty"].shape == (2**40, 0)


def _fuzz_target(path: Path):
    spec = importlib.util.spec_from_file_location(
        "fuzz_header", Path(__file__).resolve().parents[2] / "tools" / "fuzz_header.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_target(path, interchange), module


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_fuzz_harness_accepts_the_fixed_cases(tmp_path, case):
    one_input, module = _fuzz_target(tmp_path / "input.safetensors")
    _, header, data, _, _ = case
    raw = json.dumps(header).encode()
    one_input(b"\x00" + raw + module.SEPARATOR + data)  # raises if anything but InterchangeError escapes
    one_input(b"\x01" + struct.pack("<Q", len(raw)) + raw + data)


def test_fuzz_harness_reads_its_seeds(tmp_path):
    one_input, module = _fuzz_target(tmp_path / "input.safetensors")
    module.write_seeds(tmp_path / "corpus", interchange)
    seeds = sorted((tmp_path / "corpus").iterdir())
    assert len(seeds) >= 8
    for seed in seeds:
        one_input(seed.read_bytes())
    # The split-mode seeds rebuild the original, valid files.
    rebuilt = module._file_bytes((tmp_path / "corpus" / "split0").read_bytes())
    assert rebuilt == (tmp_path / "corpus" / "raw0").read_bytes()[1:]
    with Checkpoint(_write_bytes(tmp_path / "ok.safetensors", rebuilt)) as ckpt:
        assert np.array_equal(ckpt["conv.kernel"], np.arange(24, dtype=np.float32).reshape(2, 3, 4))


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
