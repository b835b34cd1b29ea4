"""The one timer of the benchmark scripts (``tools/bench_*.py``): interleaved trials, and the
per-trial ratio statistics they report.

Every runner is timed once per trial, in a random order that changes from trial to trial, so
machine noise (other processes, frequency changes) hits all of them alike; the figure of merit is a
median of per-trial ratios, never a ratio of two separately measured medians.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any


def measure(
    runners: Mapping[str, Callable[[Any], Any]],
    inputs: Mapping[str, Any],
    trials: int,
    warmup: int,
    seed: int = 0,
    *,
    sync: Callable[[], Any] | None = None,
) -> dict[str, list[float]]:
    """Seconds of ``runners[name](inputs[name])`` for every runner in every trial.

    Args:
        runners: name -> callable taking its input; it must wait for its result (e.g. ``.numpy()``).
        inputs: name -> the input of that runner.
        trials: timed rounds; each times every runner once, in a fresh random order.
        warmup: untimed rounds first (tracing, compilation, caches).
        seed: seed of the order.
        sync: called before starting and before stopping the clock (``torch.cuda.synchronize``
            for asynchronous devices).

    Returns:
        name -> one duration per trial, in trial order.
    """
    sync = sync or (lambda: None)
    for _ in range(warmup):
        for name, run in runners.items():
            run(inputs[name])
    rng = random.Random(seed)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(trials):
        order = list(runners)
        rng.shuffle(order)
        for name in order:
            sync()
            start = time.perf_counter()
            runners[name](inputs[name])
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def ratio_stats(numerator: list[float], denominator: list[float]) -> tuple[float, float, float]:
    """Median, first and third quartile of the per-trial ratios ``numerator / denominator``."""
    ratios = sorted(a / b for a, b in zip(numerator, denominator))
    if len(ratios) == 1:
        return ratios[0], ratios[0], ratios[0]
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return statistics.median(ratios), q1, q3


def ratio_table(times: Mapping[str, list[float]], reference: str, batch: int) -> list[str]:
    """A Markdown table: every runner's median seconds per batch, images per second, and the median
    and quartiles of its per-trial throughput ratio ``time(reference) / time(runner)`` (> 1: faster)."""
    ref = times[reference]
    lines = [
        f"| model | median s/batch | img/s | throughput ratio vs {reference} (median of {len(ref)} per-trial "
        "ratios) | IQR of ratios |",
        "|---|---|---|---|---|",
    ]
    for name, values in times.items():
        median_time = statistics.median(values)
        if name == reference:
            ratio, spread = "1 (reference)", ""
        else:
            mid, q1, q3 = ratio_stats(ref, values)
            ratio, spread = f"{mid:.3f}", f"{q1:.3f} .. {q3:.3f}"
        lines.append(f"| {name} | {median_time:.4f} | {batch / median_time:.2f} | {ratio} | {spread} |")
    return lines
