"""timm convolutional families (``convnext_*``, ``tf_efficientnetv2_*``) <-> canonical checkpoints.

The rule-driven import and export shared by the family maps in ``timm_convnext.py`` and
``timm_efficientnetv2.py`` (each: ``matches(shapes)``, ``infer_config(shapes, timm_kwargs)``,
``rules_for(architecture, config)``, ``timm_model_args(architecture, config)``, ``PRETRAINED_CFG``).
:func:`deepvision.importers.timm.import_timm` and :func:`~deepvision.importers.timm.export_timm`
dispatch here for these families; timm itself is never imported.

Layouts: timm conv weights (O, I, kh, kw) -> canonical (kh, kw, I, O); depthwise (C, 1, kh, kw) ->
(kh, kw, C, 1); Linear (O, I) -> (I, O); everything else as is. ``.safetensors`` sources are read
zero-copy (memory-mapped); each tensor is transposed once, straight into the file being written.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

import interchange

logger = logging.getLogger("deepvision")

CONV = (2, 3, 1, 0)  # (O, I, kh, kw) -> (kh, kw, I, O)
DEPTHWISE = (2, 3, 0, 1)  # (C, 1, kh, kw) -> (kh, kw, C, 1)
DENSE = (1, 0)  # (O, I) -> (I, O)
COUNTER = "counter"  # BatchNorm's num_batches_tracked: no canonical tensor; exported as int64 0

FAMILY_MODULES = ("deepvision.importers.timm_convnext", "deepvision.importers.timm_efficientnetv2")


def __getattr__(name: str) -> Any:
    # One error type for every timm file problem, defined with the ViT importer.
    if name == "TimmFormatError":
        from deepvision.importers.timm import TimmFormatError

        return TimmFormatError
    raise AttributeError(name)


@dataclass(frozen=True)
class Rule:
    """One timm tensor: its canonical name (``None`` for counters) and layout change."""

    timm: str
    canonical: str | None
    kind: Any = None  # None (as is), CONV, DEPTHWISE, DENSE, or COUNTER


def imagenet_cfg(size: int, crop_pct: float, hub_id: str) -> dict[str, Any]:
    """A timm pretrained_cfg with ImageNet mean/std (timm's (C, H, W) input size)."""
    return {"input_size": [3, size, size], "crop_pct": crop_pct, "interpolation": "bicubic", "crop_mode": "center",
            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "hf_hub_id": hub_id}


def _inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(perm.index(i) for i in range(len(perm)))


def timm_shape(canonical: tuple[int, ...], kind: Any) -> tuple[int, ...]:
    """timm's shape of a tensor of canonical shape ``canonical``."""
    if kind is None or kind == COUNTER:
        return tuple(canonical)
    return tuple(canonical[i] for i in _inverse(kind))


def to_canonical(array: np.ndarray, kind: Any) -> np.ndarray:
    return np.ascontiguousarray(array.transpose(kind)) if isinstance(kind, tuple) else np.array(array)


def to_timm(array: np.ndarray, kind: Any) -> np.ndarray:
    return np.ascontiguousarray(array.transpose(_inverse(kind))) if isinstance(kind, tuple) else np.ascontiguousarray(array)


def _families() -> list[ModuleType]:
    return [importlib.import_module(name) for name in FAMILY_MODULES]


def family_for_shapes(shapes: Mapping[str, tuple[int, ...]]) -> ModuleType | None:
    """The family map whose ``matches`` accepts a timm state_dict, or ``None``."""
    return next((family for family in _families() if family.matches(shapes)), None)


def family_for_architecture(architecture: str | None) -> ModuleType | None:
    """The family map of a deepvision architecture (ConvNeXt*, EfficientNetV2*), or ``None``."""
    if architecture is None:
        return None
    from deepvision.registry import get_architecture

    family = get_architecture(architecture).family
    return next((m for m in _families() if m.FAMILY == family), None)


def handles(src_ckpt: Any) -> bool:
    """Whether a canonical checkpoint (path) or deepvision model is of a family exported here."""
    if isinstance(src_ckpt, (str, os.PathLike)):
        architecture = interchange.read_metadata(src_ckpt).get("architecture")
    else:
        from deepvision.registry import architecture_of

        architecture = architecture_of(src_ckpt).name
    return family_for_architecture(architecture) is not None


def _preprocessing(family: ModuleType, timm_name: str | None, config: Mapping[str, Any],
                   pretrained_cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """deepvision's preprocessing facts from timm's pretrained_cfg (given, else timm's default for the name)."""
    cfg = {**family.PRETRAINED_CFG.get(timm_name or "", imagenet_cfg(224, 0.875, "")), **dict(pretrained_cfg or {})}
    channels, height, width = cfg["input_size"]
    out = {"input_size": [int(height), int(width), int(channels)], "mean": list(cfg["mean"]), "std": list(cfg["std"]),
           "value_range": [0, 1], "interpolation": cfg.get("interpolation", "bicubic"),
           "crop_pct": cfg.get("crop_pct", 0.875), "crop_mode": cfg.get("crop_mode", "center")}
    for key in ("hf_hub_id", "tag", "license"):
        if cfg.get(key):
            out[f"timm_{key}"] = cfg[key]
    return out


def import_family(src: Path, source: Any, family: ModuleType, dst: str | os.PathLike | None, *,
                  pretrained_cfg: Mapping[str, Any] | None, timm_architecture: str | None) -> Any:
    """Import an opened timm ConvNeXt / tf_efficientnetv2 state_dict (see ``import_timm``)."""
    from deepvision.importers.timm import ImportedTimm, TimmFormatError, _json_value
    from deepvision.portable import checkpoint_metadata

    meta = source.metadata
    timm_kwargs = _json_value(meta.get("timm_kwargs")) or {}
    timm_name = timm_architecture or meta.get("timm_architecture")
    architecture, config = family.infer_config(source.shapes, timm_kwargs)
    rules = family.rules_for(architecture, config)
    expected = {r.timm for r in rules}
    unexpected, missing = sorted(set(source.shapes) - expected), sorted(expected - set(source.shapes))
    if unexpected or missing:
        raise TimmFormatError(f"{src} is not a timm {family.FAMILY} that deepvision represents: unexpected "
                              f"{unexpected[:8]}, missing {missing[:8]}.")
    mapped = [r for r in rules if r.canonical is not None]
    shapes = {r.canonical: tuple(source.shapes[r.timm][i] for i in r.kind) if isinstance(r.kind, tuple)
              else tuple(source.shapes[r.timm]) for r in mapped}
    preprocessing = _preprocessing(family, timm_name, config, pretrained_cfg)
    metadata = checkpoint_metadata(
        architecture, config=config, source_backend="timm", preprocessing=preprocessing,
        versions={"timm": meta.get("timm_version"), "torch": meta.get("torch_version")},
        extra={"timm": {"architecture": timm_name, "kwargs": timm_kwargs, "file": src.name}},
    )
    order = _canonical_order(architecture, config, mapped)

    def fetch(rule: Rule) -> Callable[[], np.ndarray]:
        return lambda: to_canonical(source.get(rule.timm), rule.kind)

    if dst is not None:
        entries = [interchange.TensorEntry(r.canonical, shapes[r.canonical], source.dtypes[r.timm], fetch(r))
                   for r in order]
        interchange.write_checkpoint(dst, entries, metadata)
        logger.info("deepvision: imported timm %s as %s (%d tensors) into %s", timm_name or family.FAMILY,
                    architecture, len(entries), dst)
        return Path(dst)
    tensors = {r.canonical: fetch(r)() for r in order}
    return ImportedTimm(tensors, architecture, config, preprocessing, metadata)


def _canonical_order(architecture: str, config: Mapping[str, Any], mapped: list[Rule]) -> list[Rule]:
    """The rules in deepvision's module order (the order of the canonical schema)."""
    from deepvision.importers import keras_applications_convnext, keras_applications_efficientnetv2

    module = keras_applications_convnext if architecture.startswith("ConvNeXt") else keras_applications_efficientnetv2
    order = list(module.canonical_shapes(architecture, config))
    by_name = {r.canonical: r for r in mapped}
    if set(order) != set(by_name):
        raise RuntimeError(f"{architecture}: timm rules and canonical names disagree: "
                           f"{sorted(set(order) ^ set(by_name))[:5]}")
    return [by_name[name] for name in order]


def timm_state_dict_spec(architecture: str, config: Mapping[str, Any],
                         canonical_shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """timm's state_dict names and shapes of a deepvision model given by its canonical names/shapes
    (no tensor data): what :func:`export_family` writes."""
    from deepvision.importers.timm import TimmFormatError

    family = family_for_architecture(architecture)
    rules = family.rules_for(architecture, config)
    needed = {r.canonical for r in rules if r.canonical is not None}
    extra, missing = sorted(set(canonical_shapes) - needed), sorted(needed - set(canonical_shapes))
    if extra or missing:
        raise TimmFormatError(f"{architecture} has no timm form: no timm name for {extra[:5]}, missing {missing[:5]}")
    return {r.timm: (() if r.kind == COUNTER else timm_shape(tuple(canonical_shapes[r.canonical]), r.kind))
            for r in rules}


def export_family(src_ckpt: Any, dst: str | os.PathLike) -> Path:
    """Write a deepvision ConvNeXt / EfficientNetV2 (canonical checkpoint path or model) as a timm state_dict.

    ``.safetensors`` records ``timm_architecture`` / ``timm_kwargs`` in its metadata; ``.pth``/``.pt``/``.bin``
    is a ``torch.save`` of the state_dict. ``timm.create_model(name, **kwargs).load_state_dict(sd,
    strict=True)`` accepts either (``name, kwargs`` from :func:`timm_model_args`).
    """
    from deepvision import __version__
    from deepvision.importers.timm import TimmFormatError, _read_model
    from deepvision.io_utils import atomic_output
    from deepvision.registry import get_architecture

    dst = Path(dst)
    suffix = dst.suffix.lower()
    if suffix not in (".safetensors", ".pth", ".pt", ".bin"):
        raise TimmFormatError(f"{dst}: timm state_dicts go to .safetensors, .pth, .pt or .bin files.")
    close = None
    if isinstance(src_ckpt, (str, os.PathLike)):
        ckpt = interchange.open_checkpoint(src_ckpt)
        config, get, architecture = dict(ckpt.config or {}), ckpt.get, ckpt.architecture
        shapes = {n: tuple(ckpt.shape(n)) for n in ckpt.names}
        close = ckpt.close
    else:
        config, get, shapes, _, architecture = _read_model(src_ckpt)
    try:
        family = family_for_architecture(architecture)
        if family is None:
            raise TimmFormatError(f"{src_ckpt} holds a {architecture}: no timm ConvNeXt/EfficientNetV2 form.")
        config = {**get_architecture(architecture).fixed, **config}
        spec = timm_state_dict_spec(architecture, config, shapes)
        rules = {r.timm: r for r in family.rules_for(architecture, config)}
        name, kwargs = family.timm_model_args(architecture, config)

        def timm_array(key: str) -> np.ndarray:
            rule = rules[key]
            if rule.kind == COUNTER:
                return np.zeros((), dtype=np.int64)
            return to_timm(get(rule.canonical), rule.kind)

        with atomic_output(dst) as tmp:
            if suffix == ".safetensors":
                from safetensors.numpy import save_file

                save_file({key: timm_array(key) for key in spec}, str(tmp), metadata={
                    "format": "pt", "timm_architecture": name, "timm_kwargs": json.dumps(kwargs, sort_keys=True),
                    "exported_by": f"deepvision-toolkit {__version__}", "deepvision_architecture": architecture,
                })
            else:
                from deepvision.adapters.torch_adapter import from_numpy
                from deepvision.backend import require_pytorch

                torch = require_pytorch()
                torch.save({key: from_numpy(timm_array(key)).clone() for key in spec}, tmp)
    finally:
        if close is not None:
            close()
    logger.info("deepvision: exported %s to %s for timm.create_model(%r, **%s)", architecture, dst, name, kwargs)
    return dst


def timm_model_args(architecture: str, config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(name, kwargs)`` such that ``timm.create_model(name, **kwargs)`` has this model's tensors."""
    from deepvision.importers.timm import TimmFormatError
    from deepvision.registry import get_architecture

    family = family_for_architecture(architecture)
    if family is None:
        raise TimmFormatError(f"{architecture} has no timm ConvNeXt/EfficientNetV2 form.")
    return family.timm_model_args(architecture, {**get_architecture(architecture).fixed, **config})
