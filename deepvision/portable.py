"""Save and load any deepvision model or block through the canonical interchange format.

Every conversion goes backend -> canonical -> backend: :func:`save_portable` streams a model's
tensors (canonical names and layouts) into one safetensors file, :func:`load_portable` rebuilds the
architecture from the stored config in the requested backend and fills it tensor by tensor.
"""

from __future__ import annotations

import fnmatch
import importlib
import logging
import os
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import interchange
from deepvision import __version__
from deepvision.adapters import Slot, iter_slots
from deepvision.backend import PYTORCH, TENSORFLOW, backend_of, require
from deepvision.registry import (
    Architecture,
    Resolved,
    build_from_neutral_config,
    config_of,
    find,
    get_architecture,
    resolve,
)

logger = logging.getLogger("deepvision")

FLOAT_DTYPES = interchange.FLOAT_DTYPES

# The frameworks whose versions a checkpoint records, by the backend (or ecosystem) its weights come
# from; python and numpy are always recorded. Importers of files add the versions the file names.
_SOURCE_FRAMEWORKS = {
    TENSORFLOW: ("tensorflow", "keras"),
    "keras-applications": ("tensorflow", "keras"),
    PYTORCH: ("torch",),
}


class PortableLoadError(ValueError):
    """A checkpoint does not fit the model it is loaded into."""


@dataclass
class LoadReport:
    """What :func:`load_portable` did: tensors missing from the file, unexpected in it, mis-shaped,
    excluded by pattern, and tensors adapted to a new shape (e.g. a resampled position embedding)."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    adapted: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    loaded: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        lines = [f"loaded {self.loaded} tensors"]
        for label, items in (("missing from the file", self.missing), ("unexpected in the file", self.unexpected)):
            if items:
                lines.append(f"{len(items)} {label}: {', '.join(items[:10])}{' ...' if len(items) > 10 else ''}")
        for name, model_shape, file_shape in self.mismatched:
            lines.append(f"shape mismatch {name}: model {model_shape}, file {file_shape}")
        for name, file_shape, model_shape in self.adapted:
            lines.append(f"adapted {name}: {file_shape} -> {model_shape}")
        if self.excluded:
            lines.append(f"{len(self.excluded)} excluded by pattern")
        return "\n".join(lines)


# Shape adapters: called when a tensor's shape in the file differs from the model's, e.g. to resample
# a ViT position embedding to another patch grid. Each returns the adapted array or None to decline.
ShapeAdapter = Callable[[str, np.ndarray, tuple, Mapping[str, Any], Mapping[str, Any]], "np.ndarray | None"]
_SHAPE_ADAPTERS: list[ShapeAdapter] = []


def register_shape_adapter(adapter: ShapeAdapter) -> ShapeAdapter:
    """Register ``adapter(name, array, target_shape, file_config, model_config) -> array | None``."""
    _SHAPE_ADAPTERS.append(adapter)
    return adapter


def framework_versions(source_backend: str, extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The ``framework_versions`` every checkpoint records: python, numpy, the frameworks of
    ``source_backend`` (tensorflow + keras, or torch) and ``extra`` (e.g. the timm and torch versions
    a timm file names; ``None`` values are left out)."""
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for module in _SOURCE_FRAMEWORKS.get(source_backend, ()):
        # Only called once the source's framework is in use, so this imports nothing new.
        versions[module] = importlib.import_module(module).__version__
    versions.update({k: str(v) for k, v in (extra or {}).items() if v})
    return versions


