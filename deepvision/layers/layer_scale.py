"""``LayerScale``: a learned per-channel scale of a residual branch (Touvron et al., CaiT, 2021).

``y = x * gamma`` with ``gamma`` of shape (channels,), initialised to ``init_value`` (ConvNeXt and
CaiT use 1e-6, so a fresh residual branch starts near zero). Canonical tensor: ``gamma`` (channels,).

Layouts: the Keras block scales the last axis (channels-last images (N, H, W, C) and tokens
(N, L, C)); the PyTorch block scales axis 1 of 4-D input (channels-first images (N, C, H, W)) and
the last axis otherwise (tokens (N, L, C), vectors (N, C)), following the library's convention that
images are channels-first in PyTorch and tokens are (batch, tokens, dim) in both.
"""

from __future__ import annotations

from typing import Any

from deepvision.layers._block import build_block, register_block
from deepvision.portable import portable_converters

ARCHITECTURE = register_block(
    "LayerScale",
    "layer_scale",
    build_shape=lambda c: (None, None, c["projection_dim"]),
    reference_config={"projection_dim": 8},
)

# What get_config() of both implementations returns, in constructor order.
LAYER_SCALE_ARGUMENTS = ("projection_dim", "init_value")


def check_layer_scale_arguments(projection_dim: int, init_value: float) -> tuple[int, float]:
    """Validate and normalise the arguments (shared by both backends, so errors read the same)."""
    if int(projection_dim) != projection_dim or int(projection_dim) < 1:
        raise ValueError(f"LayerScale: projection_dim must be a positive integer, got {projection_dim!r}.")
    try:
        init_value = float(init_value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"LayerScale: init_value must be a number, got {init_value!r}.") from err
    return int(projection_dim), init_value


def check_channels(expected: int, received: int | None, shape: Any) -> None:
    """Call-time check that the scaled axis has ``expected`` channels."""
    if received is not None and int(received) != expected:
        raise ValueError(
            f"LayerScale expects {expected} channels on its scaled axis, got input of shape {tuple(shape)}: "
            "build it with projection_dim equal to the input's channel count."
        )


def LayerScale(projection_dim: int, init_value: float = 1e-6, backend: str | None = None) -> Any:
    """A per-channel learned scale ``x * gamma``.

    Args:
        projection_dim: channels C (length of ``gamma``).
        init_value: initial value of every entry of ``gamma`` (ConvNeXt: 1e-6).
        backend: ``"tensorflow"`` (scales the last axis) or ``"pytorch"`` (axis 1 of (N, C, H, W)
            images, the last axis of tokens).

    Returns:
        A ``keras.layers.Layer`` / ``torch.nn.Module`` whose output has the input's shape.
    """
    return build_block("LayerScale", locals())


tf_to_pt, pt_to_tf = portable_converters("LayerScale")
