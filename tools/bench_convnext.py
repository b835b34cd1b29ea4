"""Inference throughput of deepvision's TensorFlow ConvNeXtTiny against keras.applications.ConvNeXtTiny.

Usage::

    python tools/bench_convnext.py --trials 20 --batch 8

Both get the same weights (keras.applications' random init with layer-scale gammas set to 0.5, copied
through the canonical names by the keras.applications importer's map) and the same [0, 255] input
batch (both normalise it in the model). Every model is timed once per trial, in a random order that
changes per trial (interleaved), as one call of a ``tf.function`` (graph mode; warm-up calls trace).
The figure of merit is the median over trials of ``time(keras.applications) / time(model)`` (> 1:
faster); an identical second keras.applications model is the self-vs-self control. Target >= 0.97.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_resnetv2 import _keras_runner, measure  # noqa: E402  (the tools share one interleaved timer)

REFERENCE = "keras.applications ConvNeXtTiny"


def build(batch: int, size: int) -> tuple[dict, dict]:
    """The models to time (name -> runner) and their inputs (name -> batch), checked to agree."""
    import keras
    import numpy as np

    import deepvision
    from deepvision import testing
    from deepvision.adapters import slots_by_name
    from deepvision.importers import keras_applications_convnext as mapping

    config = {"include_top": True, "classes": 1000, "input_shape": [size, size, 3]}
    reference = keras.applications.ConvNeXtTiny(**mapping.app_kwargs(config))
    for layer in reference._flatten_layers():
        if type(layer).__name__ == "LayerScale":  # 1e-6 would make every block nearly the identity
            layer.weights[0].assign(np.full(layer.weights[0].shape, 0.5, np.float32))
    control = keras.applications.ConvNeXtTiny(**mapping.app_kwargs(config))
    control.set_weights(reference.get_weights())
    ours = deepvision.models.ConvNeXtTiny(input_shape=(size, size, 3), backend="tensorflow")
    slots = slots_by_name(ours)
    for name, variable in mapping.variable_map(reference, config).items():
        slots[name].write(keras.ops.convert_to_numpy(variable.value))

    x = keras.ops.convert_to_tensor(np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype("float32"))
    runners = {
        REFERENCE: _keras_runner(reference),
        f"{REFERENCE} (self-vs-self control)": _keras_runner(control),
        "deepvision ConvNeXtTiny (TensorFlow)": _keras_runner(ours),
    }
    expected = runners[REFERENCE](x)
    for name, run in runners.items():  # a benchmark of a model that computes something else proves nothing
        error = testing.max_relative_error(run(x), expected)
        if error > 1e-4:
            raise RuntimeError(f"{name} disagrees with keras.applications (relative error {error:.2e})")
    return runners, dict.fromkeys(runners, x)


def report(times: dict[str, list[float]], batch: int) -> str:
    import statistics

    reference = times[REFERENCE]
    lines = [f"| model | median s/batch | img/s | ratio vs keras.applications (median of {len(reference)} "
             "per-trial ratios) | IQR of ratios |", "|---|---|---|---|---|"]
    for name, values in times.items():
        ratios = sorted(r / v for r, v in zip(reference, values))
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        median = statistics.median(values)
        ratio = "1 (reference)" if values is reference else f"{statistics.median(ratios):.3f}"
        spread = "" if values is reference else f"{q[0]:.3f} .. {q[2]:.3f}"
        lines.append(f"| {name} | {median:.4f} | {batch / median:.2f} | {ratio} | {spread} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="interleaved trials (default 20)")
    parser.add_argument("--batch", type=int, default=8, help="images per batch (default 8)")
    parser.add_argument("--size", type=int, default=224, help="image size (default 224)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    args = parser.parse_args(argv)
    if args.trials < 20:
        parser.error("use at least 20 trials: two identical models differ by several percent per trial here")

    import keras
    import tensorflow as tf

    runners, inputs = build(args.batch, args.size)
    times = measure(runners, inputs, args.trials, args.warmup)
    print(f"ConvNeXtTiny inference, batch {args.batch}, {args.size}x{args.size}, float32, {args.trials} interleaved "
          f"trials, {os.cpu_count()} CPUs; TensorFlow {tf.__version__}, Keras {keras.__version__}")
    print(report(times, args.batch))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
