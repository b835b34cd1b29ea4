"""Throughput of deepvision against timm (PyTorch) and keras.applications (TensorFlow), issue 19.

Run it in the environment of ``tools/make_bench_env.sh`` (timm, TensorFlow and the project together)::

    bash tools/make_bench_env.sh /work/benchenv
    /work/benchenv/bin/python tools/bench_vs_references.py                       # everything, 20 trials
    /work/benchenv/bin/python tools/bench_vs_references.py --sections pt-infer --models ViTS16 --trials 30
    /work/benchenv/bin/python tools/bench_vs_references.py --sections pt-infer,pt-train --channels-last

Sections (each a Markdown table per model and batch size; trials interleaved by ``tools/_bench.measure``,
figures are medians of per-trial throughput ratios against the reference, > 1: faster than it, and
every table has a self-vs-self control, a second identical reference model):

- ``pt-infer``: PyTorch eval under ``torch.inference_mode()`` vs ``timm.create_model(name, pretrained=False)``.
  Where deepvision's timm importer maps the architecture, our model gets the timm model's weights
  through it and both must give the same logits (relative error <= 1e-3) before timing.
- ``pt-train``: one training step (forward, cross-entropy, backward, AdamW step) vs timm.
- ``tf-infer``: Keras under ``tf.function`` vs keras.applications (``weights=None``; the builders of
  tools/bench_efficientnetv2.py, bench_convnext.py and bench_resnetv2.py, which check the numbers),
  and ViTS16/ViTB16 TensorFlow vs PyTorch (keras.applications has no ViT).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import measure, ratio_stats, ratio_table  # noqa: E402  (the one timer of tools/bench_*.py)


@dataclass(frozen=True)
class Pair:
    """A deepvision model and the timm model timed beside it."""

    ours: str
    timm_name: str
    same_network: bool = True  # False: a different network, reported beside ours, never checked

    @property
    def is_vit(self) -> bool:
        """A Vision Transformer: takes timm's ``img_size``, and is left out of channels_last timing."""
        return self.ours.startswith("ViT")


TIMM_PAIRS = {
    "ViTS16": Pair("ViTS16", "vit_small_patch16_224"),
    "ViTB16": Pair("ViTB16", "vit_base_patch16_224"),
    "ViTL16": Pair("ViTL16", "vit_large_patch16_224"),
    "EfficientNetV2B0": Pair("EfficientNetV2B0", "tf_efficientnetv2_b0"),
    "EfficientNetV2S": Pair("EfficientNetV2S", "tf_efficientnetv2_s"),
    "ConvNeXtTiny": Pair("ConvNeXtTiny", "convnext_tiny"),
    # timm's resnetv2_50 is not keras' ResNet50V2 (other stem and pre-activation layout): no importer.
    "ResNet50V2": Pair("ResNet50V2", "resnetv2_50", same_network=False),
}
PT_INFER_MODELS = ("ViTS16", "ViTB16", "EfficientNetV2B0", "EfficientNetV2S", "ConvNeXtTiny", "ResNet50V2")
PT_TRAIN_MODELS = ("ViTS16", "EfficientNetV2B0")
TF_MODELS = ("EfficientNetV2B0", "EfficientNetV2S", "ConvNeXtTiny", "ResNet50V2", "ViTS16", "ViTB16")
SECTIONS = ("pt-infer", "pt-train", "tf-infer")


def import_torch_stack() -> tuple[Any, Any]:
    """torch and timm (None if missing), imported before TensorFlow: torchvision (which timm imports)
    segfaults when it is loaded after TensorFlow."""
    import torch

    try:
        import timm
    except ImportError:
        timm = None
    return torch, timm


