"""``Identity``: returns its input unchanged (a placeholder where a block is switched off)."""

from __future__ import annotations

from typing import Any

from deepvision.layers._block import build_block, register_block
from deepvision.portable import portable_converters

ARCHITECTURE = register_block("Identity", "identity", build_shape=lambda c: (None, None, 1), reference_config={})


def Identity(backend: str | None = None, **kwargs: Any) -> Any:
    """A layer that returns its input. ``backend``: ``"tensorflow"`` or ``"pytorch"``."""
    return build_block("Identity", locals())


tf_to_pt, pt_to_tf = portable_converters("Identity")
