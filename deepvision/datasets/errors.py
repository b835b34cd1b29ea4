"""Errors raised by the dataset loaders (no framework imports)."""

from __future__ import annotations


class DatasetError(Exception):
    """Base class of every dataset-loading error."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The dataset file is missing and downloading was not allowed."""


class DatasetDownloadError(DatasetError, OSError):
    """Downloading the dataset failed; nothing was written at the destination."""


class InvalidDatasetError(DatasetError, ValueError):
    """The dataset file exists but is corrupt or has the wrong structure; none of it is used."""
