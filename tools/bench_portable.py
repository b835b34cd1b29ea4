"""Benchmark: save_portable + load_portable vs a raw safetensors write + read of the same tensors.

Targets (issue: foundation): wall time at most 1.5x the raw safetensors round trip, measured in the
same run; extra anonymous memory during save or load at most 10% of the model's size.

Usage: python tools/bench_portable.py [--model ViTL16] [--backend pytorch|tensorflow] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path


def anon_bytes() -> int:
    """Anonymous resident memory of this process (page cache of mapped files excluded)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


class PeakAnon:
    """Samples RssAnon every millisecond in a thread; ``delta`` is the peak above the start."""

    def __enter__(self):
        self.start = self.peak = anon_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, anon_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, anon_bytes())
        self.delta = self.peak - self.start


def drop_cache(path: Path) -> None:
    # Keep page-cache effects the same for both sides: evict the file after each write.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViTL16")
    parser.add_argument("--backend", default="pytorch", choices=["pytorch", "tensorflow"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import numpy as np
    import safetensors.numpy

    import deepvision
    from deepvision.adapters import iter_slots

    model = deepvision.models.create_model(args.model, backend=args.backend)
    if args.backend == "pytorch":
        model.eval()
    slots = list(iter_slots(model))
    size = sum(int(np.prod(s.shape)) * 4 for s in slots)
    print(f"{args.model} ({args.backend}): {len(slots)} tensors, {size / 1e9:.2f} GB float32")

    # The raw baseline gets the tensors as they sit in the framework (no layout change), read once.
    raw_tensors = {s.name: np.ascontiguousarray(s.to_canonical(s.variable)) for s in slots}
    raw_bytes = sum(a.nbytes for a in raw_tensors.values())
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        raw_path, ours_path = Path(tmp) / "raw.safetensors", Path(tmp) / "ours.safetensors"
        raw_times, ours_times, save_mem, load_mem = [], [], [], []
        # One untimed round first: the framework's one-time set-up (kernels, thread pools) is not a copy.
        with PeakAnon() as warm_save:
            deepvision.save_portable(model, ours_path)
        with PeakAnon() as warm_load:
            deepvision.load_portable(ours_path, model=model)
        print(f"  warm-up round: extra memory save {warm_save.delta / 1e6:.0f} MB, load {warm_load.delta / 1e6:.0f} MB "
              "(includes one-time framework set-up; not counted)")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            safetensors.numpy.save_file(raw_tensors, raw_path)
            loaded = safetensors.numpy.load_file(raw_path)
            raw_times.append(time.perf_counter() - t0)
            del loaded
            drop_cache(raw_path)

            t0 = time.perf_counter()
            with PeakAnon() as mem:
                deepvision.save_portable(model, ours_path)
            t1 = time.perf_counter()
            save_mem.append(mem.delta)
            with PeakAnon() as mem:
                deepvision.load_portable(ours_path, model=model)
            ours_times.append(time.perf_counter() - t0)
            load_mem.append(mem.delta)
            print(f"  trial: raw {raw_times[-1]:.2f} s, ours {ours_times[-1]:.2f} s "
                  f"(save {t1 - t0:.2f} s, load {ours_times[-1] - (t1 - t0):.2f} s; "
                  f"extra memory save {save_mem[-1] / 1e6:.0f} MB, load {load_mem[-1] / 1e6:.0f} MB)")
            drop_cache(ours_path)
    raw, ours = statistics.median(raw_times), statistics.median(ours_times)
    print(f"raw safetensors write+read: {raw:.2f} s   save_portable+load_portable: {ours:.2f} s   "
          f"ratio {ours / raw:.2f} (target <= 1.50)")
    print(f"peak extra anonymous memory: save {max(save_mem) / 1e6:.0f} MB ({max(save_mem) / raw_bytes:.1%}), "
          f"load {max(load_mem) / 1e6:.0f} MB ({max(load_mem) / raw_bytes:.1%}) of a {raw_bytes / 1e6:.0f} MB model "
          "(target <= 10%)")


if __name__ == "__main__":
    main()
