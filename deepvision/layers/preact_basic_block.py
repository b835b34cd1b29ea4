"""``PreActBasicBlock``: the two-conv ResNetV2 block of ResNet18V2/34V2, in keras.applications' style.

Pre-activation BN + ReLU first, projection shortcut (1x1 conv with bias) from the pre-activated
tensor when asked, else identity (``MaxPool(1, strides)`` when strided). Both 3x3 convs have no
bias; the stride sits on the second one, as the bottleneck's sits on its spatial (middle) conv and
as KerasCV's ResNetV2 basic block places it.
"""

from __future__ import annotations

from typing import Any

from deepvision.layers._block import build_block, register_block
from deepvision.portable import portable_converters

ARCHITECTURE = register_block(
    "PreActBasicBlock",
    "preact_basic_block",
    build_shape=lambda c: (None, None, c["input_filters"]),
    reference_config={"input_filters": 8, "filters": 8, "strides": 2},
)


def PreActBasicBlock(
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
    """A ResNetV2 basic block: ``(B, H, W, input_filters) -> (B, H', W', filters)``.

    Layout: channels-last for ``backend="tensorflow"``, channels-first for ``"pytorch"``.
    ``H' = floor((H - 1) / strides) + 1`` (explicit zero padding of ``kernel_size // 2`` before
    each conv, valid convs).

    Computation::

        p = relu(bn(x))                                      # preact_norm, preact_act
        s = conv1x1(p, filters, strides, bias)  if conv_shortcut
            maxpool1x1(x, strides)              elif strides > 1
            x                                   otherwise
        y = relu(bn(conv_k(pad(p), filters, 1, no bias)))    # pad1, conv1, norm1, act1
        y = conv_k(pad(y), filters, strides, no bias)        # pad2, conv2
        return s + drop_path(y)

    Args:
        input_filters: channels of the input (PyTorch needs them; Keras ignores them).
        filters: output channels.
        kernel_size: size of both convs.
        strides: stride of the second conv and of the shortcut.
        conv_shortcut: use a 1x1 projection shortcut; without it ``input_filters`` must equal ``filters``.
        bn_momentum: Keras momentum of the BatchNorms.
        bn_epsilon: BatchNorm epsilon.
        drop_path_rate: probability of dropping the residual branch per sample in training.
        backend: ``"tensorflow"`` or ``"pytorch"``.
    """
    return build_block("PreActBasicBlock", locals())


tf_to_pt, pt_to_tf = portable_converters("PreActBasicBlock")
