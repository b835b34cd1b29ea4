"""deepvision interchange: the backend-neutral checkpoint format (one safetensors file).

Never imports a deep learning framework or ``deepvision``. The format, and what
this package depends on, are specified in SPEC.md.
"""

from __future__ import annotations

from ._format import (
    CHECKSUM_ALGORITHM,
    FLOAT_DTYPES,
    FORMAT_NAME,
    MAX_HEADER_BYTES,
    SUPPORTED_FORMAT_VERSION,
    Metadata,
)
from .errors import (
    DigestMismatchError,
    ForeignCheckpointError,
    FormatVersionError,
    HeaderTooLargeError,
    IntegrityError,
    InterchangeError,
    MetadataError,
    MigrationError,
    MissingTensorError,
    NotSafetensorsError,
    SchemaFileError,
    SchemaMismatchError,
    TruncatedFileError,
    UnknownArchitectureError,
)
from .migrations import (
    Migration,
    latest_version,
    migration_chain,
    register_migration,
    registered_migrations,
    unregister_migration,
)
from .reader import Checkpoint, open_checkpoint, read_metadata
from .schema import (
    ROLES,
    Schema,
    TensorSpec,
    ValidationReport,
    list_schemas,
    load_schema,
    resolve_schemas_dir,
    validate,
    validate_checkpoint,
)
from .writer import TensorEntry, write_checkpoint

__all__ = [
    "CHECKSUM_ALGORITHM",
    "FLOAT_DTYPES",
    "FORMAT_NAME",
    "MAX_HEADER_BYTES",
    "ROLES",
    "SUPPORTED_FORMAT_VERSION",
    "Checkpoint",
    "DigestMismatchError",
    "ForeignCheckpointError",
    "FormatVersionError",
    "HeaderTooLargeError",
    "IntegrityError",
    "InterchangeError",
    "Metadata",
    "MetadataError",
    "Migration",
    "MigrationError",
    "MissingTensorError",
    "NotSafetensorsError",
    "Schema",
    "SchemaFileError",
    "SchemaMismatchError",
    "TensorEntry",
    "TensorSpec",
    "TruncatedFileError",
    "UnknownArchitectureError",
    "ValidationReport",
    "latest_version",
    "list_schemas",
    "load_schema",
    "migration_chain",
    "open_checkpoint",
    "read_metadata",
    "register_migration",
    "registered_migrations",
    "resolve_schemas_dir",
    "unregister_migration",
    "validate",
    "validate_checkpoint",
    "write_checkpoint",
]
