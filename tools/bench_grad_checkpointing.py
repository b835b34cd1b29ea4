"""Peak memory of one PyTorch training step with and without gradient checkpointing.

Each measurement runs in a FRESH Python process (``--child``), so the figure is that process's
own high-water mark (``ru_maxrss``), not a previous step's. A child builds the model (classifier,
1000 classes), one SGD optimizer and a batch, records its resident memory (VmRSS) just before the
step, runs one ``forward + loss + backward + optimizer.step()`` in training mode and reports
``ru_maxrss``. The step's activation memory is ``peak - before`` (weights, gradients and the batch
are allocated before; gradients are pre-allocated by a zero step so they count in ``before``).

Usage::

    .venv/bin/python tools/bench_grad_checkpointing.py [--models ViTB16 EfficientNetV2S] [--batch 8] [--size 224]

Prints one row per model: peak RSS and activation memory without and with
``model.set_grad_checkpointing(True)``, and the ratios (checkpointed / plain).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def child(model_name: str, checkpointing: bool, batch: int, size: int, threads: int) -> dict:
    """One training step in this (fresh) process; returns its memory figures in MiB."""
    import torch

    import deepvision

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = deepvision.models.create_model(model_name, backend="pytorch", input_shape=(3, size, size))
    model.train()
    model.set_grad_checkpointing(checkpointing)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, size, size)
    labels = torch.randint(0, 1000, (batch,))
    for p in model.parameters():  # gradients exist before the step (they are not activation memory)
        p.grad = torch.zeros_like(p)
    before = _rss_mib()
    optimizer.zero_grad(set_to_none=False)
    loss = torch.nn.functional.cross_entropy(model(x), labels)
    loss.backward()
    optimizer.step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"before_mib": before, "peak_mib": peak, "activation_mib": peak - before, "loss": float(loss)}


def run_child(model_name: str, checkpointing: bool, batch: int, size: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", model_name, "--batch", str(batch), "--size", str(size),
           "--threads", str(threads)] + (["--checkpointing"] if checkpointing else [])
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["ViTB16", "EfficientNetV2S"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", metavar="MODEL")
    parser.add_argument("--checkpointing", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.checkpointing, args.batch, args.size, args.threads)))
        return
    print(f"One training step, PyTorch CPU, batch {args.batch}, {args.size}x{args.size}, fresh process each "
          f"(max RSS); MiB")
    print("| model | peak plain | peak checkpointed | peak ratio | activations plain | activations "
          "checkpointed | activation ratio | loss equal |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models:
        plain = run_child(name, False, args.batch, args.size, args.threads)
        ckpt = run_child(name, True, args.batch, args.size, args.threads)
        print(f"| {name} | {plain['peak_mib']:.0f} | {ckpt['peak_mib']:.0f} | "
              f"{ckpt['peak_mib'] / plain['peak_mib']:.2f} | {plain['activation_mib']:.0f} | "
              f"{ckpt['activation_mib']:.0f} | **{ckpt['activation_mib'] / plain['activation_mib']:.2f}** | "
              f"{plain['loss'] == ckpt['loss']} |", flush=True)


if __name__ == "__main__":
    main()
