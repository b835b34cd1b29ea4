"""Backend adapters: walk a model's module tree and expose every tensor under its canonical name.

A canonical name is the dotted path of attribute names from the root (``stem.conv.kernel``); the
implementations of a block use the same attribute names in both backends, so the names agree by
construction. A handful of *leaf converters* per backend (conv, depthwise conv, dense, batch and
layer norm) translate framework tensors to the canonical layout; any other learned tensor (class
token, position embedding) is stored as it is, under its attribute name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from deepvision.backend import PYTORCH, backend_of


@dataclass(frozen=True)
class Slot:
    """One tensor of a model, seen in the canonical layout.

    Attributes:
        name: canonical dotted name.
        shape: canonical shape.
        dtype: numpy dtype name of the tensor as the model holds it.
        role: one of ``interchange.ROLES`` (the schema files' vocabulary): ``"weight"`` (kernels,
            depthwise kernels), ``"bias"``, ``"norm"``, ``"statistic"``, ``"embedding"`` (other
            learned tensors: class token, position embedding, layer scale) or ``"parameter"``.
        trainable: whether the framework trains it (moving statistics are not trainable).
        read: returns the tensor as a numpy array in canonical layout (a fresh array).
        write: takes a canonical-layout array (any float dtype) and stores it in the model.
        variable: the framework's own tensor (``keras.Variable`` or ``torch.Tensor``).
        to_canonical: converts a framework tensor shaped like ``variable`` (e.g. its gradient)
            to a canonical-layout numpy array.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    role: str
    trainable: bool
    read: Callable[[], np.ndarray]
    write: Callable[[np.ndarray], None]
    variable: Any = None
    to_canonical: Callable[[Any], np.ndarray] | None = None


def iter_slots(obj: Any) -> Iterator[Slot]:
    """Every tensor of a Keras layer/model or a PyTorch module, under its canonical name."""
    if backend_of(obj) == PYTORCH:
        from deepvision.adapters import torch_adapter as adapter
    else:
        from deepvision.adapters import keras_adapter as adapter
    return adapter.iter_slots(obj)


def slots_by_name(obj: Any) -> dict[str, Slot]:
    """:func:`iter_slots` as an ordered dict keyed by canonical name."""
    return {slot.name: slot for slot in iter_slots(obj)}


def count_params(obj: Any) -> dict[str, int]:
    """Parameter counts with Keras's meaning (moving statistics count, as non-trainable)."""
    trainable = non_trainable = 0
    for slot in iter_slots(obj):
        size = int(np.prod(slot.shape, dtype=np.int64))
        if slot.trainable:
            trainable += size
        else:
            non_trainable += size
    return {"total": trainable + non_trainable, "trainable": trainable, "non_trainable": non_trainable}

