"""Inference throughput of deepvision's EfficientNetV2 against keras.applications, and what TensorFlow's
asymmetric "same" padding costs in PyTorch.

Usage::

    python tools/bench_efficientnetv2.py --trials 30 --batch 8            # B0 and S, 224x224
    python tools/bench_efficientnetv2.py --trials 5 --batch 2 --models B0  # a short run

For each variant, every model gets the same weights (keras.applications' random init, copied
through the canonical names; checked to give the same logits before timing) and the same input.
Each trial times one batch of every model, in a random order that changes from trial to trial
(interleaved, so machine noise hits all alike):

- Keras models: a ``tf.function`` around ``model(x, training=False)`` (graph mode; warm-up calls trace).
- PyTorch: ``model(x)`` in eval mode under ``torch.inference_mode()``.

Figures: the median over trials of the per-trial ratio ``time(keras.applications) / time(model)``
(> 1: faster than keras.applications). A second, identical keras.applications model timed the same
way is the control (self-vs-self): its ratio shows how far apart two equal models land here.

Padding cost: the deepvision PyTorch model pads like TensorFlow at run time (``Conv2dSame``: the
amount depends on the input size, the odd pixel goes bottom/right, so ``F.pad`` + conv). Its
"static padding" twin replaces those convs by ``nn.Conv2d(padding=k // 2)`` with the same weights:
the same cost otherwise, but NOT the same numbers (a one-pixel shift at stride 2 on even sizes), so
it is timed only, as the lower bound of what the asymmetric padding could cost.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import measure, ratio_stats, ratio_table  # noqa: E402  (the one timer of tools/bench_*.py)

KERAS = "keras.applications"
CONTROL = "keras.applications (control copy)"
DV_TF = "deepvision TensorFlow"
DV_PT = "deepvision PyTorch"
DV_PT_STATIC = "deepvision PyTorch, static padding (timing only)"


def _keras_runner(model):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def infer(x):
        return model(x, training=False)

    return lambda x: infer(x).numpy()


def _torch_runner(model):
    import torch

    model.eval()

    def run(x):
        with torch.inference_mode():
            return model(x).numpy()

    return run


def static_padding_twin(pt_model):
    """A copy of ``pt_model`` whose run-time "same" padding convs use static symmetric padding."""
    import copy

    from torch import nn

    from deepvision.layers.core_pt import Conv2dSame

    twin = copy.deepcopy(pt_model)
    for module in list(twin.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, Conv2dSame):
                conv = nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size, child.stride,
                                 padding=tuple(k // 2 for k in child.kernel_size), groups=child.groups,
                                 bias=child.bias is not None)
                conv.load_state_dict(child.state_dict())
                setattr(module, name, conv)
    return twin


def build(variant: str, batch: int, size: int, with_pytorch: bool) -> tuple[dict, dict]:
    """The models to time (label -> runner) and their inputs, for ``EfficientNetV2<variant>``."""
    import keras
    import numpy as np

    import deepvision
    from deepvision import testing
    from deepvision.adapters import slots_by_name
    from deepvision.importers import keras_applications_efficientnetv2 as mapping
    from deepvision.portable import to_backend

    name = f"EfficientNetV2{variant}"
    config = {"include_top": True, "classes": 1000, "input_shape": [size, size, 3], **mapping.CONFIG_OVERRIDES}
    app = getattr(keras.applications, mapping.APPLICATIONS[name])
    reference, control = app(**mapping.app_kwargs(config)), app(**mapping.app_kwargs(config))
    control.set_weights(reference.get_weights())
    ours = deepvision.models.create_model(name, backend="tensorflow", input_shape=(size, size, 3),
                                          min_filter_ratio=None)
    slots = slots_by_name(ours)
    for canonical, variable in mapping.variable_map(reference, config).items():
        slots[canonical].write(keras.ops.convert_to_numpy(variable))

    x = np.random.default_rng(0).uniform(0, 255, size=(batch, size, size, 3)).astype(np.float32)
    x_tf = keras.ops.convert_to_tensor(x)
    runners = {KERAS: _keras_runner(reference), CONTROL: _keras_runner(control), DV_TF: _keras_runner(ours)}
    inputs = dict.fromkeys(runners, x_tf)
    if with_pytorch:
        import torch

        pt_model = to_backend(ours, "pytorch")
        x_pt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        runners[DV_PT] = _torch_runner(pt_model)
        runners[DV_PT_STATIC] = _torch_runner(static_padding_twin(pt_model))
        inputs[DV_PT] = inputs[DV_PT_STATIC] = x_pt

    # Same weights, same numbers (the static-padding twin excepted): timing a model that computes
    # something else proves nothing.
    expected = runners[KERAS](x_tf)
    for label, run in runners.items():
        error = testing.max_relative_error(run(inputs[label]), expected)
        if label != DV_PT_STATIC and error > 1e-4:
            raise RuntimeError(f"{name}: {label} disagrees with keras.applications (relative error {error:.2e})")
    return runners, inputs


def report(variant: str, times: dict[str, list[float]], batch: int) -> str:
    lines = [f"EfficientNetV2{variant}", *ratio_table(times, KERAS, batch)]
    if DV_PT_STATIC in times:
        mid, q1, q3 = ratio_stats(times[DV_PT], times[DV_PT_STATIC])
        lines.append(f"Asymmetric padding in PyTorch: run-time TF-style padding takes {mid:.3f}x the time of "
                     f"static padding (median; IQR {q1:.3f} .. {q3:.3f}), i.e. {100 * (mid - 1):+.1f}%.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=30, help="interleaved trials (default 30)")
    parser.add_argument("--batch", type=int, default=8, help="images per batch (default 8)")
    parser.add_argument("--size", type=int, default=224, help="image size (default 224)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--models", default="B0,S", help="variants, comma-separated (default B0,S)")
    parser.add_argument("--no-pytorch", action="store_true", help="skip the PyTorch models")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads (default: PyTorch's own choice; on a shared, oversubscribed "
                             "machine 1 thread avoids OpenMP barrier stalls)")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    versions = f"TensorFlow {tf.__version__}, Keras {keras.__version__}"
    if not args.no_pytorch:
        import torch

        if args.torch_threads:
            torch.set_num_threads(args.torch_threads)
        versions += f", PyTorch {torch.__version__} ({torch.get_num_threads()} threads)"
    print(f"EfficientNetV2 inference, batch {args.batch}, {args.size}x{args.size}, float32, {args.trials} "
          f"interleaved trials, {os.cpu_count()} CPUs; {versions}")
    for variant in [v.strip() for v in args.models.split(",") if v.strip()]:
        runners, inputs = build(variant, args.batch, args.size, not args.no_pytorch)
        times = measure(runners, inputs, args.trials, args.warmup)
        print(report(variant, times, args.batch), flush=True)
        del runners, inputs
        keras.backend.clear_session()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
