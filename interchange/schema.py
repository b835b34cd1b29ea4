"""Architecture schemas (expected tensor names and shapes) and validation against them.

A schema file is ``<schemas_dir>/<Architecture>@<version>.json``; see SPEC.md
section 4. Schemas are written deterministically so a test can regenerate
them from a model and diff.
"""

from __future__ import annotations

import difflib
import importlib.resources
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._format import SUPPORTED_FORMAT_VERSION
from .errors import MetadataError, SchemaFileError, SchemaMismatchError, UnknownArchitectureError
from .reader import Checkpoint

__all__ = [
    "ROLES",
    "SCHEMAS_DIR_ENV",
    "TensorSpec",
    "Schema",
    "ValidationReport",
    "default_schemas_dir",
    "resolve_schemas_dir",
    "schema_path",
    "list_schemas",
    "load_schema",
    "validate",
    "validate_checkpoint",
    "infer_role",
]

SCHEMAS_DIR_ENV = "DEEPVISION_SCHEMAS_DIR"
# The one vocabulary of tensor roles: schema files store them, and deepvision's adapters give every
# tensor one of them (deepvision.adapters.Slot.role).
ROLES = ("weight", "bias", "norm", "statistic", "embedding", "parameter")

_FILE_RE = re.compile(r"^(?P<arch>[^@\s/\\]+)@(?P<version>[0-9]+)\.json$")
_COND_RE = re.compile(r"^\s*(?P<key>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op>!=|=)\s*(?P<value>.*?)\s*$")

Shape = tuple["int | None", ...]


# --------------------------------------------------------------------------- locations


def default_schemas_dir() -> Path:
    """The schema files that ship with the package: the data package ``interchange.schemas``.

    A wheel installs them as ``interchange/schemas/``; an editable install maps that
    package onto the checkout's top-level ``schemas/`` folder (the source of truth).
    A bare checkout on ``sys.path`` (no install at all) falls back to that folder.
    """
    try:
        root = importlib.resources.files("interchange.schemas")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "schemas"
    try:
        return Path(os.fspath(root))
    except TypeError:  # e.g. imported from a zip archive: no directory to list
        raise SchemaFileError(
            f"the installed schema files ({root}) are not in a folder on disk; install deepvision-toolkit "
            f"unzipped, or point ${SCHEMAS_DIR_ENV} at a copy of its schemas/ folder"
        ) from None


def resolve_schemas_dir(schemas_dir: str | os.PathLike | None = None) -> Path:
    """The schemas folder: the argument, else ``$DEEPVISION_SCHEMAS_DIR``, else the default."""
    if schemas_dir is not None:
        return Path(schemas_dir)
    env = os.environ.get(SCHEMAS_DIR_ENV)
    return Path(env) if env else default_schemas_dir()


def schema_path(architecture: str, version: int, schemas_dir: str | os.PathLike | None = None) -> Path:
    """Where the schema file of ``architecture`` at ``version`` lives."""
    return resolve_schemas_dir(schemas_dir) / f"{architecture}@{int(version)}.json"


# --------------------------------------------------------------------------- conditions


def _parse_condition(cond: str) -> tuple[str, str, Any]:
    match = _COND_RE.match(cond)
    if match is None:
        raise SchemaFileError(f"optional_when {cond!r} is not a condition; write 'key=value' or 'key!=value'")
    text = match["value"]
    try:
        value = json.loads(text)
    except ValueError:
        value = text  # bare words are strings: "pooling=avg"
    return match["key"], match["op"], value


def _condition_holds(cond: str, config: Mapping[str, Any]) -> bool:
    key, op, value = _parse_condition(cond)
    if key not in config:
        return False  # unknown key: keep the tensor expected rather than silently dropping it
    equal = config[key] == value
    return equal if op == "=" else not equal


def _jsonable(value: Any) -> Any:
    # Normalise tuples to lists etc., so configs compare equal to JSON-parsed values.
    return json.loads(json.dumps(value, sort_keys=True, default=str))


# --------------------------------------------------------------------------- schema objects