def checkpoint_metadata(
    arch: Architecture | str,
    *,
    config: Mapping[str, Any],
    source_backend: str,
    preprocessing: Mapping[str, Any] | None = None,
    dtype: str | None = None,
    extra: Mapping[str, Any] | None = None,
    versions: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """THE ``__metadata__`` of a canonical checkpoint, for :func:`save_portable` and every importer.

    Args:
        arch: the registered architecture (or its name).
        config: backend-neutral constructor config (``input_shape`` channels-last).
        source_backend: where the weights come from: ``"tensorflow"``, ``"pytorch"``, ``"timm"``,
            ``"keras-applications"``, ``"huggingface"``, ...
        preprocessing: the input facts (mean, std, value range, ...); default the architecture's.
            ``input_size`` (channels-last ``[H, W, C]``) is taken from ``config["input_shape"]``
            unless given here (e.g. timm's ``pretrained_cfg``).
        dtype: recorded as ``dtype`` if given; otherwise the writer derives it from the tensors.
        extra: further keys (e.g. ``timm``: the source model's name and kwargs).
        versions: versions of frameworks the source file names, added to :func:`framework_versions`.

    Returns:
        The metadata dict to pass to ``interchange.write_checkpoint`` / :func:`write_slots`.
    """
    arch = arch if isinstance(arch, Architecture) else get_architecture(arch)
    config = dict(config)
    facts = dict(arch.preprocessing if preprocessing is None else preprocessing)
    # The model's own input size beats the architecture's default; a caller's explicit facts (a source's
    # pretrained_cfg) are kept as given.
    if config.get("input_shape") and (preprocessing is None or "input_size" not in facts):
        facts["input_size"] = list(config["input_shape"])
    meta = {
        "architecture": arch.name,
        "schema": arch.schema,
        "config": config,
        "source_backend": source_backend,
        "library_version": __version__,
        "framework_versions": framework_versions(source_backend, versions),
        "preprocessing": facts,
    }
    if dtype is not None:
        meta["dtype"] = dtype
    meta.update(extra or {})
    return meta


def ensure_built(obj: Any, arch: Architecture, config: Mapping[str, Any]) -> Any:
    """Create the weights of a Keras block that has not been called yet (PyTorch creates them eagerly)."""
    if backend_of(obj) == TENSORFLOW and not obj.built:
        if arch.build_shape is None:
            raise ValueError(f"{arch.name} is not built: call it on an input once.")
        import keras

        obj(keras.KerasTensor((None, *arch.build_shape(config))))
    return obj


def portable_metadata(obj: Any, *, dtype: str | None = None, extra: Mapping[str, Any] | None = None,
                      resolved: Resolved | None = None) -> dict:
    """The ``__metadata__`` deepvision writes for the model or block ``obj`` (see :func:`checkpoint_metadata`)."""
    resolved = resolved or resolve(obj)
    return checkpoint_metadata(resolved.architecture, config=resolved.config, source_backend=resolved.backend,
                               dtype=dtype, extra=extra)


def _check_dtype(dtype: str | None) -> None:
    if dtype is not None and dtype not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be one of {FLOAT_DTYPES} or None, got {dtype!r}")


def stored_dtype(dtype: str, cast_to: str | None) -> str:
    """The dtype a tensor of ``dtype`` is stored in when floating tensors are cast to ``cast_to``."""
    return cast_to if cast_to is not None and dtype in FLOAT_DTYPES else dtype


def cast_array(array: np.ndarray, dtype: str) -> np.ndarray:
    """``array`` as ``dtype`` (a numpy or ml_dtypes name), without a copy when it already is."""
    if str(array.dtype) == dtype:
        return array
    import ml_dtypes

    return array.astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype), copy=False)


def write_slots(path: str | os.PathLike, slots: Sequence[Slot], metadata: Mapping[str, Any],
                dtype: str | None = None) -> Path:
    """Stream ``slots`` into a checkpoint at ``path`` (atomic: temp file, then rename).

    ``dtype`` casts the floating-point tensors; the file's ``dtype`` entry is derived from the
    stored tensors by the writer (unless ``metadata`` names it).
    """
    def entry(slot: Slot) -> interchange.TensorEntry:
        stored = stored_dtype(slot.dtype, dtype)
        return interchange.TensorEntry(slot.name, slot.shape, stored, lambda: cast_array(slot.read(), stored))

    interchange.write_checkpoint(path, [entry(s) for s in slots], dict(metadata))
    return Path(path)


