"""``SqueezeExcitation``: channel attention from globally pooled features (Hu et al., 2018).

``y = x * gate(conv_expand(act(conv_reduce(mean_hw(x)))))`` with 1x1 convolutions (with bias), as
keras.applications' EfficientNet blocks compute it. Keras takes (N, H, W, C), PyTorch (N, C, H, W).
"""

from __future__ import annotations

from typing import Any

from deepvision.layers._block import build_block, register_block
from deepvision.portable import portable_converters

ARCHITECTURE = register_block(
    "SqueezeExcitation",
    "squeeze_excitation",
    build_shape=lambda c: (None, None, c["filters"]),
    reference_config={"filters": 8, "bottleneck_filters": 2},
)


def SqueezeExcitation(
    filters: int,
    bottleneck_filters: int,
    activation: str = "swish",
    gate_activation: str = "sigmoid",
    backend: str | None = None,
) -> Any:
    """A squeeze-and-excitation block.

    Args:
        filters: channels C of the input (and the output).
        bottleneck_filters: channels of the squeezed representation (e.g. ``max(1, int(C_in * 0.25))``).
        activation: activation after the reducing 1x1 conv (Keras name, e.g. ``"swish"``).
        gate_activation: activation of the gate (``"sigmoid"``; ``"hard_sigmoid"`` for MobileNetV3).
        backend: ``"tensorflow"`` (channels-last input) or ``"pytorch"`` (channels-first input).

    Returns:
        A ``keras.layers.Layer`` or ``torch.nn.Module`` mapping an image batch to the same shape.
    """
    return build_block("SqueezeExcitation", locals())


tf_to_pt, pt_to_tf = portable_converters("SqueezeExcitation")
