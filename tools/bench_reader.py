"""interchange's memory-mapped reader vs safetensors' ``safe_open``, side by side, on a ViTL16 file.

Usage: python tools/bench_reader.py [--architecture ViTL16] [--trials 3] [--keep FILE] [--tasks TASK ...]

Writes a float32 checkpoint with the tensor names and shapes of the architecture's schema
(no framework needed), then, each trial in a fresh process per reader (warm page cache):

* ``open``: open the file and parse the header (interchange checks its checksums' form, not the data).
* ``all tensors``: every tensor as a numpy array, kept in a dict (what an importer or
  ``convert`` holds), plus a CRC-32 of each: interchange verifies its own checksums;
  safe_open has none, so the same ``zlib.crc32`` is added to make the work equal.
* ``into model``: tensor by tensor into preallocated destination arrays (what loading into a
  framework model does), no dict kept.

Reports wall time, peak RSS (``VmHWM``, includes file pages the map touches) and peak
anonymous memory (``RssAnon`` sampled after every tensor: private memory the process
allocated, the part that competes with the model for RAM).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

READERS = ("interchange", "safe_open")
TASKS = ("open", "all tensors", "into model")


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def write_file(path: Path, architecture: str) -> tuple[int, int]:
    """A float32 checkpoint following the schema of ``architecture``; returns (tensors, bytes)."""
    import numpy as np

    import interchange

    schema = interchange.load_schema(architecture)
    shapes = {n: tuple(1 if d is None else d for d in s) for n, s in schema.expected_shapes(schema.config).items()}
    rng = np.random.default_rng(0)
    entries = [
        interchange.TensorEntry(n, s, "float32", lambda s=s: rng.standard_normal(s, dtype=np.float32))
        for n, s in shapes.items()
    ]
    interchange.write_checkpoint(path, entries, {"architecture": architecture, "schema": schema.id,
                                                 "config": schema.config})
    return len(shapes), path.stat().st_size


def run_one(reader: str, task: str, path: str) -> dict:
    """One measurement in this (fresh) process."""
    import numpy as np
    from safetensors import safe_open

    import interchange

    # Imports are outside the timed region: both readers are compared on reading alone.
    peak_anon = _status_kib("RssAnon")
    start = time.perf_counter()
    if reader == "interchange":
        ckpt = interchange.Checkpoint(path, verify=task == "all tensors")
        names = ckpt.names
        get = ckpt.get
        shape_of = ckpt.shape
    else:
        ckpt = safe_open(path, framework="numpy")
        names = list(ckpt.keys())
        get = ckpt.get_tensor
        shape_of = lambda n: tuple(ckpt.get_slice(n).get_shape())  # noqa: E731
    opened = time.perf_counter() - start
    if task == "all tensors":
        held = {}
        for n in names:
            held[n] = get(n)
            if reader == "safe_open":
                zlib.crc32(memoryview(np.ascontiguousarray(held[n])).cast("B"))
            peak_anon = max(peak_anon, _status_kib("RssAnon"))
    elif task == "into model":
        dest = {n: np.empty(shape_of(n), np.float32) for n in names}
        for n in names:
            np.copyto(dest[n], get(n))
            peak_anon = max(peak_anon, _status_kib("RssAnon"))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "open_seconds": opened, "peak_rss_mib": _status_kib("VmHWM") / 1024,
            "peak_anon_mib": peak_anon / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", default="ViTL16")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="reuse (or keep) the checkpoint at this path")
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS), metavar="TASK",
                        help=f"which of {', '.join(repr(t) for t in TASKS)} to run (default: all)")
    parser.add_argument("--one", nargs=3, metavar=("READER", "TASK", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(*args.one)))
        return 0

    tmp = None
    if args.keep is not None:
        path = args.keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-reader-")
        path = Path(tmp.name) / f"{args.architecture}.safetensors"
    try:
        if not path.exists():
            count, size = write_file(path, args.architecture)
        else:
            import interchange

            with interchange.Checkpoint(path, verify=False) as ckpt:
                count, size = len(ckpt), path.stat().st_size
        print(f"{args.architecture}: {count} tensors, {size / 2**20:,.0f} MiB float32; {args.trials} trials, "
              "fresh process each, warm page cache; median (min-max)")
        base = _baseline_anon_mib()
        print(f"(an idle process with numpy and safetensors imported: {base:.0f} MiB anonymous)")
        header = f"{'task':<12} {'reader':<12} {'seconds':>22} {'peak RSS MiB':>14} {'peak anon MiB':>14}"
        print(header + "\n" + "-" * len(header))
        for task in args.tasks:
            for reader in READERS:
                runs = [_subprocess(reader, task, path) for _ in range(args.trials)]
                secs = [r["seconds"] for r in runs]
                print(f"{task:<12} {reader:<12} {statistics.median(secs):>9.3f} ({min(secs):.3f}-{max(secs):.3f}) "
                      f"{statistics.median(r['peak_rss_mib'] for r in runs):>14,.0f} "
                      f"{statistics.median(r['peak_anon_mib'] for r in runs):>14,.0f}")
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


def _subprocess(reader: str, task: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", reader, task, str(path)], check=True,
                         capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _baseline_anon_mib() -> float:
    code = ("import numpy, safetensors.numpy, sys; sys.path.insert(0, sys.argv[1]); import interchange;"
            "print([l for l in open('/proc/self/status') if l.startswith('RssAnon')][0].split()[1])")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT)], check=True, capture_output=True, text=True)
    return int(out.stdout.strip()) / 1024


if __name__ == "__main__":
    sys.exit(main())