def infer_role(name: str) -> str:
    """Guess a tensor's role from the last component of its canonical name."""
    leaf = name.rsplit(".", 1)[-1]
    if leaf in ("kernel", "depthwise_kernel", "pointwise_kernel", "weight"):
        return "weight"
    if leaf == "bias":
        return "bias"
    if leaf in ("gamma", "beta"):
        return "norm"
    if leaf in ("moving_mean", "moving_variance"):
        return "statistic"
    if "token" in leaf or "embed" in leaf:
        return "embedding"
    return "parameter"


@dataclass(frozen=True)
class TensorSpec:
    """One expected tensor: name, shape (None = config-dependent dim), role, condition."""

    name: str
    shape: Shape
    role: str = "parameter"
    optional_when: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(None if d is None else int(d) for d in self.shape))
        if self.optional_when is not None:
            _parse_condition(self.optional_when)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "role": self.role, "optional_when": self.optional_when}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorSpec:
        try:
            name, shape = data["name"], data["shape"]
        except (KeyError, TypeError):
            raise SchemaFileError(f"tensor entry {data!r} needs 'name' and 'shape'") from None
        if not isinstance(name, str) or not name:
            raise SchemaFileError(f"tensor entry has an invalid name: {name!r}")
        if not isinstance(shape, list) or not all(
            d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 0) for d in shape
        ):
            raise SchemaFileError(f"tensor {name!r} has an invalid shape {shape!r} (ints or null)")
        role = data.get("role", "parameter")
        if role not in ROLES:
            raise SchemaFileError(f"tensor {name!r} has unknown role {role!r}; use one of {ROLES}")
        cond = data.get("optional_when")
        if cond is not None and not isinstance(cond, str):
            raise SchemaFileError(f"tensor {name!r}: optional_when must be null or a 'key=value' string")
        return cls(name, tuple(shape), role, cond)


@dataclass
class Schema:
    """Expected tensors of one architecture at one schema version."""

    architecture: str
    version: int
    tensors: list[TensorSpec]
    config: dict[str, Any] = field(default_factory=dict)
    format_version: int = SUPPORTED_FORMAT_VERSION

    def __post_init__(self) -> None:
        self.config = _jsonable(dict(self.config))
        names = [t.name for t in self.tensors]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SchemaFileError(f"schema {self.id} lists tensors more than once: {dupes}")

    @property
    def id(self) -> str:
        """``"<architecture>@<version>"``, the value of the ``schema`` metadata key."""
        return f"{self.architecture}@{self.version}"

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tensors]

    def expected_shapes(self, config: Mapping[str, Any] | None = None) -> dict[str, Shape]:
        """Tensors that exist for ``config`` (schema defaults updated by it), name -> shape."""
        effective = {**self.config, **_jsonable(dict(config or {}))}
        return {
            t.name: t.shape
            for t in self.tensors
            if t.optional_when is None or not _condition_holds(t.optional_when, effective)
        }

    # -- (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture,
            "version": self.version,
            "format_version": self.format_version,
            "config": self.config,
            "tensors": [t.to_dict() for t in self.tensors],
        }

    def to_json(self) -> str:
        """Deterministic JSON text (sorted keys, indent 1, trailing newline)."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=1) + "\n"

    def write(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_json` to ``path`` (a directory gets the canonical file name); returns the file."""
        target = Path(path)
        if target.is_dir():
            target = target / f"{self.id}.json"
        target.write_text(self.to_json(), encoding="utf-8", newline="\n")
        return target

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "schema") -> Schema:
        if not isinstance(data, Mapping):
            raise SchemaFileError(f"{source}: a schema must be a JSON object")
        try:
            arch, version, tensors = data["architecture"], data["version"], data["tensors"]
        except KeyError as exc:
            raise SchemaFileError(f"{source}: missing key {exc.args[0]!r}") from None
        if not isinstance(arch, str) or not isinstance(version, int) or not isinstance(tensors, list):
            raise SchemaFileError(f"{source}: 'architecture' must be a string, 'version' an int, 'tensors' a list")
        config = data.get("config", {})
        if not isinstance(config, dict):
            raise SchemaFileError(f"{source}: 'config' must be an object")
        try:
            specs = [TensorSpec.from_dict(t) for t in tensors]
        except SchemaFileError as exc:
            raise SchemaFileError(f"{source}: {exc}") from None
        return cls(arch, version, specs, config, int(data.get("format_version", SUPPORTED_FORMAT_VERSION)))

    @classmethod
    def from_json(cls, text: str, *, source: str = "schema") -> Schema:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SchemaFileError(f"{source} is not valid JSON ({exc}); regenerate it") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def read(cls, path: str | os.PathLike) -> Schema:
        return cls.from_json(Path(path).read_text(encoding="utf-8"), source=str(path))

    @classmethod
    def from_shapes(
        cls,
        architecture: str,
        version: int,
        shapes: Mapping[str, Any],
        *,
        config: Mapping[str, Any] | None = None,
        roles: Mapping[str, str] | None = None,
        optional_when: Mapping[str, str] | None = None,
    ) -> Schema:
        """Build a schema from name -> shape (e.g. a freshly exported model); roles inferred from names."""
        roles = roles or {}
        optional_when = optional_when or {}
        specs = [
            TensorSpec(name, tuple(shape), roles.get(name, infer_role(name)), optional_when.get(name))
            for name, shape in shapes.items()
        ]
        return cls(architecture, version, specs, dict(config or {}))

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint, *, version: int | None = None, **kwargs: Any) -> Schema:
        """Schema describing the tensors of an opened checkpoint."""
        if ckpt.architecture is None:
            raise MetadataError(f"{ckpt.path} has no architecture metadata to build a schema from")
        version = version if version is not None else (ckpt.schema_version or 1)
        return cls.from_shapes(
            ckpt.architecture, version, {n: ckpt.shape(n) for n in ckpt.names}, config=ckpt.config, **kwargs
        )


