"""Coverage-guided fuzzing of the interchange header parser and reader (atheris / libFuzzer).

Every input is written to a file on a RAM disk and opened the way users open files:
``read_metadata`` and ``Checkpoint`` (strict, then ``allow_foreign=True``), then every
tensor's shape, dtype and data are read. The only exceptions allowed are
``interchange.InterchangeError`` subclasses; anything else (TypeError, OverflowError,
RecursionError, a numpy ValueError, ...) is a crash and stops the run with the input saved.

Inputs have two modes (first byte): odd = the bytes are the whole file; even = the
rest is ``header JSON [0xFF 0xFE data]`` and the harness prepends the correct 8-byte
length, so the fuzzer spends its time inside the JSON checks rather than on the
length field. A seed corpus of valid checkpoints (written with ``write_checkpoint``)
and a dictionary of header tokens start the search.

Usage (one process; ``-max_total_time`` in seconds)::

    .venv/bin/python tools/fuzz_header.py -max_total_time=600 -print_final_stats=1
    .venv/bin/python tools/fuzz_header.py --replay CORPUS_DIR   # re-run a corpus without atheris

Requires ``atheris``: ``.venv/bin/python -m pip install -r requirements/fuzz.txt`` (or the ``fuzz`` extra).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import tempfile
import zlib
from pathlib import Path

# Import the libraries the parser uses *before* instrumentation, so coverage
# feedback comes from interchange's own code rather than from numpy's.
import ml_dtypes  # noqa: F401
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEPARATOR = b"\xff\xfe"  # never valid inside UTF-8 JSON
# Working corpus (grows while fuzzing); outside the checkout so nothing is committed by accident.
CORPUS_DIR = Path(tempfile.gettempdir()) / "deepvision-fuzz-header-corpus"
DICT_TOKENS = [
    '"__metadata__"', '"dtype"', '"shape"', '"data_offsets"', '"format"', '"deepvision.interchange"',
    '"format_version"', '"1"', '"2"', '"checksums"', '"checksum_algorithm"', '"crc32"', '"json_keys"',
    '"schema"', '"architecture"', '"config"', '"ResNet50V2@1"', '"F32"', '"BF16"', '"F8_E4M3"', '"I64"',
    '"BOOL"', '"00000000"', "[0,4]", "[]", "[1]", "{}", "null", "true", "-1", "1e400", '"\\u0000"',
    "[[[[[[[[", "]]]]]]]]", "99999999999999999999", '"A@1"',
]


def _file_bytes(data: bytes) -> bytes:
    if not data:
        return b""
    mode, rest = data[0], data[1:]
    if mode & 1:
        return rest
    if mode & 2:
        return _structured(_Choices(rest))
    header, _, payload = rest.partition(SEPARATOR)
    return struct.pack("<Q", len(header)) + header + payload


class _Choices:
    """Turns fuzz bytes into decisions (like atheris.FuzzedDataProvider, but usable without atheris)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def pick(self, n: int) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1] % n

    def one(self, options: list):
        return options[self.pick(len(options))]

    def integer(self) -> int:
        # Small, boundary, huge (past int64 and past int()'s 4300-digit limit) and negative values.
        return self.one([0, 1, 2, 3, 4, 7, 8, -1, 2**31, 2**32, 2**62, 2**63, 2**64, 10**4000, self.pick(256)])


