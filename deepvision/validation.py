"""``deepvision validate``: every problem of a checkpoint file, one line each, framework-free.

``inspect`` describes any file; ``validate`` is the gate for pipelines. A file passes when
it is an interchange checkpoint of a supported format version, every tensor matches its
CRC-32, and its tensor names and shapes match the checked-in schema of its architecture.
Anything else is a :class:`Problem` with a stable ``code`` (for ``--json`` consumers) and a
one-line ``message`` that names the fix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import interchange

__all__ = ["FileReport", "Problem", "names_depend_on_other_config", "validate_file", "validate_files"]

# Errors raised while opening a file, most specific first, with their problem code.
_OPEN_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (interchange.TruncatedFileError, "truncated"),
    (interchange.NotSafetensorsError, "not-safetensors"),
    (interchange.ForeignCheckpointError, "foreign"),
    (interchange.FormatVersionError, "format-version"),
    (interchange.IntegrityError, "integrity"),
    (interchange.MetadataError, "metadata"),
    (interchange.MigrationError, "migration"),
    (interchange.InterchangeError, "invalid"),
)


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file. ``code`` is stable (e.g. ``"checksum"``); ``message`` is one line."""

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass
class FileReport:
    """What ``validate`` found in one file; ``ok`` when ``problems`` is empty."""

    file: str
    architecture: str | None = None
    schema: str | None = None
    tensors: int | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """``FILE: CODE: message`` per problem, or one ``FILE: OK ...`` line."""
        if self.problems:
            return [f"{self.file}: {p.code}: {p.message}" for p in self.problems]
        notes = "".join(f"; {n}" for n in self.notes)
        return [f"{self.file}: OK ({self.schema}, {self.tensors} tensors, checksums and schema match{notes})"]

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "ok": self.ok, "architecture": self.architecture, "schema": self.schema,
                "tensors": self.tensors, "problems": [p.to_dict() for p in self.problems], "notes": self.notes}


def names_depend_on_other_config(ckpt: interchange.Checkpoint, schema: interchange.Schema) -> bool:
    """True when a generic architecture's file uses a config other than its schema's reference config.

    Blocks and generic models (e.g. ``ViT`` with any depth) name their tensors by config, so
    their schema describes only the reference config and cannot check other files' names.
    """
    from deepvision.registry import get_architecture

    try:
        generic = not get_architecture(ckpt.architecture).fixed
    except KeyError:
        return False
    return generic and any(schema.config.get(k) != v for k, v in (ckpt.config or {}).items())


def _open_problem(path: str, err: Exception) -> Problem:
    if isinstance(err, OSError):
        return Problem("unreadable", f"cannot read the file ({err.strerror or err}); check the path")
    for cls, code in _OPEN_ERRORS:
        if isinstance(err, cls):
            text = str(err)
            for spelling in dict.fromkeys((path, str(Path(path)))):  # the line already starts with the path
                text = text.replace(f"{spelling}: ", "").replace(f"{spelling} ", "the file ")
            return Problem(code, _one_line(text))
    raise err


def validate_file(path: str | os.PathLike, *, schemas_dir: str | os.PathLike | None = None) -> FileReport:
    """Check one file: format, format version, checksums, architecture and schema.

    Never raises for a bad file: every problem is in the returned report.
    """
    name = os.fspath(path)
    report = FileReport(name)
    try:
        ckpt = interchange.Checkpoint(name, verify=False)
    except (OSError, interchange.InterchangeError) as err:
        report.problems.append(_open_problem(name, err))
        return report
    with ckpt:
        report.architecture = ckpt.architecture
        report.tensors = len(ckpt)
        try:
            ckpt.verify()
        except interchange.DigestMismatchError as err:
            report.problems += [
                Problem("checksum", f"tensor {n!r} does not match its CRC-32: the file is corrupt; "
                                    "re-download or re-export it")
                for n in err.corrupted
            ]
        if ckpt.architecture is None:
            report.problems.append(Problem(
                "metadata", "no 'architecture'/'schema' metadata, so there is no schema to check the tensors "
                            "against; re-export the file with deepvision-toolkit"))
            return report
        try:
            schema = interchange.load_schema(ckpt.architecture, ckpt.schema_version, schemas_dir)
        except interchange.UnknownArchitectureError as err:
            report.problems.append(Problem("unknown-architecture", _one_line(err)))
            return report
        except interchange.SchemaFileError as err:
            report.problems.append(Problem("schema-file", _one_line(err)))
            return report
        report.schema = schema.id
        result = interchange.validate(ckpt, schema, config=ckpt.config or {})
        if not result.ok and names_depend_on_other_config(ckpt, schema):
            report.notes.append(f"names not checked: {schema.id} describes the reference config of a generic "
                                "architecture and this file's config differs")
            return report
        # One line per tensor; the fix is the same for all: check the recorded architecture and config.
        report.problems += [Problem("schema-mismatch", f"missing tensor {n!r} (expected by {schema.id})")
                            for n in result.missing]
        report.problems += [Problem("schema-mismatch", f"unexpected tensor {n!r} (not in {schema.id})")
                            for n in result.unexpected]
        report.problems += [
            Problem("schema-mismatch", f"tensor {n!r} has shape {list(actual)}, {schema.id} expects "
                                       f"{'any' if want is None else ['?' if d is None else d for d in want]}")
            for n, want, actual in result.mismatched
        ]
    return report


def validate_files(paths: Sequence[str | os.PathLike], *, as_json: bool = False) -> tuple[str, int]:
    """The text (or JSON) ``deepvision validate`` prints for ``paths``, and its exit code (0 or 1)."""
    reports = [validate_file(p) for p in paths]
    if as_json:
        text = json.dumps({"ok": all(r.ok for r in reports), "files": [r.to_dict() for r in reports]}, indent=1)
    else:
        text = "\n".join(line for r in reports for line in r.lines())
    return text, 0 if all(r.ok for r in reports) else 1