def timm_and_ours(pair: Pair, size: int, device: str = "cpu") -> tuple[Any, Any, Any, str]:
    """The timm model, its control copy and our model (eval mode, on ``device``), and a note on how
    they relate: the same weights checked to agree, or why not."""
    import timm
    import torch

    import deepvision
    from deepvision import testing

    kwargs = {"img_size": size} if pair.is_vit else {}
    torch.manual_seed(0)
    reference = timm.create_model(pair.timm_name, pretrained=False, **kwargs).eval()
    control = timm.create_model(pair.timm_name, pretrained=False, **kwargs).eval()
    control.load_state_dict(reference.state_dict())
    ours, note = None, ""
    if pair.same_network:
        try:
            ours = _import_weights(reference, pair.timm_name, size)
        except Exception as error:  # noqa: BLE001  (reported, then the model is timed with its own init)
            note = f"timm weights could not be imported ({type(error).__name__}: {error}); random init, not checked"
    else:
        note = f"{pair.timm_name} is a different network: random init, reported beside ours only"
    if ours is None:
        # PyTorch's input_shape is channels-first.
        ours = deepvision.models.create_model(pair.ours, backend="pytorch", input_shape=(3, size, size))
    ours = ours.eval()
    if not note:
        # Timing a model that computes something else proves nothing.
        x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            error = testing.max_relative_error(ours(x).numpy(), reference(x).numpy())
        if error > 1e-3:
            raise RuntimeError(f"{pair.ours} disagrees with timm {pair.timm_name} (relative error {error:.2e})")
        note = f"timm weights imported through deepvision.importers; logits agree (relative error {error:.1e})"
    return reference.to(device), control.to(device), ours.to(device), note


def _import_weights(timm_model: Any, timm_name: str, size: int) -> Any:
    """Our PyTorch model with ``timm_model``'s weights, through the timm importer (a state_dict file)."""
    from safetensors.torch import save_file

    from deepvision.importers.timm import import_timm

    with tempfile.TemporaryDirectory(prefix="bench-timm-") as tmp:
        path = Path(tmp) / "model.safetensors"
        save_file({k: v.detach().contiguous() for k, v in timm_model.state_dict().items()}, str(path))
        imported = import_timm(path, timm_architecture=timm_name)
        return imported.to_model("pytorch", input_shape=[size, size, 3])


def torch_infer_runner(model: Any, autocast: Any = None) -> Callable[[Any], Any]:
    """``model(x)`` under ``torch.inference_mode()`` (and ``autocast``, a context factory, if given)."""
    import contextlib

    import torch

    def run(x: Any) -> Any:
        with torch.inference_mode(), (autocast() if autocast else contextlib.nullcontext()):
            return model(x)

    return run


def torch_train_runner(model: Any, classes: int = 1000, autocast: Any = None) -> Callable[[Any], Any]:
    """One training step: forward, cross-entropy, backward, AdamW step (own optimizer per model)."""
    import contextlib

    import torch

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    targets: dict[tuple, Any] = {}

    def step(x: Any) -> Any:
        key = (x.shape[0], x.device)
        if key not in targets:
            targets[key] = torch.randint(0, classes, (x.shape[0],), device=x.device,
                                         generator=torch.Generator(x.device).manual_seed(0))
        optimizer.zero_grad(set_to_none=True)
        with autocast() if autocast else contextlib.nullcontext():
            loss = torch.nn.functional.cross_entropy(model(x), targets[key])
        loss.backward()
        optimizer.step()
        return loss.item()  # waits for the step

    return step


def _table(title: str, note: str, times: dict[str, list[float]], reference: str, batch: int) -> str:
    lines = [f"### {title}", *([f"_{note}_"] if note else []), "", *ratio_table(times, reference, batch), ""]
    return "\n".join(lines)


def channels_last_copy(model: Any) -> Any:
    """A copy of ``model`` whose 4-D weights use ``torch.channels_last`` memory (the same numbers)."""
    import copy

    import torch

    return copy.deepcopy(model).to(memory_format=torch.channels_last)


