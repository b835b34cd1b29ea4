"""Inference throughput of deepvision's ResNet50V2 against keras.applications.ResNet50V2.

Usage::

    python tools/bench_resnetv2.py --trials 30 --batch 8

All models get the same weights (keras.applications' random init, copied through the canonical
names) and the same input batch. Every model is measured the same way, once per trial, in a random
order that changes from trial to trial (interleaved, so machine noise hits all of them alike):

- Keras models: one call of a ``tf.function`` around ``model(x, training=False)`` (graph mode; the
  first call, which traces, is a warm-up).
- PyTorch: ``model(x)`` in eval mode under ``torch.inference_mode()``.

The figure of merit is the median over trials of the per-trial ratio
``time(keras.applications) / time(model)`` (> 1: faster than keras.applications). A second,
identical keras.applications model measured the same way is the control: its ratio shows how far
apart two equal models land on this machine.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import measure, ratio_table  # noqa: E402  (the one timer of tools/bench_*.py)


def _keras_runner(model):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def infer(x):
        return model(x, training=False)

    def run(x):
        return infer(x).numpy()

    return run


def _torch_runner(model):
    import torch

    model.eval()

    def run(x):
        with torch.inference_mode():
            return model(x).numpy()

    return run


def build(batch: int, size: int, with_pytorch: bool) -> tuple[dict, dict]:
    """The models to time (name -> runner) and their inputs (name -> framework batch)."""
    import keras
    import numpy as np

    import deepvision
    from deepvision import testing
    from deepvision.adapters import slots_by_name
    from deepvision.importers import keras_applications_resnetv2 as mapping
    from deepvision.portable import to_backend

    config = {"include_top": True, "classes": 1000, "input_shape": [size, size, 3]}
    reference = keras.applications.ResNet50V2(**mapping.app_kwargs(config))
    control = keras.applications.ResNet50V2(**mapping.app_kwargs(config))
    ours = deepvision.models.create_model("ResNet50V2", backend="tensorflow", input_shape=(size, size, 3))
    slots = slots_by_name(ours)
    for name, variable in mapping.variable_map(reference, config).items():
        slots[name].write(keras.ops.convert_to_numpy(variable))
    control.set_weights(reference.get_weights())

    x = np.random.default_rng(0).uniform(-1, 1, size=(batch, size, size, 3)).astype(np.float32)
    x_tf = keras.ops.convert_to_tensor(x)
    runners = {
        "keras.applications ResNet50V2": _keras_runner(reference),
        "keras.applications ResNet50V2 (control copy)": _keras_runner(control),
        "deepvision ResNet50V2 (TensorFlow)": _keras_runner(ours),
    }
    inputs = dict.fromkeys(runners, x_tf)
    if with_pytorch:
        import torch

        runners["deepvision ResNet50V2 (PyTorch)"] = _torch_runner(to_backend(ours, "pytorch"))
        inputs["deepvision ResNet50V2 (PyTorch)"] = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

    # Same weights, same numbers: a benchmark of a model that computes something else proves nothing.
    expected = runners["keras.applications ResNet50V2"](x_tf)
    for name, run in runners.items():
        error = testing.max_relative_error(run(inputs[name]), expected)
        if error > 1e-4:
            raise RuntimeError(f"{name} disagrees with keras.applications (relative error {error:.2e})")
    return runners, inputs


def report(times: dict[str, list[float]], batch: int) -> str:
    return "\n".join(ratio_table(times, "keras.applications ResNet50V2", batch))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=30, help="interleaved trials (default 30)")
    parser.add_argument("--batch", type=int, default=8, help="images per batch (default 8)")
    parser.add_argument("--size", type=int, default=224, help="image size (default 224)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--no-pytorch", action="store_true", help="skip the PyTorch model")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads for the PyTorch model (default: torch's own choice)")
    args = parser.parse_args(argv)
    if args.torch_threads is not None and not args.no_pytorch:
        import torch

        torch.set_num_threads(args.torch_threads)

    import keras
    import tensorflow as tf

    runners, inputs = build(args.batch, args.size, not args.no_pytorch)
    times = measure(runners, inputs, args.trials, args.warmup)
    versions = f"TensorFlow {tf.__version__}, Keras {keras.__version__}"
    if not args.no_pytorch:
        import torch

        versions += f", PyTorch {torch.__version__} ({torch.get_num_threads()} threads)"
    print(f"ResNet50V2 inference, batch {args.batch}, {args.size}x{args.size}, float32, {args.trials} interleaved "
          f"trials, {os.cpu_count()} CPUs; {versions}")
    print(report(times, args.batch))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