# --------------------------------------------------------------------------- lookup


def list_schemas(schemas_dir: str | os.PathLike | None = None) -> dict[str, list[int]]:
    """Architectures with schema files, each with its sorted versions."""
    directory = resolve_schemas_dir(schemas_dir)
    found: dict[str, list[int]] = {}
    if not directory.is_dir():
        return found
    for entry in directory.iterdir():
        match = _FILE_RE.match(entry.name)
        if match and entry.is_file():
            found.setdefault(match["arch"], []).append(int(match["version"]))
    return {arch: sorted(v) for arch, v in sorted(found.items())}


def _known_listing(architecture: str, known: list[str]) -> str:
    lowered = {k.lower(): k for k in known}
    close = [lowered[c] for c in difflib.get_close_matches(architecture.lower(), list(lowered), n=5, cutoff=0.5)]
    ordered = close + [k for k in known if k not in close]
    return ", ".join(ordered) if ordered else "(none)"


def load_schema(
    architecture: str, version: int | None = None, schemas_dir: str | os.PathLike | None = None
) -> Schema:
    """Load ``<schemas_dir>/<architecture>@<version>.json`` (``version=None``: the latest)."""
    directory = resolve_schemas_dir(schemas_dir)
    available = list_schemas(directory)
    if architecture not in available:
        raise UnknownArchitectureError(
            f"no schema for architecture {architecture!r} in {directory}. Known architectures: "
            f"{_known_listing(architecture, list(available))}. Check the spelling, add "
            f"{architecture}@1.json there, or point ${SCHEMAS_DIR_ENV} at the right folder."
        )
    versions = available[architecture]
    if version is None:
        version = versions[-1]
    elif version not in versions:
        raise UnknownArchitectureError(
            f"no schema version {version} for {architecture!r} in {directory} (available: {versions}). "
            "The checkpoint may come from a newer deepvision-toolkit: upgrade it."
        )
    path = directory / f"{architecture}@{version}.json"
    schema = Schema.read(path)
    if schema.architecture != architecture or schema.version != version:
        raise SchemaFileError(
            f"{path} declares {schema.id}, which does not match its file name; regenerate or rename it"
        )
    return schema


# --------------------------------------------------------------------------- validation


