"""Benchmark: `import deepvision` vs `import numpy`, medians over fresh interpreters (target <= 1.5x)."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys


def import_time(statement: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=25)
    args = parser.parse_args()
    statements = {
        "import numpy": "import numpy",
        "import deepvision": "import deepvision",
        # What first use costs before any framework: registry, portable API, interchange, numpy.
        "import deepvision + registry": "import deepvision, deepvision.portable; deepvision.models.list_models()",
    }
    times: dict[str, list[float]] = {name: [] for name in statements}
    for _ in range(args.runs):  # interleaved, so drifts in machine load hit all alike
        for name, statement in statements.items():
            times[name].append(import_time(statement))
    base = statistics.median(times["import numpy"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<30} {median * 1000:7.1f} ms   ratio to numpy {median / base:.2f}")
    print(f"(target: import deepvision <= 1.50x import numpy; medians of {args.runs} fresh interpreters each)")


if __name__ == "__main__":
    main()
