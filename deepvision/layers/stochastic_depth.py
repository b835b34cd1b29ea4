"""``StochasticDepth`` (drop path): drops whole samples of a residual branch in training.

In training mode each sample is kept with probability ``keep = 1 - drop_prob`` and scaled by
``1 / keep`` (so the expectation is unchanged); in inference mode, and when ``drop_prob`` is 0, the
block is the identity. Works on any tensor whose first axis is the batch (images or tokens).
"""

from __future__ import annotations

from typing import Any

from deepvision.layers._block import build_block, register_block
from deepvision.portable import portable_converters

ARCHITECTURE = register_block(
    "StochasticDepth",
    "stochastic_depth",
    build_shape=lambda c: (None, None, 1),
    reference_config={"drop_prob": 0.1},
)


def StochasticDepth(drop_prob: float = 0.0, backend: str | None = None) -> Any:
    """Drop path on the residual branch of a block.

    Args:
        drop_prob: probability of dropping a sample's branch in training mode, in [0, 1].
        backend: ``"tensorflow"`` or ``"pytorch"``.

    Returns:
        A weightless ``keras.layers.Layer`` / ``torch.nn.Module`` mapping (N, ...) to (N, ...).
    """
    return build_block("StochasticDepth", locals())


def check_arguments(drop_prob: float) -> float:
    """The drop probability as a float; both backends reject one outside [0, 1] alike."""
    if not 0.0 <= drop_prob <= 1.0:
        raise ValueError(f"drop_prob must be in [0, 1], got {drop_prob}")
    return float(drop_prob)


tf_to_pt, pt_to_tf = portable_converters("StochasticDepth")
