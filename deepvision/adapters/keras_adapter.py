"""Keras 3 adapter. Keras's own layouts are the canonical ones, so leaves are copied as they are."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from deepvision.adapters import Slot
from interchange.schema import infer_role


def variable_slot(name: str, variable: keras.Variable, role: str | None = None) -> Slot:
    """A slot for one Keras variable under canonical ``name`` (its role guessed from the name if omitted)."""
    role = role or infer_role(name)
    def write(array: np.ndarray) -> None:
        if tuple(array.shape) != tuple(variable.shape):
            raise ValueError(f"{name}: expected canonical shape {tuple(variable.shape)}, got {tuple(array.shape)}")
        variable.assign(np.asarray(array).astype(variable.dtype, copy=False))

    return Slot(
        name=name,
        shape=tuple(int(d) for d in variable.shape),
        dtype=str(variable.dtype),
        role=role,
        trainable=bool(variable.trainable),
        # convert_to_numpy already returns a fresh host copy: wrapping it in np.array would copy twice.
        read=lambda: keras.ops.convert_to_numpy(variable.value),
        write=write,
        variable=variable,
        to_canonical=lambda value: keras.ops.convert_to_numpy(value),
    )


# Leaf converters: layer type -> (attribute, canonical name, role) for each tensor it may own.
_CONV = (("kernel", "kernel", "weight"), ("bias", "bias", "bias"))
_NORM = (("gamma", "gamma", "norm"), ("beta", "beta", "norm"))
_BATCH_NORM = _NORM + (
    ("moving_mean", "moving_mean", "statistic"),
    ("moving_variance", "moving_variance", "statistic"),
)
_LEAVES: tuple[tuple[type, tuple[tuple[str, str, str], ...]], ...] = (
    # DepthwiseConv2D before Conv2D: their kernels have different canonical layouts and names.
    (keras.layers.DepthwiseConv2D, (("kernel", "depthwise_kernel", "weight"), ("bias", "bias", "bias"))),
    (keras.layers.Conv2D, _CONV),
    (keras.layers.Dense, _CONV),
    (keras.layers.BatchNormalization, _BATCH_NORM),
    (keras.layers.LayerNormalization, _NORM),
)


def _leaf_spec(layer: keras.layers.Layer) -> tuple[tuple[str, str, str], ...] | None:
    for cls, spec in _LEAVES:
        if isinstance(layer, cls):
            return spec
    return None


def _children(layer: keras.layers.Layer) -> Iterator[tuple[str, Any]]:
    if isinstance(layer, keras.Sequential):
        # Mirrors torch.nn.Sequential, whose children are named "0", "1", ...
        yield from ((str(i), child) for i, child in enumerate(layer.layers))
        return
    for attr, value in vars(layer).items():
        if attr.startswith("_"):
            continue
        if isinstance(value, (list, tuple)):
            yield from ((f"{attr}.{i}", item) for i, item in enumerate(value))
        else:
            yield attr, value


def _walk(layer: keras.layers.Layer, prefix: str, seen: set[int]) -> Iterator[Slot]:
    spec = _leaf_spec(layer)
    if spec is not None:
        for attr, canonical, role in spec:
            variable = getattr(layer, attr, None)
            if variable is not None and id(variable) not in seen:
                seen.add(id(variable))
                yield variable_slot(prefix + canonical, variable, role)
        return
    for name, child in _children(layer):
        if isinstance(child, keras.Variable):
            if id(child) not in seen:
                seen.add(id(child))
                yield variable_slot(prefix + name, child, "embedding")
        elif isinstance(child, keras.layers.Layer) and id(child) not in seen:
            seen.add(id(child))
            yield from _walk(child, f"{prefix}{name}.", seen)


def iter_slots(layer: keras.layers.Layer) -> Iterator[Slot]:
    """Every weight of ``layer`` under its canonical name; fails if a weight is unreachable."""
    if not layer.built:
        raise ValueError(
            f"{type(layer).__name__} has not been built yet, so it has no weights: call it on an "
            "input once (or call .build(input_shape)) before saving or loading."
        )
    seen: set[int] = {id(layer)}
    slots = list(_walk(layer, "", seen))
    missed = [w.path for w in layer.weights if id(w) not in seen]
    if missed:
        # Each weight must be reachable through public attributes, or it would silently not be saved.
        raise TypeError(
            f"{type(layer).__name__} holds weights that no public attribute reaches: {missed[:5]}. "
            "Assign sublayers and variables to public attributes (lists are fine)."
        )
    return iter(slots)