_CODES = ["F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "C64", "I64", "I32", "I8", "U8", "BOOL", "F4", ""]
_NAMES = ["conv.kernel", "conv.bias", "steps", "w", "__metadata__", "", "a.b.c"]


def _json_value(c: _Choices, depth: int = 0):
    kind = c.pick(9) if depth < 3 else c.pick(3)
    if kind == 0:
        return c.integer()
    if kind == 1:
        return c.one(["", "x", "F32", "1", "crc32", "deepvision.interchange", "ResNet50V2@1"])
    if kind == 2:
        return None
    if kind == 3:
        return [_json_value(c, depth + 1) for _ in range(c.pick(4))]
    if kind == 4:
        return {c.one(_NAMES + ["dtype", "shape"]): _json_value(c, depth + 1) for _ in range(c.pick(4))}
    if kind == 5:
        return c.one([True, False, 1.5, -0.0, 1e308])
    if kind == 6:
        return "[" * 3000 + "]" * 3000  # deeper than json's recursion limit when parsed again
    if kind == 7:
        return "1" * c.one([19, 4301, 5000])
    return json.dumps(_json_value(c, depth + 1))


def _meta_value(c: _Choices, key: str, good: str) -> str:
    choice = c.pick(4)
    if choice == 0:
        return good
    if choice == 1:
        return c.one(["", "0", "2", "-1", "1" * 5000, "01", "١", "[]", "{}", "null", '"x"', "A@1"])
    value = _json_value(c)
    return value if isinstance(value, str) else json.dumps(value)


def _structured(c: _Choices) -> bytes:
    """A plausible file built from decisions: tiled tensors, matching checksums, hostile metadata values."""
    tensors, payload = {}, b""
    for _ in range(c.pick(5)):
        name = c.one(_NAMES)
        code = c.one(_CODES)
        dims = [c.one([0, 1, 2, 3, c.integer()]) for _ in range(c.one([0, 1, 2, 33, 70]) if c.pick(4) == 0 else c.pick(4))]
        try:
            itemsize = np.dtype(interchange_dtypes().get(code, "uint8")).itemsize
            nbytes = int(np.prod([d for d in dims if d >= 0], dtype=object)) * itemsize
        except (TypeError, ValueError, OverflowError):
            nbytes = 0
        nbytes = nbytes if 0 <= nbytes <= 4096 else c.pick(64)
        entry = {"dtype": code, "shape": dims, "data_offsets": [len(payload), len(payload) + nbytes]}
        if c.pick(8) == 0:
            entry[c.one(["dtype", "shape", "data_offsets"])] = _json_value(c)
        tensors[name] = entry
        payload += bytes(c.pick(256) for _ in range(min(nbytes, 64))) + b"\0" * max(0, nbytes - 64)
    crcs = {n: f"{zlib.crc32(payload[e['data_offsets'][0]:e['data_offsets'][1]]) if isinstance(e.get('data_offsets'), list) and len(e['data_offsets']) == 2 and all(isinstance(o, int) for o in e['data_offsets']) else 0:08x}" for n, e in tensors.items()}
    good = {"format": "deepvision.interchange", "format_version": "1", "checksum_algorithm": "crc32",
            "checksums": json.dumps(crcs), "schema": "ResNet50V2@1", "architecture": "ResNet50V2",
            "config": '{"classes": 10}', "json_keys": '["extra"]', "extra": "[1, 2]", "note": "x"}
    meta = {k: _meta_value(c, k, v) for k, v in good.items() if c.pick(5)}
    header = {"__metadata__": meta, **tensors} if c.pick(6) else tensors
    if c.pick(10) == 0:
        header["__metadata__"] = _json_value(c)
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + payload


def interchange_dtypes() -> dict[str, str]:
    """safetensors dtype code -> numpy dtype name, without importing interchange (the harness's own table)."""
    return {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "float16", "F8_E4M3": "uint8",
            "F8_E5M2": "uint8", "C64": "complex64", "I64": "int64", "I32": "int32", "I8": "int8", "U8": "uint8",
            "BOOL": "bool"}


def register_fuzz_migrations(interchange: object) -> None:
    """Migrations for the seed architecture, so migrated views (renames, transforms) are fuzzed too."""
    interchange.register_migration("ResNet50V2", 1, 2, lambda n: None if n == "steps" else n.replace("conv.", "c."))
    interchange.register_migration(
        "ResNet50V2", 2, 3, lambda n: n, transform=lambda n, a: a.reshape(-1) if n == "c.kernel" else a,
        shape_transform=lambda n, s: (int(np.prod(s)),) if n == "c.kernel" else s,
    )


def make_target(path: Path, interchange: object):
    """The fuzz target: one input -> one file -> every public way of reading it."""

    def one_input(data: bytes) -> None:
        path.write_bytes(_file_bytes(data))
        try:
            interchange.read_metadata(path, allow_foreign=True)
        except interchange.InterchangeError:
            pass
        for foreign in (False, True):
            try:
                with interchange.Checkpoint(path, verify=True, allow_foreign=foreign) as ckpt:
                    repr(ckpt)
                    dict(ckpt.metadata)
                    ckpt.num_parameters()
                    for name in ckpt.names:
                        ckpt.shape(name)
                        ckpt.dtype(name)
                        np.asarray(ckpt[name]).sum()
            except interchange.InterchangeError:
                pass

    return one_input


def write_seeds(corpus: Path, interchange: object) -> None:
    """Valid and nearly valid files (in both input modes) to start from."""
    corpus.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fuzzseed-") as work:
        _write_seeds(corpus, Path(work), interchange)


def _write_seeds(corpus: Path, work: Path, interchange: object) -> None:
    arrays = {
        "conv.kernel": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        "conv.bias": np.zeros((0,), np.float32),
        "embed": np.ones((2, 2), ml_dtypes.bfloat16),
        "steps": np.array([3], np.int64),
        "mask": np.array([True, False]),
    }
    metas = [
        {"architecture": "ResNet50V2", "schema": "ResNet50V2@1", "config": {"classes": 10}},
        {"config": {"a": [1, 2, {"b": None}]}, "note": "free text", "extra": [1, 2]},
        {},
    ]
    for i, meta in enumerate(metas):
        f = work / f"seed{i}.safetensors"
        interchange.write_checkpoint(f, arrays if i < 2 else {"x": np.zeros(3, np.float16)}, meta)
        raw = f.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        (corpus / f"raw{i}").write_bytes(b"\x01" + raw)
        (corpus / f"split{i}").write_bytes(b"\x00" + raw[8 : 8 + n] + SEPARATOR + raw[8 + n :])
    foreign = b'{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    (corpus / "foreign").write_bytes(b"\x00" + foreign + SEPARATOR + b"\x00" * 4)
    (corpus / "hdf5").write_bytes(b"\x01\x89HDF\r\n\x1a\n" + b"\x00" * 32)
    for i in range(8):  # structured mode: the bytes are decisions
        (corpus / f"structured{i}").write_bytes(b"\x02" + bytes((i * 37 + k * 11) % 256 for k in range(200)))


def main(argv: list[str]) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="fuzzheader-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    target_file = workdir / "input.safetensors"
    if len(argv) > 2 and argv[1] == "--replay":
        import interchange

        register_fuzz_migrations(interchange)
        one = make_target(target_file, interchange)
        files = sorted(p for p in Path(argv[2]).iterdir() if p.is_file())
        for p in files:
            one(p.read_bytes())
        print(f"replayed {len(files)} inputs without an unexpected exception")
        return

    try:
        import atheris
    except ImportError:
        sys.exit("tools/fuzz_header.py needs atheris: .venv/bin/python -m pip install -r requirements/fuzz.txt")

    with atheris.instrument_imports(include=["interchange"]):
        import interchange

    write_seeds(CORPUS_DIR, interchange)
    register_fuzz_migrations(interchange)
    dict_file = workdir / "header.dict"
    dict_file.write_text("\n".join('"' + tok.replace("\\", "\\\\").replace('"', '\\"') + '"' for tok in DICT_TOKENS))
    artifacts = Path(tempfile.gettempdir()) / "deepvision-fuzz-header-crashes"
    artifacts.mkdir(exist_ok=True)
    args = [argv[0], f"-dict={dict_file}", "-max_len=4096", "-timeout=10", "-rss_limit_mb=1024",
            f"-artifact_prefix={artifacts}/", *argv[1:]]
    if not any(not a.startswith("-") for a in argv[1:]):
        args.append(str(CORPUS_DIR))
    atheris.Setup(args, make_target(target_file, interchange))
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
