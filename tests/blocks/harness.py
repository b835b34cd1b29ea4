"""The one parity harness for every public block.

Each family registers cases in a ``cases_*.py`` module beside this file: a ``CASES`` list of
:class:`BlockCase`. ``test_block_parity.py`` runs every check below on every case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepvision import testing
from deepvision.backend import PYTORCH, TENSORFLOW
from deepvision.portable import ensure_built, to_backend
from deepvision.registry import build_from_neutral_config, get_architecture


@dataclass(frozen=True)
class BlockCase:
    """One block configuration to prove equal in both backends.

    Attributes:
        block: registered block name, e.g. ``"MBConv"``.
        config: backend-neutral constructor arguments (``input_shape`` channels-last).
        input_shape: channels-last input shape without the batch axis, e.g. ``(17, 23, 8)``; a tuple
            of such shapes for a block that takes a list of inputs (``SegFormerHead``).
        id: a short test id.
        batch: batch size of the test input.
        has_batch_norm: whether a training step changes moving statistics.
        training_parity: whether training mode is deterministic (dropout and drop path 0).
        gradient_floor: fraction of the block's largest gradient that floors each gradient's
            denominator in :func:`gradient_errors` (rounding noise of analytically zero gradients).
        input_scale: standard deviation of the random-normal test input. A small one (low-variance
            tokens or feature maps) makes every norm's epsilon matter: at variance ~1 a LayerNorm
            that ignores its epsilon (1e-5 for 1e-6) moves the output by less than the tolerance.
    """

    block: str
    config: dict[str, Any]
    input_shape: tuple[int, ...]
    id: str
    batch: int = 2
    has_batch_norm: bool = False
    training_parity: bool = True
    gradient_floor: float = 1e-3
    input_scale: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.id


def build_pair(case: BlockCase, seed: int = 0) -> tuple[Any, Any]:
    """A randomised Keras block and its PyTorch counterpart made through the canonical format."""
    arch = get_architecture(case.block)
    tf_block = build_from_neutral_config(case.block, case.config, TENSORFLOW)
    ensure_built(tf_block, arch, case.config)
    testing.randomize_weights(tf_block, seed)
    return tf_block, to_backend(tf_block, PYTORCH)


def sample_input(case: BlockCase, seed: int = 1) -> np.ndarray | list[np.ndarray]:
    """A batch for ``case``; a list of batches when ``input_shape`` is a tuple of shapes (multi-input blocks)."""
    rng = np.random.default_rng(seed)
    if case.input_shape and isinstance(case.input_shape[0], (tuple, list)):
        return [rng.normal(scale=case.input_scale, size=(case.batch, *shape)).astype(np.float32)
                for shape in case.input_shape]
    return rng.normal(scale=case.input_scale, size=(case.batch, *case.input_shape)).astype(np.float32)


def gradient_errors(grads_a: dict, grads_b: dict, floor: float = 1e-3) -> dict[str, float]:
    """Per-tensor ``max|a - b| / max|b|``.

    A gradient that is analytically zero (e.g. a conv bias right before a batch-statistics
    BatchNorm) is pure rounding noise in both backends; its denominator is floored at 1e-3 of the
    largest gradient of the block (``floor``) so that noise is not reported as a relative error of order one.
    """
    scale = max(float(np.max(np.abs(g))) for g in grads_b.values())
    errors = {}
    for name, b in grads_b.items():
        a = grads_a[name]
        denom = max(float(np.max(np.abs(b))), floor * scale, 1e-30)
        errors[name] = float(np.max(np.abs(a.astype(np.float64) - b))) / denom
    return errors