def pt_section(models: list[str], batches: list[int], size: int, trials: int, warmup: int, train: bool,
               channels_last: bool = False) -> list[str]:
    """PyTorch inference (or one training step) of deepvision vs timm, one table per model and batch.

    With ``channels_last``, the CNNs (not the ViTs) are also timed as ``torch.channels_last`` copies on
    a ``channels_last`` input, in the same interleaved trials, and each table gets one more line:
    deepvision vs timm with both in that memory format.
    """
    import torch

    out = []
    for name in models:
        pair = TIMM_PAIRS[name]
        reference, control, ours, note = timm_and_ours(pair, size)
        ref_label, ctl_label = f"timm {pair.timm_name}", f"timm {pair.timm_name} (self-vs-self control)"
        ours_label = f"deepvision {name} (PyTorch)"
        make = torch_train_runner if train else torch_infer_runner
        runners = {ref_label: make(reference), ctl_label: make(control), ours_label: make(ours)}
        cl_pair = None
        if channels_last and not pair.is_vit:
            cl_pair = (f"{ref_label}, channels_last", f"{ours_label}, channels_last")
            runners[cl_pair[0]] = make(channels_last_copy(reference))
            runners[cl_pair[1]] = make(channels_last_copy(ours))
        for batch in batches:
            x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
            inputs = dict.fromkeys(runners, x)
            if cl_pair:
                inputs.update(dict.fromkeys(cl_pair, x.contiguous(memory_format=torch.channels_last)))
            times = measure(runners, inputs, trials, warmup)
            kind = "one training step (AdamW)" if train else "inference"
            table = _table(f"PyTorch {kind}, {name}, batch {batch}, {size}x{size}", note, times, ref_label, batch)
            if cl_pair:
                mid, q1, q3 = ratio_stats(times[cl_pair[0]], times[cl_pair[1]])
                table += (f"deepvision vs timm, both channels_last: {mid:.3f} ({q1:.3f} .. {q3:.3f}) "
                          "(median of per-trial throughput ratios, IQR)\n")
            out.append(table)
            print(out[-1], flush=True)
        del reference, control, ours, runners
    return out


def _keras_builder(name: str, batch: int, size: int) -> tuple[dict, dict]:
    """The keras.applications comparison of the existing bench scripts (they check the numbers)."""
    if name.startswith("EfficientNetV2"):
        import bench_efficientnetv2

        return bench_efficientnetv2.build(name.removeprefix("EfficientNetV2"), batch, size, with_pytorch=False)
    if name == "ConvNeXtTiny":
        import bench_convnext

        return bench_convnext.build(batch, size)
    if name == "ResNet50V2":
        import bench_resnetv2

        return bench_resnetv2.build(batch, size, with_pytorch=False)
    raise KeyError(name)


def _vit_tf_vs_pt(name: str, batch: int, size: int) -> tuple[dict, dict]:
    """ViT in TensorFlow vs the same weights in PyTorch (the reference here; keras has no ViT)."""
    import numpy as np
    import tensorflow as tf
    import torch
    from bench_efficientnetv2 import _keras_runner

    import deepvision
    from deepvision import testing
    from deepvision.portable import to_backend

    pt_model = deepvision.models.create_model(name, backend="pytorch", input_shape=(3, size, size)).eval()
    pt_control = deepvision.models.create_model(name, backend="pytorch", input_shape=(3, size, size)).eval()
    pt_control.load_state_dict(pt_model.state_dict())
    tf_model = to_backend(pt_model, "tensorflow")
    x = np.random.default_rng(0).normal(size=(batch, size, size, 3)).astype(np.float32)
    x_pt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    pt_run = torch_infer_runner(pt_model)
    runners = {
        f"deepvision {name} (PyTorch)": lambda v: pt_run(v).numpy(),
        f"deepvision {name} (PyTorch, self-vs-self control)": lambda v: torch_infer_runner(pt_control)(v).numpy(),
        f"deepvision {name} (TensorFlow, tf.function)": _keras_runner(tf_model),
    }
    inputs = dict.fromkeys(list(runners)[:2], x_pt) | {list(runners)[2]: tf.constant(x)}
    expected = runners[list(runners)[0]](x_pt)
    error = testing.max_relative_error(runners[list(runners)[2]](inputs[list(runners)[2]]), expected)
    if error > 1e-3:
        raise RuntimeError(f"{name}: TensorFlow disagrees with PyTorch (relative error {error:.2e})")
    return runners, inputs