def save_portable(model_or_layer: Any, path: str | os.PathLike, *, dtype: str | None = None) -> Path:
    """Write a deepvision model or block of either backend as a portable checkpoint.

    Args:
        model_or_layer: a deepvision ``keras.Model``/``keras.layers.Layer`` or ``torch.nn.Module``.
        path: the ``.safetensors`` file to write; written atomically.
        dtype: ``None`` keeps each tensor's dtype; ``"float32"``, ``"float16"``, ``"bfloat16"`` or
            ``"float64"`` casts the floating-point tensors.

    Returns:
        The path written.
    """
    _check_dtype(dtype)
    resolved = resolve(model_or_layer)
    ensure_built(model_or_layer, resolved.architecture, resolved.config)
    slots = list(iter_slots(model_or_layer))
    return write_slots(path, slots, portable_metadata(model_or_layer, resolved=resolved), dtype)


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def load_into(model: Any, ckpt: interchange.Checkpoint, *, strict: bool = True,
              exclude: Sequence[str] = (), file_config: Mapping[str, Any] | None = None,
              model_config: Mapping[str, Any] | None = None) -> LoadReport:
    """Copy the tensors of an open checkpoint into ``model`` (any backend), tensor by tensor.

    ``file_config``/``model_config`` (backend-neutral) are what shape adapters see; they default to
    the checkpoint's config and the model's own (computed here if the caller has not resolved it).
    """
    slots = {s.name: s for s in iter_slots(model)}
    report = LoadReport()
    if model_config is None:
        model_config = config_of(model) if hasattr(model, "get_config") else {}
    file_config = file_config if file_config is not None else (ckpt.config or {})
    # A features-only model (deepvision.models.features) lacks the classifier's head and later
    # blocks: their tensors in a classifier's file are excluded, not unexpected.
    exclude = (*exclude, *(f"{prefix}.*" for prefix in getattr(model, "pruned_modules", ()) or ()))
    names = set(ckpt.names)
    report.excluded = sorted(n for n in set(slots) | names if _matches(n, exclude))
    report.missing = [n for n in slots if n not in names and n not in report.excluded]
    report.unexpected = [n for n in ckpt.names if n not in slots and n not in report.excluded]
    plan = []
    for name, slot in slots.items():
        if name not in names or name in report.excluded:
            continue
        file_shape = tuple(ckpt.shape(name))
        if file_shape == slot.shape:
            plan.append((slot, None))
            continue
        array = ckpt.get(name)
        for adapter in _SHAPE_ADAPTERS:
            adapted = adapter(name, array, slot.shape, file_config, model_config)
            if adapted is not None:
                report.adapted.append((name, file_shape, slot.shape))
                plan.append((slot, adapted))
                break
        else:
            report.mismatched.append((name, slot.shape, file_shape))
    if strict and not report.ok:
        raise PortableLoadError(f"Checkpoint {ckpt.path} does not fit the model:\n{report}\n{mismatch_hint(report)}".rstrip())
    for slot, adapted in plan:
        slot.write(adapted if adapted is not None else ckpt.get(slot.name))
        report.loaded += 1
    for name, file_shape, model_shape in report.adapted:
        logger.warning("deepvision: adapted %s from %s to %s", name, file_shape, model_shape)
    return report


def mismatch_hint(report: LoadReport) -> str:
    """How to fix the mismatches in ``report`` (e.g. another class count), or ``""``."""
    if any(n.startswith("head.") for n, _, _ in report.mismatched):
        return (" The classifier head differs (another class count): pass exclude=['head.*'] to keep the"
                " model's own head.")
    return ""


