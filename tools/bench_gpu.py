"""GPU throughput of deepvision vs timm in PyTorch (issue 19): bfloat16 autocast, eager and ``torch.compile``.

For a machine with a CUDA GPU (installs nothing; needs torch and timm, e.g. the environment of
tools/make_bench_env.sh)::

    python tools/bench_gpu.py --json gpu.json                     # batch 128, 224x224, 20 trials
    python tools/bench_gpu.py --channels-last --modes infer       # CNNs in channels_last memory
    python tools/bench_gpu.py --device cpu --batch 2 --size 64 --trials 1 --no-compile   # a CPU dry-run

Per model, mode (inference under ``torch.inference_mode()``; one training step: forward,
cross-entropy, backward, AdamW) and compilation (eager; ``torch.compile``): the timm model, a second
identical timm model (the self-vs-self control) and deepvision's model (timm's weights imported and
checked to agree where the importer maps the architecture, see tools/bench_vs_references.py) are timed
in interleaved trials (``tools/_bench.measure``, synchronising the device around each call). Figures:
median of per-trial throughput ratios vs timm (> 1: faster).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import measure, ratio_stats, ratio_table  # noqa: E402  (the one timer of tools/bench_*.py)

GPU_MODELS = ("ViTB16", "ViTL16", "EfficientNetV2S", "ConvNeXtTiny", "ResNet50V2")


def _compile_all(runners: dict[str, Any], first_input: Any, sync: Any) -> dict[str, float]:
    """Seconds of each runner's first call (where ``torch.compile`` compiles), outside the timing."""
    seconds = {}
    for label, run in runners.items():
        sync()
        start = time.perf_counter()
        run(first_input)
        sync()
        seconds[label] = time.perf_counter() - start
    return seconds


def bench_model(name: str, mode: str, compiled: bool, args: argparse.Namespace, device: Any) -> dict[str, Any]:
    """One interleaved comparison; returns the Markdown table and the raw times."""
    import torch
    from bench_vs_references import TIMM_PAIRS, timm_and_ours, torch_infer_runner, torch_train_runner

    pair = TIMM_PAIRS[name]
    reference, control, ours, note = timm_and_ours(pair, args.size, device=str(device))
    models = {f"timm {pair.timm_name}": reference, f"timm {pair.timm_name} (self-vs-self control)": control,
              f"deepvision {name}": ours}
    # timm's benchmark convention: CNNs (not ViTs) and their input in channels_last memory, all alike.
    channels_last = args.channels_last and not pair.is_vit
    if channels_last:
        models = {label: model.to(memory_format=torch.channels_last) for label, model in models.items()}
    dtype = torch.bfloat16 if device.type == "cuda" or args.bf16_on_cpu else None
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else None
    runners = {}
    for label, model in models.items():
        if compiled:
            # Compile the module, not the step: the optimizer step stays eager for both alike.
            model = torch.compile(model)
        if mode == "train":
            runners[label] = torch_train_runner(model, autocast=autocast)
        else:
            runners[label] = torch_infer_runner(model, autocast=autocast)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    first_call_s = _compile_all(runners, x, sync)
    times = measure(runners, dict.fromkeys(runners, x), args.trials, args.warmup, sync=sync)
    reference_label = next(iter(runners))
    title = (f"### {name}, {'one training step (AdamW)' if mode == 'train' else 'inference'}, "
             f"{'torch.compile' if compiled else 'eager'}, {'bf16 autocast' if dtype else 'float32'}, "
             f"batch {args.batch}, {args.size}x{args.size}{', channels_last' if channels_last else ''}")
    first = ", ".join(f"{label}: {s:.1f} s" for label, s in first_call_s.items())
    table = [title, f"_{note}_", f"first call (compilation): {first}", "",
             *ratio_table(times, reference_label, args.batch), ""]
    ratio = ratio_stats(times[reference_label], times[f"deepvision {name}"])
    del runners, models, reference, control, ours
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"model": name, "mode": mode, "compiled": compiled, "channels_last": channels_last, "note": note,
            "times": times, "first_call_s": first_call_s, "ratio_median_q1_q3": ratio, "markdown": "\n".join(table)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (a dry-run)")
    parser.add_argument("--models", default=",".join(GPU_MODELS), help="comma-separated subset")
    parser.add_argument("--modes", default="infer,train", help="infer, train or both (default)")
    parser.add_argument("--batch", type=int, default=128, help="images per batch (default 128)")
    parser.add_argument("--size", type=int, default=224, help="image size (default 224)")
    parser.add_argument("--trials", type=int, default=20, help="interleaved timed trials (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds after the first call (default 3)")
    parser.add_argument("--no-compile", action="store_true", help="eager only (no torch.compile runs)")
    parser.add_argument("--channels-last", action="store_true",
                        help="CNNs and their input in torch.channels_last memory (timm's benchmark convention)")
    parser.add_argument("--bf16-on-cpu", action="store_true", help="bf16 autocast on --device cpu too")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    import torch  # before anything that could load TensorFlow (torchvision crashes after it)

    try:
        import timm
    except ImportError:
        print("timm is not installed: pip install timm (or build tools/make_bench_env.sh)", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU (torch.cuda.is_available() is False); use --device cpu for a dry-run", file=sys.stderr)
        return 2
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # what timm's own benchmark uses for float32 parts
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else f"CPU ({os.cpu_count()} cores)"
    header = {"device": gpu, "torch": torch.__version__, "timm": timm.__version__,
              "cuda": torch.version.cuda, "batch": args.batch, "size": args.size, "trials": args.trials}
    print(f"# deepvision vs timm on {gpu}\n\n" + ", ".join(f"{k} {v}" for k, v in header.items()) + "\n", flush=True)
    results = []
    compile_modes = [False] if args.no_compile else [False, True]
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            for compiled in compile_modes:
                result = bench_model(name, mode, compiled, args, device)
                print(result["markdown"], flush=True)
                results.append(result)
    print("## Summary: deepvision / timm throughput (median of per-trial ratios)\n")
    print("| model | mode | compile | channels_last | ratio | IQR |\n|---|---|---|---|---|---|")
    for r in results:
        mid, q1, q3 = r["ratio_median_q1_q3"]
        flags = " | ".join("yes" if r[key] else "no" for key in ("compiled", "channels_last"))
        print(f"| {r['model']} | {r['mode']} | {flags} | {mid:.3f} | {q1:.3f} .. {q3:.3f} |")
    if args.json:
        payload = {**header, "results": [{k: v for k, v in r.items() if k != "markdown"} for r in results]}
        args.json.write_text(json.dumps(payload, indent=1))
        print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
