"""Save and load any deepvision model or block through the canonical interchange format.

Every conversion goes backend -> canonical -> backend: :func:`save_portable` streams a model's
tensors (canonical names and layouts) into one safetensors file, :func:`load_portable` rebuilds the
architecture from the stored config in the requested backend and fills it tensor by tensor.
"""

from __future__ import annotations

import fnmatch
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
    architecture_of,
    build_from_neutral_config,
    config_of,
    get_architecture,
)

logger = logging.getLogger("deepvision")

_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


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


def _framework_versions(backend: str) -> dict[str, str]:
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    if backend == TENSORFLOW:
        import keras
        import tensorflow as tf

        versions.update(tensorflow=tf.__version__, keras=keras.__version__)
    elif backend == PYTORCH:
        import torch

        versions["torch"] = torch.__version__
    return versions


def ensure_built(obj: Any, arch: Architecture, config: Mapping[str, Any]) -> Any:
    """Create the weights of a Keras block that has not been called yet (PyTorch creates them eagerly)."""
    if backend_of(obj) == TENSORFLOW and not obj.built:
        if arch.build_shape is None:
            raise ValueError(f"{arch.name} is not built: call it on an input once.")
        import keras

        obj(keras.KerasTensor((None, *arch.build_shape(config))))
    return obj


def _cast(array: np.ndarray, dtype: str | None) -> np.ndarray:
    if dtype is None or str(array.dtype) not in _FLOAT_DTYPES:
        return array
    import ml_dtypes

    return array.astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype, copy=False)


def portable_metadata(obj: Any, *, dtype: str | None = None, extra: Mapping[str, Any] | None = None) -> dict:
    """The ``__metadata__`` deepvision writes for ``obj`` (architecture, config, versions, ...)."""
    arch = architecture_of(obj)
    backend = backend_of(obj)
    preprocessing = dict(arch.preprocessing)
    config = config_of(obj)
    if preprocessing and config.get("input_shape"):
        preprocessing["input_size"] = list(config["input_shape"])
    meta = {
        "architecture": arch.name,
        "schema": arch.schema,
        "config": config,
        "source_backend": backend,
        "library_version": __version__,
        "framework_versions": _framework_versions(backend),
        "preprocessing": preprocessing,
    }
    if dtype is not None:
        meta["dtype"] = dtype
    meta.update(extra or {})
    return meta


def write_slots(path: str | os.PathLike, slots: Sequence[Slot], metadata: Mapping[str, Any],
                dtype: str | None = None) -> Path:
    """Stream ``slots`` into a checkpoint at ``path`` (atomic: temp file, then rename)."""
    def entry(slot: Slot) -> interchange.TensorEntry:
        stored = slot.dtype if dtype is None or slot.dtype not in _FLOAT_DTYPES else dtype
        return interchange.TensorEntry(slot.name, slot.shape, stored, lambda: _cast(slot.read(), dtype))

    dtypes = {(dtype if dtype and s.dtype in _FLOAT_DTYPES else s.dtype) for s in slots}
    meta = {"dtype": dtypes.pop() if len(dtypes) == 1 else "mixed", **metadata}
    interchange.write_checkpoint(path, [entry(s) for s in slots], meta)
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
    if dtype is not None and dtype not in _FLOAT_DTYPES:
        raise ValueError(f"dtype must be one of {_FLOAT_DTYPES} or None, got {dtype!r}")
    arch = architecture_of(model_or_layer)
    ensure_built(model_or_layer, arch, config_of(model_or_layer))
    slots = list(iter_slots(model_or_layer))
    return write_slots(path, slots, portable_metadata(model_or_layer, dtype=dtype), dtype)


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def load_into(model: Any, ckpt: interchange.Checkpoint, *, strict: bool = True,
              exclude: Sequence[str] = (), file_config: Mapping[str, Any] | None = None) -> LoadReport:
    """Copy the tensors of an open checkpoint into ``model`` (any backend), tensor by tensor."""
    slots = {s.name: s for s in iter_slots(model)}
    report = LoadReport()
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
        hint = ""
        if any(n.startswith("head.") for n, _, _ in report.mismatched):
            hint = " The classifier head differs (another class count): pass exclude=['head.*'] to keep the model's own head."
        raise PortableLoadError(f"Checkpoint {ckpt.path} does not fit the model:\n{report}\n{hint}".rstrip())
    for slot, adapted in plan:
        slot.write(adapted if adapted is not None else ckpt.get(slot.name))
        report.loaded += 1
    for name, file_shape, model_shape in report.adapted:
        logger.warning("deepvision: adapted %s from %s to %s", name, file_shape, model_shape)
    return report


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
        config = dict(ckpt.config or {})
        if model is None:
            if ckpt.architecture is None:
                raise PortableLoadError(f"{path} names no architecture; pass model=...")
            arch = get_architecture(ckpt.architecture)
            build_config = {**config, **(config_overrides or {})}
            model = build_from_neutral_config(arch.name, build_config, require(backend))
            ensure_built(model, arch, build_config)
        else:
            if backend is not None and require(backend) != backend_of(model):
                raise ValueError(f"backend={backend!r} but the model is a {backend_of(model)} model.")
            try:
                ensure_built(model, architecture_of(model), config_of(model))
            except TypeError:
                pass  # not a registered architecture: load by names alone
        report = load_into(model, ckpt, strict=strict, exclude=tuple(exclude or ()), file_config=config)
    return model if strict else (model, report)


def to_backend(obj: Any, backend: str) -> Any:
    """The counterpart of a deepvision model or block in ``backend``, through the canonical format.

    The tensors travel as canonical arrays in memory (what a portable file holds) rather than
    through a file: the same adapters on both sides, no pairwise mapping.
    """
    backend = require(backend)
    arch = architecture_of(obj)
    config = config_of(obj)
    target = build_from_neutral_config(arch.name, config, backend)
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
    _match_mode(obj, target)
    return target


def _match_mode(source: Any, target: Any) -> None:
    # A converted PyTorch module starts in the mode its source is used in: inference.
    if backend_of(target) == PYTORCH:
        target.eval()


def portable_converters(architecture: str) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """The seed's component API for one block: ``(tf_to_pt, pt_to_tf)``, through the canonical format."""

    def tf_to_pt(layer: Any) -> Any:
        _expect(layer, TENSORFLOW, architecture)
        return to_backend(layer, PYTORCH)

    def pt_to_tf(layer: Any) -> Any:
        _expect(layer, PYTORCH, architecture)
        return to_backend(layer, TENSORFLOW)

    tf_to_pt.__doc__ = f"A PyTorch {architecture} with the weights of a TensorFlow one (through the canonical format)."
    pt_to_tf.__doc__ = f"A TensorFlow {architecture} with the weights of a PyTorch one (through the canonical format)."
    return tf_to_pt, pt_to_tf


def _expect(layer: Any, backend: str, architecture: str) -> None:
    if backend_of(layer) != backend:
        raise TypeError(f"Expected a {backend} {architecture}, got a {backend_of(layer)} {type(layer).__name__}.")
    found = architecture_of(layer).name
    if found != architecture:
        raise TypeError(f"Expected a {architecture}, got a {found}.")
