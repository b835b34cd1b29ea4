"""Pretrained weights by one argument: ``weights="imagenet" | TAG | PATH`` on every model factory.

The published weights of every variant are listed in one data file, ``sources.json`` beside this
module: per variant a default tag and its sources (keras.applications files, timm's hub-hosted files),
each with its format, URL, hash, license, the top-1 accuracy its source publishes and its preprocessing.
First use of a tag downloads the file with its ecosystem's own tool (``keras.utils.get_file`` for
keras.applications, ``huggingface_hub.hf_hub_download`` for the hub; plain HTTP(S) for sources added
with :func:`register_pretrained`), checks its hash, converts it once into a portable checkpoint
(:func:`deepvision.convert`) and keeps that in the cache. Every later use, in either backend, loads the
cached portable file: no network, no foreign library.

Environment:
    ``DEEPVISION_HOME``: cache root (default ``~/.cache/deepvision``); ``pretrained/`` holds the
    portable files, ``downloads/`` the downloaded originals. Air-gapped sites copy this folder.
    ``DEEPVISION_KERAS_WEIGHTS_URL``: replaces keras.applications' base URL (a mirror).
    ``HF_ENDPOINT``: the hub mirror (read by huggingface_hub).
    ``DEEPVISION_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``): never touch the network; only the cache is used.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("deepvision")

DEFAULT_TAG = "imagenet"
_SOURCES_FILE = Path(__file__).with_name("sources.json")


class PretrainedError(ValueError):
    """Pretrained weights cannot be had: unknown tag, no published weights, no network, bad hash, ..."""


@dataclass(frozen=True)
class PretrainedSource:
    """One published set of weights of one variant.

    Attributes:
        architecture: the deepvision variant, e.g. ``"ConvNeXtTiny"``.
        tag: e.g. ``"keras:imagenet"`` or ``"timm:convnext_tiny.in12k_ft_in1k"``.
        url: ``https://...`` / ``http://...``, or ``hf://ORG/REPO/FILE`` for a hub-hosted file.
        format: the file's format, as :func:`deepvision.convert` names it (``"keras-applications"``,
            ``"timm"``, ``"portable"``, ...).
        sha256, md5: the file's hash (keras.applications publishes md5 for its older files); ``None``
            for hub files, which the hub addresses by content itself.
        license, top1, dataset: what the source publishes.
        preprocessing: the source's input facts (mean, std, input size, interpolation, crop).
        headless: the file has no classifier (e.g. ImageNet-21k pretraining only).
    """

    architecture: str
    tag: str
    url: str
    format: str
    sha256: str | None = None
    md5: str | None = None
    license: str | None = None
    top1: float | None = None
    dataset: str | None = None
    preprocessing: Mapping[str, Any] = field(default_factory=dict)
    headless: bool = False

    def __str__(self) -> str:
        top1 = f"{self.top1:.1f}%" if self.top1 is not None else "n/a"
        return f"{self.architecture:<18} {self.tag:<48} top-1 {top1:>6}  {self.license or ''}"

    @property
    def resolved_url(self) -> str:
        """The URL with a mirror applied (``DEEPVISION_KERAS_WEIGHTS_URL`` for keras.applications files)."""
        base = _CATALOGUE["keras_base_url"]
        mirror = os.environ.get("DEEPVISION_KERAS_WEIGHTS_URL")
        url = self.url.replace("{keras_base_url}", base)
        if mirror and url.startswith(base):
            url = mirror.rstrip("/") + "/" + url[len(base):]
        return url


def _load_catalogue() -> dict[str, Any]:
    data = json.loads(_SOURCES_FILE.read_text())
    variants: dict[str, dict[str, Any]] = {}
    for name, entry in data["variants"].items():
        sources = {tag: PretrainedSource(architecture=name, tag=tag, **source)
                   for tag, source in entry["sources"].items()}
        variants[name] = {"default": entry["default"], "sources": sources}
    return {"keras_base_url": data["keras_base_url"], "none": set(data["no_published_weights"]),
            "variants": variants}


_CATALOGUE = _load_catalogue()


def register_pretrained(architecture: str, tag: str, *, url: str, sha256: str | None, format: str,
                        license: str | None = None, preprocessing: Mapping[str, Any] | None = None,
                        top1: float | None = None, default: bool = False) -> PretrainedSource:
    """Add a source of weights at run time (e.g. a team's fine-tune on an internal server).

    ``weights=tag`` then works exactly like a built-in tag. ``sha256=None`` is allowed only for
    ``hf://`` URLs (the hub checks content itself). ``default=True`` makes it what ``"imagenet"`` picks.
    """
    from deepvision.conversion import normalize_format
    from deepvision.registry import get_architecture

    get_architecture(architecture)  # a clear error for an unknown name
    if sha256 is None and not url.startswith("hf://"):
        raise PretrainedError(f"register_pretrained({architecture!r}, {tag!r}): sha256 is required for {url}.")
    if sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise PretrainedError(f"sha256 must be 64 lowercase hex digits, got {sha256!r}.")
    source = PretrainedSource(architecture, tag, url, normalize_format(format), sha256=sha256, license=license,
                              top1=top1, preprocessing=dict(preprocessing or {}))
    entry = _CATALOGUE["variants"].setdefault(architecture, {"default": tag, "sources": {}})
    entry["sources"][tag] = source
    if default:
        entry["default"] = tag
    _CATALOGUE["none"].discard(architecture)
    return source


def list_pretrained(pattern: str = "*") -> list[PretrainedSource]:
    """Every known source of every variant matching a shell-style ``pattern``, e.g. ``"ConvNeXt*"``."""
    return [source for name, entry in _CATALOGUE["variants"].items() if fnmatch.fnmatchcase(name, pattern)
            for source in entry["sources"].values()]


def get_source(architecture: str, weights: str) -> PretrainedSource:
    """The source ``weights`` names for ``architecture`` (``"imagenet"`` is the variant's default)."""
    entry = _CATALOGUE["variants"].get(architecture)
    if entry is None:
        why = "has no published weights" if architecture in _CATALOGUE["none"] else "has no registered weights"
        raise PretrainedError(
            f"{architecture} {why}: build it with weights=None (random) or pass a file path; "
            "deepvision.models.register_pretrained() adds a source."
        )
    tag = entry["default"] if weights == DEFAULT_TAG else weights
    if tag not in entry["sources"]:
        raise PretrainedError(
            f"Unknown weights {weights!r} for {architecture}. Available: "
            f"{', '.join([DEFAULT_TAG, *entry['sources']])} (deepvision list-models --pretrained)."
        )
    return entry["sources"][tag]


def home() -> Path:
    """The cache root: ``DEEPVISION_HOME`` or ``~/.cache/deepvision``."""
    return Path(os.environ.get("DEEPVISION_HOME") or Path.home() / ".cache" / "deepvision").expanduser()


def offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("DEEPVISION_OFFLINE",
                                                                                   "HF_HUB_OFFLINE"))


def cached_path(source: PretrainedSource) -> Path:
    """Where the portable checkpoint of ``source`` lives in the cache."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", source.tag)
    return home() / "pretrained" / source.architecture / f"{safe}.safetensors"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # One process fetches and converts; the others wait, then find the cached file.
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(path.suffix + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _valid(path: Path) -> bool:
    import interchange

    if not path.exists():
        return False
    try:
        with interchange.open_checkpoint(path) as ckpt:
            ckpt.verify()  # every tensor's crc32
        return True
    except interchange.InterchangeError:
        return False


def _no_network_hint(source: PretrainedSource, url: str) -> str:
    mirror = "DEEPVISION_KERAS_WEIGHTS_URL" if source.format == "keras-applications" else "HF_ENDPOINT"
    return (f"Cannot fetch {url}. Use a mirror ({mirror}=...), or pre-seed the cache: run "
            f"`deepvision download {source.architecture} --weights {source.tag}` where the network is reachable "
            f"and copy {home()} (DEEPVISION_HOME) here.")


def _hash_ok(path: Path, source: PretrainedSource) -> bool:
    algorithm, expected = ("sha256", source.sha256) if source.sha256 else ("md5", source.md5)
    if expected is None:
        return True
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest() == expected


def _download(source: PretrainedSource, progress: bool = True) -> Path:
    """Fetch the original file of ``source`` into ``downloads/``; hash checked, nothing half-written."""
    url = source.resolved_url
    if offline():
        raise PretrainedError(f"Offline (DEEPVISION_OFFLINE/HF_HUB_OFFLINE) and {source.architecture} "
                              f"{source.tag!r} is not cached. {_no_network_hint(source, url)}")
    downloads = home() / "downloads"
    if url.startswith("hf://"):
        return _hub_download(source, url, downloads)
    name = url.rsplit("/", 1)[-1] or "weights"
    target = downloads / source.architecture / name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if source.format == "keras-applications":
            from deepvision.backend import require_tensorflow

            keras = require_tensorflow()
            path = Path(keras.utils.get_file(name, url, cache_dir=str(downloads), cache_subdir=source.architecture,
                                             file_hash=source.sha256 or source.md5))
        else:
            path = _http_download(url, target, progress)
    except ValueError as err:  # keras.utils.get_file: the hash does not match; it leaves the file behind
        target.unlink(missing_ok=True)
        raise PretrainedError(f"{url}: the downloaded file's hash does not match {source.sha256 or source.md5}; "
                              "it was removed and nothing entered the cache.") from err
    except Exception as err:  # urllib/keras raise many types for "no network"
        target.unlink(missing_ok=True)
        raise PretrainedError(f"{_no_network_hint(source, url)} ({type(err).__name__}: {err})") from err
    if not _hash_ok(path, source):
        path.unlink(missing_ok=True)
        raise PretrainedError(f"{url}: the downloaded file's hash does not match {source.sha256 or source.md5}; "
                              "it was removed and nothing entered the cache.")
    return path


def _http_download(url: str, target: Path, progress: bool) -> Path:
    # For sources registered at run time on plain HTTP(S) servers: stream into a temp file, then rename.
    from urllib.request import Request, urlopen

    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, urlopen(Request(url, headers={"User-Agent": "deepvision"}), timeout=60) as r:
            bar = _progress(r.headers.get("Content-Length"), target.name, progress)
            while chunk := r.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
            bar.close()
        os.replace(tmp, target)
        return target
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _progress(length: str | None, name: str, enabled: bool) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        enabled = False
    total = int(length) if length and length.isdigit() else None
    return tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=not enabled)


def _hub_download(source: PretrainedSource, url: str, downloads: Path) -> Path:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as err:
        raise PretrainedError(f"{source.tag} is hosted on the Hugging Face hub: pip install huggingface_hub "
                              "(or deepvision-toolkit[hub]).") from err
    org, repo, filename = url[len("hf://"):].split("/", 2)
    try:
        return Path(hf_hub_download(f"{org}/{repo}", filename))
    except Exception as err:  # the hub client's errors: offline, missing file, no network
        raise PretrainedError(f"{_no_network_hint(source, url)} ({type(err).__name__}: {err})") from err


def fetch(architecture: str, weights: str = DEFAULT_TAG, *, progress: bool = True) -> Path:
    """The cached portable checkpoint of ``architecture``'s ``weights``, downloading and converting once.

    A damaged cache entry (its checksums fail) is fetched again, once. Two processes asking for the
    same weights at once download them once (a file lock); both get the file.
    """
    source = get_source(architecture, weights)
    path = cached_path(source)
    if _valid(path):
        return path
    with _file_lock(path):
        if _valid(path):  # another process finished while this one waited
            return path
        if path.exists():
            logger.warning("deepvision: the cached %s is damaged; fetching it again", path)
            path.unlink()
        original = _download(source, progress)
        _convert(source, original, path)
    return path


def _convert(source: PretrainedSource, original: Path, path: Path) -> None:
    from deepvision.conversion import convert

    options: dict[str, Any] = {"architecture": source.architecture}
    if source.format == "keras-applications":
        options["config"] = {"include_top": True, "classes": 1000}
    convert(original, path, src_format=source.format, dst_format="portable", **options)


def pretrained_cfg(source: PretrainedSource, file_preprocessing: Mapping[str, Any]) -> dict[str, Any]:
    """What a model loaded with published weights carries as ``model.pretrained_cfg``."""
    return {"architecture": source.architecture, "tag": source.tag, "url": source.resolved_url,
            "license": source.license, "top1": source.top1, "dataset": source.dataset,
            **dict(file_preprocessing), **dict(source.preprocessing)}


def load_weights(architecture: str, backend: str, weights: str, kwargs: Mapping[str, Any]) -> Any:
    """Build ``architecture`` in ``backend`` with ``kwargs`` (backend layout) and the given ``weights``:
    a tag (see :func:`list_pretrained`) or a path to any file :func:`deepvision.convert` reads."""
    import interchange
    from deepvision.backend import require
    from deepvision.portable import load_portable
    from deepvision.registry import to_neutral_config

    backend = require(backend)
    source = None
    if os.path.exists(os.fspath(weights)):
        path = _as_portable(Path(weights), architecture)
    else:
        source = get_source(architecture, weights)
        path = fetch(architecture, weights)
    metadata = interchange.read_metadata(path)
    stored = dict(metadata.get("config") or {})
    file_preprocessing = dict(metadata.get("preprocessing") or {})
    overrides = to_neutral_config(dict(kwargs), backend)
    head_changes = (overrides.get("include_top", stored.get("include_top", True)) is False
                    or overrides.get("classes", stored.get("classes")) != stored.get("classes")
                    or (source is not None and source.headless))
    exclude = ["head.*"] if head_changes else []
    model, report = load_portable(path, backend=backend, config_overrides=overrides, strict=False, exclude=exclude)
    if report.missing or report.unexpected or report.mismatched:
        raise PretrainedError(f"The weights {weights!r} do not fit {architecture} with {dict(kwargs)}:\n{report}")
    if head_changes:
        logger.info("deepvision: %s loaded from %s without its classifier head (the model's own head is "
                    "freshly initialised)", architecture, weights)
    cfg = pretrained_cfg(source, file_preprocessing) if source else {"file": str(weights), **file_preprocessing}
    object.__setattr__(model, "pretrained_cfg", cfg)
    return model


def _as_portable(path: Path, architecture: str) -> Path:
    """A portable checkpoint for a weights file of any format :func:`deepvision.convert` reads."""
    from deepvision.conversion import convert, detect_format

    if detect_format(path) == "portable":
        return path
    converted = home() / "converted" / architecture / (path.name + ".safetensors")
    if not _valid(converted) or converted.stat().st_mtime < path.stat().st_mtime:
        with _file_lock(converted):
            convert(path, converted, architecture=architecture, dst_format="portable")
    return converted


def download(architecture: str, weights: str = DEFAULT_TAG) -> Path:
    """Fill the cache ahead of time (``deepvision download NAME --weights TAG``); returns the cached file."""
    return fetch(architecture, weights)


__all__ = ["PretrainedError", "PretrainedSource", "download", "fetch", "get_source", "home", "list_pretrained",
           "load_weights", "register_pretrained"]
