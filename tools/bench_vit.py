"""Inference throughput of ViTB16 in PyTorch and TensorFlow, side by side (issue 6).

CPU: PyTorch ``ViTB16`` (``scaled_dot_product_attention``, ``torch.inference_mode``) and TensorFlow
``ViTB16`` (the Keras model under ``tf.function``), float32, batch 8, 224x224, with the same weights
(moved through the canonical format). The trials are interleaved (``tools/_bench.measure``: every
runner once per trial, in a random order per trial) so that machine noise hits both alike; a second
PyTorch timing in each trial gives a self-vs-self control ratio, which shows how much of a
difference is noise.

CUDA (when ``torch.cuda.is_available()``): PyTorch ``ViTB16`` in float32, in bfloat16 (autocast) and in
bfloat16 with ``torch.compile``, at ``--gpu-batch`` (default 128).

Usage::

    python tools/bench_vit.py --trials 5
    python tools/bench_vit.py --trials 20 --batch 8 --gpu-batch 128 --skip-cpu
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _bench import measure  # noqa: E402  (the one timer of tools/bench_*.py)


def _median_rate(times: list[float], batch: int) -> float:
    return batch / statistics.median(times)


def _spread(times: list[float]) -> str:
    return f"{min(times):.3f}..{max(times):.3f} s"


def bench_cpu(model_name: str, batch: int, trials: int, warmup: int) -> list[str]:
    import numpy as np
    import tensorflow as tf
    import torch

    import deepvision
    from deepvision.portable import to_backend

    pt_model = deepvision.models.create_model(model_name, backend="pytorch").eval()
    tf_model = to_backend(pt_model, "tensorflow")
    x = np.random.default_rng(0).normal(size=(batch, 224, 224, 3)).astype(np.float32)
    x_pt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    x_tf = tf.constant(x)
    tf_call = tf.function(lambda images: tf_model(images, training=False))

    def run_pt(images: torch.Tensor) -> None:
        with torch.inference_mode():
            pt_model(images)

    def run_tf(images: tf.Tensor) -> None:
        tf_call(images).numpy()  # .numpy() waits for the result

    times = measure({"pt": run_pt, "tf": run_tf, "control": run_pt}, {"pt": x_pt, "tf": x_tf, "control": x_pt},
                    trials, warmup)
    pt_times, tf_times, control = times["pt"], times["tf"], times["control"]
    pt_rate, tf_rate = _median_rate(pt_times, batch), _median_rate(tf_times, batch)
    return [
        f"## CPU inference, {model_name}, batch {batch}, 224x224, float32 ({trials} interleaved trials, "
        f"{warmup} warm-up)",
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), tensorflow {tf.__version__}",
        "",
        "| backend | median img/s | batch time range |",
        "|---|---|---|",
        f"| PyTorch (SDPA, inference_mode) | {pt_rate:.2f} | {_spread(pt_times)} |",
        f"| TensorFlow (Keras, tf.function) | {tf_rate:.2f} | {_spread(tf_times)} |",
        "",
        f"PyTorch / TensorFlow throughput: {pt_rate / tf_rate:.2f}x; "
        f"self-vs-self control (PyTorch / PyTorch again): {pt_rate / _median_rate(control, batch):.2f}x",
    ]


def bench_cuda(model_name: str, batch: int, trials: int, warmup: int) -> list[str]:
    import torch

    import deepvision

    device = torch.device("cuda")
    model = deepvision.models.create_model(model_name, backend="pytorch").eval().to(device)
    x = torch.randn(batch, 3, 224, 224, device=device)

    def timed(fn) -> list[float]:
        # The shared timer; synchronising around each call makes host time the device's time.
        return measure({"run": lambda _: fn()}, {"run": None}, trials, warmup, sync=torch.cuda.synchronize)["run"]

    def fp32() -> None:
        with torch.inference_mode():
            model(x)

    def bf16(net=model) -> None:
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            net(x)

    rows = []
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    rows.append(("float32 (TF32 matmuls)", timed(fp32), None))
    rows.append(("bfloat16 autocast", timed(bf16), None))
    compiled = torch.compile(model)
    start = time.perf_counter()
    bf16(compiled)  # first call compiles
    torch.cuda.synchronize()
    compile_s = time.perf_counter() - start
    rows.append(("bfloat16 autocast + torch.compile", timed(lambda: bf16(compiled)), compile_s))
    lines = [
        f"## CUDA inference, {model_name}, batch {batch}, 224x224 ({trials} trials, {warmup} warm-up)",
        f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}",
        "",
        "| mode | median img/s | batch time range | compile time |",
        "|---|---|---|---|",
    ]
    for label, times, compile_time in rows:
        compile_text = f"{compile_time:.1f} s" if compile_time is not None else "-"
        lines.append(f"| {label} | {_median_rate(times, batch):,.0f} | {_spread(times)} | {compile_text} |")
    base = _median_rate(rows[1][1], batch)
    lines += ["", f"torch.compile speed-up over bfloat16 eager: {_median_rate(rows[2][1], batch) / base:.2f}x"]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViTB16", help="registered ViT variant (default ViTB16)")
    parser.add_argument("--trials", type=int, default=10, help="timed batches per backend/mode")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches first")
    parser.add_argument("--batch", type=int, default=8, help="CPU batch size")
    parser.add_argument("--gpu-batch", type=int, default=128, help="CUDA batch size")
    parser.add_argument("--skip-cpu", action="store_true", help="only the CUDA measurements")
    args = parser.parse_args(argv)

    import torch

    sections = []
    if not args.skip_cpu:
        sections.append(bench_cpu(args.model, args.batch, args.trials, args.warmup))
    if torch.cuda.is_available():
        sections.append(bench_cuda(args.model, args.gpu_batch, args.trials, max(args.warmup, 3)))
    else:
        sections.append(["## CUDA", "no CUDA GPU available (torch.cuda.is_available() is False): skipped"])
    print("\n\n".join("\n".join(s) for s in sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
