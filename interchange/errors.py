"""Error classes of the interchange format.

Every error subclasses :class:`InterchangeError`, and every message says what
is wrong *and* what to do about it, because these errors usually reach users
of the command line, not developers.
"""

from __future__ import annotations

__all__ = [
    "InterchangeError",
    "NotSafetensorsError",
    "HeaderTooLargeError",
    "TruncatedFileError",
    "ForeignCheckpointError",
    "FormatVersionError",
    "MetadataError",
    "IntegrityError",
    "DigestMismatchError",
    "MissingTensorError",
    "UnknownArchitectureError",
    "SchemaFileError",
    "SchemaMismatchError",
    "MigrationError",
]


class InterchangeError(Exception):
    """Base class of every error raised by :mod:`interchange`."""


class NotSafetensorsError(InterchangeError):
    """The file is not a (well-formed) safetensors file."""


class HeaderTooLargeError(NotSafetensorsError):
    """The header length exceeds ``MAX_HEADER_BYTES``."""


class TruncatedFileError(InterchangeError):
    """The file is shorter than its header says: a partial download or copy."""


class ForeignCheckpointError(InterchangeError):
    """A valid safetensors file that was not written in the interchange format."""


class FormatVersionError(InterchangeError):
    """The file's ``format_version`` is newer than this library supports, or invalid."""


class MetadataError(InterchangeError):
    """A known metadata key holds a value of the wrong type or form."""


class IntegrityError(InterchangeError):
    """Checksums are missing or malformed, so the file's integrity cannot be checked."""


class DigestMismatchError(IntegrityError):
    """One or more tensors do not match their recorded checksum."""

    def __init__(self, message: str, corrupted: list[str] | None = None) -> None:
        super().__init__(message)
        self.corrupted: list[str] = list(corrupted or [])


class MissingTensorError(InterchangeError, KeyError):
    """A tensor name is not in the checkpoint."""

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name

    # KeyError.__str__ shows repr(message) (quotes and escaped newlines);
    # show the plain message like every other InterchangeError.
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownArchitectureError(InterchangeError):
    """No schema file exists for the architecture (or for the requested version)."""


class SchemaFileError(InterchangeError):
    """A schema file is malformed."""


class SchemaMismatchError(InterchangeError):
    """Tensors do not match the expected schema; ``report`` holds every problem."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class MigrationError(InterchangeError):
    """Migrations are inconsistent, or no chain leads to the newest schema version."""