def load_portable(
    path: str | os.PathLike,
    backend: str | None = None,
    *,
    model: Any = None,
    strict: bool = True,
    exclude: Sequence[str] | None = None,
    config_overrides: Mapping[str, Any] | None = None,
) -> Any:
    """Load a portable checkpoint into a model of ``backend``.

    A model built here comes in inference mode, as transformers' ``from_pretrained`` does: a
    PyTorch one is returned after ``.eval()`` (BatchNorm uses its moving statistics, dropout is
    off); call ``.train()`` to fine-tune. A ``model`` passed in keeps its mode.

    Args:
        path: a ``.safetensors`` file written by :func:`save_portable` (or an importer).
        backend: ``"tensorflow"`` or ``"pytorch"`` (aliases allowed); taken from ``model`` if given.
        model: load into this model instead of building one from the stored config.
        strict: raise :class:`PortableLoadError` on any missing, unexpected or mis-shaped tensor.
            With ``strict=False`` the call returns ``(model, LoadReport)`` instead.
        exclude: glob patterns of canonical names to leave alone (e.g. ``["head.*"]`` for a new head).
        config_overrides: changes to the stored config when building (e.g. ``{"input_shape": [160, 160, 3]}``
            or ``{"classes": 10}``), channels-last.

    Returns:
        The model (strict), or ``(model, report)`` (``strict=False``).
    """
    with interchange.open_checkpoint(path) as ckpt:
        file_config = dict(ckpt.config or {})
        built = model is None
        if built:
            if ckpt.architecture is None:
                raise PortableLoadError(f"{path} names no architecture; pass model=...")
            arch = get_architecture(ckpt.architecture)
            backend = require(backend)
            model = build_from_neutral_config(arch, {**file_config, **(config_overrides or {})}, backend)
            model_config = config_of(model)
            ensure_built(model, arch, model_config)
        else:
            if backend is not None and require(backend) != backend_of(model):
                raise ValueError(f"backend={backend!r} but the model is a {backend_of(model)} model.")
            resolved = find(model)  # None: not a registered architecture, loaded by canonical names alone
            model_config = None
            if resolved is not None:
                model_config = resolved.config
                ensure_built(model, resolved.architecture, model_config)
        report = load_into(model, ckpt, strict=strict, exclude=tuple(exclude or ()), file_config=file_config,
                           model_config=model_config)
    if built:
        _inference_mode(model)
    return model if strict else (model, report)


def to_backend(obj: Any, backend: str) -> Any:
    """The counterpart of a deepvision model or block in ``backend``, through the canonical format.

    The tensors travel as canonical arrays in memory (what a portable file holds) rather than
    through a file: the same adapters on both sides, no pairwise mapping. A PyTorch result comes in
    inference mode (``.eval()``), like a model from :func:`load_portable`.
    """
    return _convert(obj, resolve(obj), require(backend))


def _convert(obj: Any, resolved: Resolved, backend: str) -> Any:
    arch, config = resolved.architecture, resolved.config
    target = build_from_neutral_config(arch, config, backend)
    ensure_built(target, arch, config)
    ensure_built(obj, arch, config)
    source = {s.name: s for s in iter_slots(obj)}
    dest = {s.name: s for s in iter_slots(target)}
    if source.keys() != dest.keys():
        raise PortableLoadError(
            f"{arch.name}: the backends disagree on canonical names: only in source "
            f"{sorted(source.keys() - dest.keys())[:5]}, only in target {sorted(dest.keys() - source.keys())[:5]}"
        )
    for name, slot in dest.items():
        slot.write(source[name].read())
    _inference_mode(target)
    return target


def _inference_mode(model: Any) -> None:
    # A loaded or converted PyTorch module starts in the mode its weights are used in: inference
    # (Keras layers have no mode; `training` is a call argument there).
    if backend_of(model) == PYTORCH:
        model.eval()


def portable_converters(architecture: str) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """The seed's component API for one block: ``(tf_to_pt, pt_to_tf)``, through the canonical format."""

    def tf_to_pt(layer: Any) -> Any:
        return _convert(layer, _expect(layer, TENSORFLOW, architecture), PYTORCH)

    def pt_to_tf(layer: Any) -> Any:
        return _convert(layer, _expect(layer, PYTORCH, architecture), TENSORFLOW)

    tf_to_pt.__doc__ = f"A PyTorch {architecture} with the weights of a TensorFlow one (through the canonical format)."
    pt_to_tf.__doc__ = f"A TensorFlow {architecture} with the weights of a PyTorch one (through the canonical format)."
    return tf_to_pt, pt_to_tf


def _expect(layer: Any, backend: str, architecture: str) -> Resolved:
    if backend_of(layer) != backend:
        raise TypeError(f"Expected a {backend} {architecture}, got a {backend_of(layer)} {type(layer).__name__}.")
    resolved = resolve(layer)
    if resolved.architecture.name != architecture:
        raise TypeError(f"Expected a {architecture}, got a {resolved.architecture.name}.")
    return resolved
