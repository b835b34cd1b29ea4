"""``PreActBottleneck``: the ResNetV2 bottleneck block (keras.applications' ``residual_block_v2``).

Pre-activation: BN + ReLU first, and the projection shortcut (when there is one) starts from that
pre-activated tensor; the output is a plain sum, never normalised (the next block does that).
"""

from __future__ import annotations

from typing import Any

from deepvision.layers._block import build_block, register_block
from deepvision.portable import portable_converters

ARCHITECTURE = register_block(
    "PreActBottleneck",
    "preact_bottleneck",
    build_shape=lambda c: (None, None, c["input_filters"]),
    reference_config={"input_filters": 16, "filters": 4, "strides": 2},
)


def PreActBottleneck(
    input_filters: int,
    filters: int,
    kernel_size: int = 3,
    strides: int = 1,
    conv_shortcut: bool = False,
    bn_momentum: float = 0.99,
    bn_epsilon: float = 1.001e-5,
    drop_path_rate: float = 0.0,
    backend: str | None = None,
) -> Any:
    """A ResNetV2 bottleneck block: ``(B, H, W, input_filters) -> (B, H', W', 4 * filters)``.

    Layout: channels-last for ``backend="tensorflow"``, channels-first for ``"pytorch"``.
    ``H' = floor((H - 1) / strides) + 1`` (explicit zero padding of ``kernel_size // 2``, then a
    valid strided conv, as keras.applications does; the identity shortcut becomes
    ``MaxPool(1, strides)`` when ``strides > 1``).

    Computation::

        p = relu(bn(x))                                   # preact_norm, preact_act
        s = conv1x1(p, 4 * filters, strides, bias)  if conv_shortcut
            maxpool1x1(x, strides)                  elif strides > 1
            x                                       otherwise
        y = relu(bn(conv1x1(p, filters, no bias)))        # conv1, norm1, act1
        y = relu(bn(conv_k(pad(y), filters, strides, no bias)))  # pad2, conv2, norm2, act2
        y = conv1x1(y, 4 * filters, bias)                 # conv3
        return s + drop_path(y)

    Args:
        input_filters: channels of the input (PyTorch needs them; Keras ignores them).
        filters: bottleneck width; the output has ``4 * filters`` channels.
        kernel_size: size of the spatial conv (padded by ``kernel_size // 2``).
        strides: stride of the spatial conv and of the shortcut.
        conv_shortcut: use a 1x1 projection shortcut; without it, ``input_filters`` must equal
            ``4 * filters``.
        bn_momentum: Keras momentum of the BatchNorms (weight of the old statistic).
        bn_epsilon: BatchNorm epsilon (keras.applications: 1.001e-5).
        drop_path_rate: probability of dropping the residual branch per sample in training.
        backend: ``"tensorflow"`` or ``"pytorch"``.
    """
    return build_block("PreActBottleneck", locals())


# The constructor arguments of both pre-activation blocks (same signature by design), which are
# exactly what their implementations' get_config() returns.
PREACT_ARGUMENTS = ("input_filters", "filters", "kernel_size", "strides", "conv_shortcut", "bn_momentum",
                    "bn_epsilon", "drop_path_rate")


def check_arguments(name: str, input_filters: int, output_filters: int, kernel_size: int, strides: int,
                    conv_shortcut: bool) -> None:
    """Arguments both backends reject alike (shared by both blocks)."""
    if int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
        # Padding kernel_size // 2 on both sides keeps the branch and shortcut sizes equal only for odd kernels.
        raise ValueError(f"{name}: kernel_size must be odd, got {kernel_size}")
    if int(strides) < 1:
        raise ValueError(f"{name}: strides must be >= 1, got {strides}")
    if not conv_shortcut and int(input_filters) != int(output_filters):
        raise ValueError(
            f"{name}: input_filters={input_filters} but the block outputs {output_filters} channels; "
            "an identity shortcut needs them equal (pass conv_shortcut=True)."
        )


tf_to_pt, pt_to_tf = portable_converters("PreActBottleneck")
