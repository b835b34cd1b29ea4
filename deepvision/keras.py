"""``import deepvision.keras``: plain ``keras.models.load_model`` then loads deepvision's Keras files.

A ``.keras`` (or legacy ``.h5``) file names its classes (``ResNetV2TF``, ``ViTTF``, ...); Keras
finds a class outside Keras only among its registered custom objects, and deepvision's lazy
imports register nothing until a model is built. This module imports TensorFlow/Keras and
registers every Keras class of deepvision, the way ``import keras_hub`` does for KerasHub's::

    import keras
    import deepvision.keras  # noqa: F401  (registers deepvision's Keras classes)

    model = keras.models.load_model("resnet.keras")

It also offers the loader itself, :func:`load_model` (``deepvision.models.keras_io.load_keras_model``),
which needs no registration and does not compile the model unless asked.
"""

from __future__ import annotations

from deepvision.models.keras_io import custom_objects, load_keras_model

load_model = load_keras_model

__all__ = ["custom_objects", "load_model", "load_keras_model", "register_custom_objects"]


def register_custom_objects() -> dict[str, type]:
    """Register every deepvision Keras class with Keras (done once on import); returns them by name."""
    import keras

    objects = custom_objects()
    keras.saving.get_custom_objects().update(objects)
    return objects


register_custom_objects()