def tf_section(models: list[str], batches: list[int], size: int, trials: int, warmup: int) -> list[str]:
    """TensorFlow inference vs keras.applications (ViT: vs our PyTorch model)."""
    import keras

    out = []
    for name in models:
        for batch in batches:
            if name.startswith("ViT"):
                runners, inputs = _vit_tf_vs_pt(name, batch, size)
                title, note = f"TensorFlow vs PyTorch inference, {name}", "no keras.applications ViT; same weights"
            else:
                runners, inputs = _keras_builder(name, batch, size)
                title, note = f"TensorFlow inference vs keras.applications, {name}", "same weights, checked"
            times = measure(runners, inputs, trials, warmup)
            out.append(_table(f"{title}, batch {batch}, {size}x{size}", note, times, next(iter(runners)), batch))
            print(out[-1], flush=True)
            del runners, inputs
            keras.backend.clear_session()
    return out


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=None,
                        help=f"comma-separated subset (default: all of each section; known: {', '.join(TIMM_PAIRS)})")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated of {', '.join(SECTIONS)}")
    parser.add_argument("--trials", type=int, default=20, help="interleaved timed trials (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    parser.add_argument("--batch-sizes", default="8,1", help="inference batch sizes (default 8,1)")
    parser.add_argument("--train-batch", type=int, default=8, help="training-step batch size (default 8)")
    parser.add_argument("--size", type=int, default=224, help="image size (default 224)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: all cores)")
    parser.add_argument("--channels-last", action="store_true",
                        help="PyTorch CNNs: also time channels_last copies of timm's model and ours")
    args = parser.parse_args(argv)

    torch, timm = import_torch_stack()  # before TensorFlow (see import_torch_stack)
    sections = _csv(args.sections)
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    wanted = set(_csv(args.models)) if args.models else None
    if wanted and wanted - set(TIMM_PAIRS):
        parser.error(f"unknown models: {', '.join(sorted(wanted - set(TIMM_PAIRS)))}")
    pick = lambda names: [n for n in names if wanted is None or n in wanted]  # noqa: E731
    if timm is None and {"pt-infer", "pt-train"} & set(sections):
        print("timm is not installed (pip install timm, or use tools/make_bench_env.sh): PyTorch sections skipped")
        sections = [s for s in sections if s == "tf-infer"]
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    batches = [int(b) for b in _csv(args.batch_sizes)]

    versions = [f"torch {torch.__version__} ({torch.get_num_threads()} threads)",
                f"timm {timm.__version__}" if timm else "timm missing"]
    if "tf-infer" in sections:
        import keras
        import tensorflow as tf

        versions += [f"tensorflow {tf.__version__}", f"keras {keras.__version__}"]
    print(f"# deepvision vs references (issue 19)\n\n{', '.join(versions)}; {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}); {args.trials} interleaved trials, {args.warmup} warm-up; "
          "figures: median of per-trial throughput ratios vs the reference (> 1: faster)\n", flush=True)
    if "pt-infer" in sections:
        print("## PyTorch inference vs timm\n", flush=True)
        pt_section(pick(PT_INFER_MODELS), batches, args.size, args.trials, args.warmup, train=False,
                   channels_last=args.channels_last)
    if "pt-train" in sections:
        print("## PyTorch training step vs timm\n", flush=True)
        pt_section(pick(PT_TRAIN_MODELS), [args.train_batch], args.size, args.trials, args.warmup, train=True,
                   channels_last=args.channels_last)
    if "tf-infer" in sections:
        print("## TensorFlow inference vs keras.applications\n", flush=True)
        tf_section(pick(TF_MODELS), batches, args.size, args.trials, args.warmup)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
