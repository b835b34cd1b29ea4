"""Reload Keras files of deepvision models (``.keras``, legacy ``.h5``).

Keras finds a custom class only if the module defining it was imported first, which deepvision's
lazy imports defeat; these loaders import every Keras implementation and pass them as custom objects.
"""

from __future__ import annotations

import os
from typing import Any

from deepvision.backend import require_tensorflow


def custom_objects() -> dict[str, type]:
    """Every Keras class of deepvision, by the names Keras records for them."""
    require_tensorflow()
    import keras

    from deepvision.registry import get_architecture, list_architectures

    objects: dict[str, type] = {}
    for name in list_architectures():
        cls = get_architecture(name).implementation("tensorflow")
        objects[cls.__name__] = cls
        objects[keras.saving.get_registered_name(cls)] = cls
    return objects


def load_keras_model(path: str | os.PathLike, *, compile: bool = False) -> Any:
    """Load a ``.keras`` or legacy ``.h5`` file written by a deepvision Keras model's ``save()``."""
    keras = require_tensorflow()
    objects = custom_objects()
    with keras.saving.custom_object_scope(objects):
        return keras.models.load_model(str(path), custom_objects=objects, compile=compile)
