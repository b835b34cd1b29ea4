"""keras.applications <-> canonical checkpoints, for the architectures that keras.applications ships.

keras.applications' layouts are Keras layouts, which are the canonical ones: each family supplies
only a name map (``deepvision/importers/keras_applications_<family>.py``: ``APPLICATIONS``,
``app_kwargs(config)``, ``variable_map(app_model, config)``), and this module does the rest.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import interchange
from deepvision.backend import require_tensorflow

_FAMILY_MODULES = (
    "deepvision.importers.keras_applications_resnetv2",
    "deepvision.importers.keras_applications_efficientnetv2",
    "deepvision.importers.keras_applications_convnext",
)


def _family_of(architecture: str) -> ModuleType:
    known = []
    for name in _FAMILY_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        if architecture in module.APPLICATIONS:
            return module
        known.extend(module.APPLICATIONS)
    raise ValueError(
        f"keras.applications has no counterpart of {architecture!r}. Supported: {', '.join(known)}."
    )


def supported_architectures() -> list[str]:
    """deepvision architectures that have a keras.applications counterpart."""
    names = []
    for name in _FAMILY_MODULES:
        try:
            names.extend(importlib.import_module(name).APPLICATIONS)
        except ModuleNotFoundError:
            continue
    return names


def default_config(architecture: str, **overrides: Any) -> dict[str, Any]:
    """A backend-neutral config: keras.applications' defaults (1000 classes, 224x224x3, top on)."""
    return {"include_top": True, "classes": 1000, "input_shape": [224, 224, 3], **overrides}


def build_application(architecture: str, config: dict[str, Any]) -> Any:
    """The keras.applications model equivalent to ``architecture`` with ``config`` (weights=None, logits out)."""
    keras = require_tensorflow()
    family = _family_of(architecture)
    if hasattr(family, "build_application"):  # e.g. a generic builder keras.applications does not export
        return family.build_application(architecture, config)
    kwargs = {**family.app_kwargs(config), "weights": None}
    return getattr(keras.applications, family.APPLICATIONS[architecture])(**kwargs)


def _config_of_application(app_model: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    top = [layer for layer in app_model.layers if layer.name == "predictions"]
    config = {
        "include_top": bool(top),
        "input_shape": [d for d in app_model.input_shape[1:]],
    }
    if top:
        config["classes"] = int(top[0].kernel.shape[-1])
    return {**default_config("", **config), **overrides}


def import_keras_application(
    src: Any, architecture: str, dst: str | os.PathLike, *, config: dict[str, Any] | None = None
) -> Path:
    """Write a canonical checkpoint from a keras.applications model or its weights file.

    Args:
        src: a keras.applications model object, or a ``.h5`` / ``.weights.h5`` / ``.keras`` file of one.
        architecture: the deepvision name, e.g. ``"ResNet50V2"``.
        dst: the ``.safetensors`` file to write.
        config: the deepvision config the weights belong to (``include_top``, ``classes``,
            ``input_shape`` channels-last, ...); inferred from a model object when omitted.

    Returns:
        ``dst``.
    """
    keras = require_tensorflow()
    from deepvision.adapters.keras_adapter import variable_slot
    from deepvision.portable import checkpoint_metadata, write_slots
    from deepvision.registry import get_architecture

    arch = get_architecture(architecture)
    family = _family_of(architecture)
    # A family may need extra config entries to be keras.applications' exact network (e.g. EfficientNetV2's
    # filter rounding, its preprocessing layer): `CONFIG_OVERRIDES`, and `application_config(app_model)`.
    overrides = dict(getattr(family, "CONFIG_OVERRIDES", {}))
    if isinstance(src, keras.Model):
        app_model = src
        if hasattr(family, "application_config"):
            overrides.update(family.application_config(app_model))
        config = _config_of_application(app_model, {**overrides, **(config or {})})
    else:
        config = default_config(architecture, **{**overrides, **(config or {})})
        app_model = build_application(architecture, config)
        try:
            app_model.load_weights(str(src))
        except Exception as err:  # Keras raises many types here; all mean the file does not fit
            raise ValueError(
                f"Cannot load {src} into keras.applications.{family.APPLICATIONS[architecture]} with config "
                f"{config}: {err}. Pass config= matching the file (include_top, classes, input_shape)."
            ) from err
    mapping = family.variable_map(app_model, config)
    slots = [variable_slot(name, variable) for name, variable in mapping.items()]
    metadata = checkpoint_metadata(arch, config=config, source_backend="keras-applications")
    return write_slots(dst, slots, metadata)


def export_keras_application(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Write a canonical checkpoint as weights that ``keras.applications.X(weights=dst)`` accepts.

    ``dst`` ending in ``.weights.h5`` gets Keras 3 weights; ``.h5`` a legacy full-model file;
    ``.keras`` a Keras 3 model archive.
    """
    from deepvision.io_utils import atomic_output, full_suffix

    with interchange.open_checkpoint(src) as ckpt:
        architecture = ckpt.architecture
        family = _family_of(architecture)
        app_model = build_application(architecture, ckpt.config)
        mapping = family.variable_map(app_model, ckpt.config)
        missing = sorted(set(ckpt.names) - set(mapping))
        if missing:
            raise ValueError(f"{src}: tensors with no keras.applications counterpart: {missing[:5]}")
        for name, variable in mapping.items():
            variable.assign(ckpt.get(name).astype(variable.dtype))
    suffix = full_suffix(dst)
    with atomic_output(dst) as tmp:
        if suffix == ".weights.h5":
            app_model.save_weights(tmp)
        elif suffix in (".h5", ".keras"):
            app_model.save(tmp)
        else:
            raise ValueError(f"{dst}: keras.applications weights go to .weights.h5, .h5 or .keras files.")
    return Path(dst)

