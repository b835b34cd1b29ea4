"""``MBConv``: the inverted-residual block of EfficientNetV2 (MobileNetV2 lineage), as keras.applications builds it.

Structure (TensorFlow "same" padding in both backends):
``[expand 1x1 conv (no bias) + BN + act]`` (only when ``expand_ratio != 1``) -> depthwise kxk conv with
``strides`` (no bias) + BN + act -> ``[squeeze-excitation on the expanded filters]`` (when
``0 < se_ratio <= 1``, bottleneck ``max(1, int(input_filters * se_ratio))``) -> project 1x1 conv
(no bias) + BN (no activation) -> ``[drop path + residual]`` when ``strides == 1`` and
``input_filters == output_filters``.
"""

from __future__ import annotations

from typing import Any

from deepvision.layers._block import build_block, register_block
from deepvision.portable import portable_converters

ARCHITECTURE = register_block(
    "MBConv",
    "mbconv",
    build_shape=lambda c: (None, None, c["input_filters"]),
    reference_config={"input_filters": 8, "output_filters": 8, "expand_ratio": 4, "se_ratio": 0.25},
)


# The constructor arguments shared by MBConv and FusedMBConv (same signature by design), which are
# exactly what their implementations' get_config() returns.
MBCONV_ARGUMENTS = ("input_filters", "output_filters", "expand_ratio", "kernel_size", "strides", "se_ratio",
                    "bn_momentum", "activation", "dropout", "bn_epsilon")


def se_filters(input_filters: int, se_ratio: float) -> int:
    """Bottleneck width of the squeeze-excitation of an (Fused)MBConv block, 0 when it has none."""
    return max(1, int(input_filters * se_ratio)) if 0 < se_ratio <= 1 else 0


def MBConv(
    input_filters: int,
    output_filters: int,
    expand_ratio: int = 1,
    kernel_size: int = 3,
    strides: int = 1,
    se_ratio: float = 0.0,
    bn_momentum: float = 0.9,
    activation: str = "swish",
    dropout: float = 0.0,
    bn_epsilon: float = 1e-3,
    backend: str | None = None,
) -> Any:
    """An MBConv block.

    Args:
        input_filters: channels of the input.
        output_filters: channels of the output.
        expand_ratio: expanded channels = ``input_filters * expand_ratio``.
        kernel_size: depthwise kernel size.
        strides: depthwise stride (TensorFlow "same" padding, asymmetric at stride 2 for even sizes).
        se_ratio: squeeze-excitation ratio relative to ``input_filters``; 0 disables it.
        bn_momentum: Keras BatchNorm momentum (weight of the old statistic).
        activation: Keras activation name (``"swish"``).
        dropout: drop-path probability of the residual branch (used only when there is a residual).
        bn_epsilon: BatchNorm epsilon (keras.applications: 1e-3).
        backend: ``"tensorflow"`` (input (N, H, W, C)) or ``"pytorch"`` (input (N, C, H, W)).

    Returns:
        A ``keras.layers.Layer`` or ``torch.nn.Module``; output (N, H/s, W/s, output_filters) or
        (N, output_filters, H/s, W/s), with ``ceil`` division.
    """
    return build_block("MBConv", locals())


tf_to_pt, pt_to_tf = portable_converters("MBConv")