def _shape_matches(expected: Shape | None, actual: tuple[int, ...]) -> bool:
    if expected is None:
        return True
    return len(expected) == len(actual) and all(e is None or e == a for e, a in zip(expected, actual))


def _fmt_shape(shape: Shape | None) -> str:
    if shape is None:
        return "any"
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


@dataclass
class ValidationReport:
    """Every difference between actual and expected tensors."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, Shape | None, tuple[int, ...]]] = field(default_factory=list)
    expected_count: int = 0
    subject: str = "tensors"

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        if self.ok:
            return f"{self.subject}: all {self.expected_count} expected tensors present with matching shapes"
        problems = len(self.missing) + len(self.unexpected) + len(self.mismatched)
        lines = [f"{self.subject}: {problems} problem(s)"]
        if self.missing:
            lines.append(f"  missing ({len(self.missing)}):")
            lines += [f"    {n}" for n in self.missing]
        if self.unexpected:
            lines.append(f"  unexpected ({len(self.unexpected)}):")
            lines += [f"    {n}" for n in self.unexpected]
        if self.mismatched:
            lines.append(f"  wrong shape ({len(self.mismatched)}):")
            lines += [f"    {n}: expected {_fmt_shape(e)}, got {_fmt_shape(a)}" for n, e, a in self.mismatched]
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise SchemaMismatchError listing every problem, if there is any."""
        if not self.ok:
            raise SchemaMismatchError(
                f"{self}\nThe tensors do not match the expected layout: check the architecture and config, "
                "and that the exporter/importer name mapping is up to date.",
                self,
            )


def _actual_shapes(actual: Any) -> dict[str, tuple[int, ...]]:
    if isinstance(actual, Checkpoint):
        return {n: actual.shape(n) for n in actual.names}
    if isinstance(actual, Mapping):
        # Values may be shapes or arrays (anything with .shape).
        return {n: tuple(getattr(v, "shape", v)) for n, v in actual.items()}
    raise TypeError(f"validate() needs a Checkpoint or a name -> shape mapping, got {type(actual).__name__}")


def validate(
    actual: Mapping[str, Any] | Checkpoint,
    expected: Mapping[str, Any] | Schema,
    *,
    config: Mapping[str, Any] | None = None,
    raise_on_error: bool = False,
) -> ValidationReport:
    """Compare actual tensors with a schema (or name -> shape mapping) and report every problem.

    ``None`` dims (or a ``None`` shape) in ``expected`` match anything. With a
    Schema, ``optional_when`` conditions use the schema's config updated by
    ``config`` (default: the checkpoint's config).
    """
    shapes = _actual_shapes(actual)
    if isinstance(expected, Schema):
        if config is None and isinstance(actual, Checkpoint):
            config = actual.config
        wanted: dict[str, Shape | None] = dict(expected.expected_shapes(config))
        subject = f"{actual.path if isinstance(actual, Checkpoint) else 'tensors'} vs schema {expected.id}"
    else:
        wanted = {n: None if s is None else tuple(s) for n, s in expected.items()}
        subject = str(actual.path) if isinstance(actual, Checkpoint) else "tensors"
    report = ValidationReport(
        missing=[n for n in wanted if n not in shapes],
        unexpected=[n for n in shapes if n not in wanted],
        mismatched=[(n, wanted[n], shapes[n]) for n in wanted if n in shapes and not _shape_matches(wanted[n], shapes[n])],
        expected_count=len(wanted),
        subject=subject,
    )
    if raise_on_error:
        report.raise_if_failed()
    return report


def validate_checkpoint(
    ckpt: Checkpoint, *, schemas_dir: str | os.PathLike | None = None, raise_on_error: bool = False
) -> ValidationReport:
    """Validate a checkpoint against the schema its metadata names (after migrations)."""
    if ckpt.architecture is None:
        raise MetadataError(
            f"{ckpt.path} has no 'architecture'/'schema' metadata, so there is no schema to check it against"
        )
    schema = load_schema(ckpt.architecture, ckpt.schema_version, schemas_dir)
    return validate(ckpt, schema, raise_on_error=raise_on_error)
