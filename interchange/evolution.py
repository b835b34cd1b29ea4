"""Schema evolution rules (SPEC.md sections 4 and 5), checked against the checked-in schema files.

A checkpoint names its schema (``ResNet50V2@1``) and is read against that file forever. So the
tensors of a schema version never change: a changed canonical name or shape needs a new version,
the old file kept, and a registered migration that turns the old version's tensors into the new
one's. :func:`check_evolution` compares a freshly generated schema (from the live model) with the
schema files and says which of these rules is broken; only what regeneration cannot break
(config defaults, roles, order) is reported as merely ``stale``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import InterchangeError
from .migrations import migration_chain
from .schema import Schema, list_schemas, load_schema

__all__ = ["EvolutionReport", "check_evolution", "layout"]

Layout = dict[str, tuple[tuple["int | None", ...], "str | None"]]


def layout(schema: Schema) -> Layout:
    """What a checkpoint depends on: tensor name -> (shape, optional_when)."""
    return {t.name: (tuple(t.shape), t.optional_when) for t in schema.tensors}


@dataclass
class EvolutionReport:
    """Outcome of :func:`check_evolution`.

    Attributes:
        problems: broken rules (a layout changed without a version bump, a missing migration or
            old schema file, ...); regenerating the schema files does not fix them.
        stale: the current version's file differs only where regeneration is allowed (config,
            roles, order) or is missing: ``tools/generate_schemas.py`` fixes it.
    """

    architecture: str
    version: int
    problems: list[str] = field(default_factory=list)
    stale: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems and not self.stale

    def __str__(self) -> str:
        if self.ok:
            return f"{self.architecture}@{self.version}: schema files up to date"
        lines = [f"{self.architecture}@{self.version}:"] + [f"  - {p}" for p in self.problems]
        if self.stale:
            lines.append("  - the schema file is stale or missing: run python tools/generate_schemas.py")
        return "\n".join(lines)


def _differences(old: Layout, new: Layout) -> str:
    removed = [n for n in old if n not in new]
    added = [n for n in new if n not in old]
    changed = [n for n in old if n in new and old[n] != new[n]]
    parts = []
    if removed:
        parts.append(f"gone: {', '.join(removed[:5])}{' ...' if len(removed) > 5 else ''}")
    if added:
        parts.append(f"new: {', '.join(added[:5])}{' ...' if len(added) > 5 else ''}")
    if changed:
        parts.append("changed: " + ", ".join(f"{n} {old[n][0]} -> {new[n][0]}" for n in changed[:5]))
    return "; ".join(parts)


def _migrated(old: Schema, target_version: int) -> Layout:
    """The old schema's layout after the registered migrations up to ``target_version``."""
    current = layout(old)
    for step in migration_chain(old.architecture, old.version):
        if step.to_version > target_version:
            break
        renamed: Layout = {}
        for name, (shape, condition) in current.items():
            new = step.new_name(name)
            if new is None:
                continue
            if step.shape_transform is not None and None not in shape:
                shape = tuple(int(d) for d in step.shape_transform(new, shape))
            renamed[new] = (shape, condition)
        current = renamed
    return current


def check_evolution(live: Schema, schemas_dir: str | os.PathLike | None = None) -> EvolutionReport:
    """Check the schema files of ``live.architecture`` against ``live``, the schema of the live model.

    Rules: the file of ``live.version`` has exactly ``live``'s tensors (names, shapes,
    conditions); every older version's file is kept; a registered migration chain leads from
    each older version to ``live.version`` and turns its tensors into exactly ``live``'s; no file
    is newer than ``live.version``.
    """
    arch, version = live.architecture, live.version
    report = EvolutionReport(arch, version)
    versions = list_schemas(schemas_dir).get(arch, [])
    bump = (f"bump the architecture's schema_version to {version + 1}, keep {arch}@{version}.json, "
            f"register a migration {arch} v{version}->v{version + 1} (interchange.register_migration) "
            "and run python tools/generate_schemas.py")
    newer = [v for v in versions if v > version]
    if newer:
        report.problems.append(f"schema files {[f'{arch}@{v}.json' for v in newer]} are newer than the "
                               f"architecture's schema_version {version}")
    if version in versions:
        checked_in = load_schema(arch, version, schemas_dir)
        if layout(checked_in) != layout(live):
            report.problems.append(
                f"the canonical tensors changed but schema_version is still {version} "
                f"({_differences(layout(checked_in), layout(live))}); checkpoints written as {arch}@{version} "
                f"would no longer load: {bump}")
        elif checked_in.to_json() != live.to_json():
            report.stale = True
    else:
        report.stale = True
    for old_version in range(1, version):
        if old_version not in versions:
            report.problems.append(f"{arch}@{old_version}.json is missing: old schema files stay, since "
                                   f"checkpoints name them (restore it from version control)")
            continue
        old = load_schema(arch, old_version, schemas_dir)
        try:
            chain = migration_chain(arch, old_version)
            migrated = _migrated(old, version)
        except InterchangeError as exc:
            report.problems.append(str(exc))
            continue
        if not chain or chain[-1].to_version < version:
            report.problems.append(
                f"no registered migration leads from {arch} v{old_version} to v{version}: register "
                f"{arch} v{version - 1}->v{version} (interchange.register_migration) where the architecture is "
                "registered")
        elif migrated != layout(live):
            report.problems.append(
                f"the migrations from {arch} v{old_version} do not produce the v{version} tensors "
                f"({_differences(migrated, layout(live))}): fix the migration")
    return report
