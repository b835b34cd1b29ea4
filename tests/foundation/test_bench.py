"""The one timer of the benchmark scripts (tools/_bench.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

from _bench import measure, ratio_stats  # noqa: E402


def test_measure_times_every_runner_once_per_trial_in_changing_orders():
    calls: list[str] = []
    syncs: list[int] = []
    runners = {name: (lambda x, name=name: calls.append(f"{name}:{x}")) for name in "abc"}
    times = measure(runners, {"a": 1, "b": 2, "c": 3}, trials=6, warmup=2, sync=lambda: syncs.append(1))
    assert calls[:6] == ["a:1", "b:2", "c:3"] * 2  # warm-up rounds in order, untimed
    trials = [calls[6 + 3 * i: 9 + 3 * i] for i in range(6)]
    assert all(sorted(t) == ["a:1", "b:2", "c:3"] for t in trials)
    assert len({tuple(t) for t in trials}) > 1  # the order changes from trial to trial
    assert {k: len(v) for k, v in times.items()} == {"a": 6, "b": 6, "c": 6}
    assert all(t >= 0 for v in times.values() for t in v)
    assert len(syncs) == 2 * 6 * 3  # before and after every timed call


def test_ratio_stats_are_medians_of_per_trial_ratios():
    assert ratio_stats([2.0], [1.0]) == (2.0, 2.0, 2.0)
    median, q1, q3 = ratio_stats([1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 1.0, 1.0, 1.0, 1.0])
    assert median == 3.0 and q1 < median < q3


def test_ratio_table_marks_the_reference_and_reports_ratios():
    from _bench import ratio_table

    lines = ratio_table({"ref": [2.0, 2.0], "fast": [1.0, 1.0]}, "ref", batch=4)
    assert lines[0].startswith("| model |") and "median of 2 per-trial ratios" in lines[0]
    assert lines[2] == "| ref | 2.0000 | 2.00 | 1 (reference) |  |"
    assert lines[3] == "| fast | 1.0000 | 4.00 | 2.000 | 2.000 .. 2.000 |"
