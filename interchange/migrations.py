"""Registry of schema migrations: how tensors of an old schema version map to a newer one.

A migration renames tensors (dict or callable; ``None`` drops a tensor) and
may transform values. :class:`interchange.Checkpoint` applies the chain from
the file's schema version to the newest registered version lazily, so old
files keep loading after a layout change without being rewritten.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .errors import MigrationError

__all__ = [
    "Migration",
    "register_migration",
    "unregister_migration",
    "registered_migrations",
    "latest_version",
    "migration_chain",
]

RenameFn = Callable[[str], "str | None"]
TransformFn = Callable[[str, np.ndarray], np.ndarray]
ShapeFn = Callable[[str, tuple], tuple]


@dataclass(frozen=True)
class Migration:
    """One step ``from_version -> to_version`` for an architecture."""

    architecture: str
    from_version: int
    to_version: int
    rename: RenameFn
    transform: TransformFn | None = None
    shape_transform: ShapeFn | None = None

    def new_name(self, old: str) -> str | None:
        """The tensor's name after this step, or None if the step drops it."""
        new = self.rename(old)
        if new is not None and (not isinstance(new, str) or not new):
            raise MigrationError(
                f"migration {self.architecture} v{self.from_version}->v{self.to_version} renamed {old!r} to "
                f"{new!r}; a rename must return a non-empty string or None"
            )
        return new


_lock = threading.Lock()
_registry: dict[str, dict[int, Migration]] = {}


def _as_rename(fn: RenameFn | Mapping[str, str | None]) -> RenameFn:
    if isinstance(fn, Mapping):
        table = dict(fn)
        return lambda name: table.get(name, name)
    if callable(fn):
        return fn
    raise TypeError("a migration's rename must be a dict (old -> new) or a callable(name) -> name")


def register_migration(
    architecture: str,
    from_version: int,
    to_version: int,
    fn: RenameFn | Mapping[str, str | None],
    *,
    transform: TransformFn | None = None,
    shape_transform: ShapeFn | None = None,
) -> Migration:
    """Register how schema ``from_version`` of ``architecture`` becomes ``to_version``.

    ``fn``: dict old->new (unlisted names unchanged; a value of None drops the
    tensor) or ``callable(old_name) -> new_name | None``. ``transform(new_name,
    array) -> array`` rewrites values; give ``shape_transform(new_name, shape)
    -> shape`` too if it changes shapes, so shapes stay known without reading data.
    """
    if not isinstance(from_version, int) or not isinstance(to_version, int) or not 0 < from_version < to_version:
        raise MigrationError(
            f"migration {architecture} v{from_version}->v{to_version}: versions must be positive ints "
            "with from_version < to_version"
        )
    migration = Migration(architecture, from_version, to_version, _as_rename(fn), transform, shape_transform)
    with _lock:
        steps = _registry.setdefault(architecture, {})
        if from_version in steps:
            existing = steps[from_version]
            raise MigrationError(
                f"a migration from {architecture} v{from_version} is already registered "
                f"(to v{existing.to_version}); unregister it first"
            )
        steps[from_version] = migration
    return migration


def unregister_migration(architecture: str, from_version: int) -> Migration | None:
    """Remove the migration from ``from_version`` of ``architecture``; returns it (None if absent)."""
    with _lock:
        steps = _registry.get(architecture, {})
        migration = steps.pop(from_version, None)
        if not steps:
            _registry.pop(architecture, None)
        return migration


def registered_migrations(architecture: str | None = None) -> list[Migration]:
    """All registered migrations (of one architecture), ordered by from_version."""
    with _lock:
        archs = [architecture] if architecture is not None else sorted(_registry)
        return [m for a in archs for _, m in sorted(_registry.get(a, {}).items())]


def latest_version(architecture: str) -> int | None:
    """Newest schema version any registered migration of ``architecture`` leads to."""
    targets = [m.to_version for m in registered_migrations(architecture)]
    return max(targets) if targets else None


def migration_chain(architecture: str, from_version: int) -> list[Migration]:
    """The migrations leading from ``from_version`` to the newest registered version.

    Empty when the version is already current. Raises MigrationError when no
    complete chain exists.
    """
    latest = latest_version(architecture)
    if latest is None or from_version >= latest:
        return []
    with _lock:
        steps = dict(_registry.get(architecture, {}))
    chain: list[Migration] = []
    version = from_version
    while version < latest:
        step = steps.get(version)
        if step is None:
            known = ", ".join(f"v{m.from_version}->v{m.to_version}" for _, m in sorted(steps.items()))
            raise MigrationError(
                f"cannot migrate {architecture} from schema v{from_version} to v{latest}: no migration starts at "
                f"v{version} (registered: {known}). Register the missing step, or re-export the checkpoint."
            )
        chain.append(step)
        version = step.to_version
    return chain
