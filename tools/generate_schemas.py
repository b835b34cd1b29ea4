"""Regenerate schemas/<Architecture>@<version>.json from the live models.

Usage: python tools/generate_schemas.py [--check] [PATTERN]
--check exits non-zero if a checked-in schema differs from the live model (as the test does). Neither mode
rewrites a schema version whose canonical names or shapes changed: that needs a version bump and a
migration (interchange.evolution).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
sys.path.insert(0, str(SCHEMAS.parent))  # run from a checkout without installing


def main(argv: list[str] | None = None) -> int:
    from deepvision.registry import list_architectures
    from deepvision.schema_gen import schema_for
    from interchange.evolution import check_evolution

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pattern", nargs="?", default="*")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    SCHEMAS.mkdir(exist_ok=True)
    stale, broken = [], []
    for name in list_architectures(args.pattern):
        schema = schema_for(name)
        path = SCHEMAS / f"{schema.architecture}@{schema.version}.json"
        text = schema.to_json()
        report = check_evolution(schema, SCHEMAS)
        if report.problems:  # regenerating would hide a rename from the checkpoints that name this version
            broken.append(str(report))
            continue
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(SCHEMAS.parent)} ({len(schema.tensors)} tensors)")
    if broken:
        print("\n".join(broken))
    if stale:
        print("stale schemas (run python tools/generate_schemas.py):", ", ".join(stale))
    return 1 if stale or broken else 0


if __name__ == "__main__":
    sys.exit(main())
