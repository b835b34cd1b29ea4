"""PyTorch primitives that reproduce Keras semantics exactly (mirrors ``core_tf.py``).

- :class:`BatchNorm2d` takes Keras's momentum and epsilon and updates its moving variance with the
  biased batch variance, as Keras does (PyTorch's own rule uses the unbiased one).
- :class:`Conv2dSame` pads like TensorFlow's ``padding="same"``: the total padding depends on the
  input size, and the odd pixel goes to the bottom/right.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepvision.layers.core import ACTIVATIONS, activation_name

__all__ = ["ACTIVATIONS", "Activation", "BatchNorm2d", "Conv2dSame", "FUNCTIONS", "activation_name", "conv2d", "depthwise_conv2d",
           "same_padding"]


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with Keras's conventions, for (N, C, H, W) input.

    Args:
        num_features: channels C.
        momentum: Keras momentum (weight of the old statistic, e.g. 0.99); PyTorch's ``momentum``
            attribute is set to ``1 - momentum`` so that conversions and SyncBatchNorm keep working.
        epsilon: added to the variance (Keras default 1e-3).
    """

    def __init__(self, num_features: int, momentum: float = 0.99, epsilon: float = 1e-3) -> None:
        super().__init__(num_features, eps=epsilon, momentum=1.0 - momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        # Keras: moving = moving * momentum + batch * (1 - momentum) with the *biased* batch variance;
        # PyTorch's kernel updates with the unbiased one. Let the kernel compute the statistics once
        # (a second pass over the activations made an EfficientNetV2B0 training step 29% slower than
        # timm's) and turn its variance update into Keras's on the (C,) vectors:
        # new = kept + m * unbiased = kept + m * biased * n / (n - 1), kept = old * (1 - m).
        # The kernel updates a copy of the variance: autograd keeps the tensor it was given for the
        # backward pass, so the buffer itself must not change after the call.
        kept = self.running_var * (1.0 - self.momentum)
        updated = self.running_var.clone()
        y = F.batch_norm(x, self.running_mean, updated, self.weight, self.bias, True, self.momentum, self.eps)
        count = x.numel() // x.shape[1]
        with torch.no_grad():
            self.running_var.copy_(kept + (updated - kept) * ((count - 1) / count))
            self.num_batches_tracked.add_(1)
        return y


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's "same" padding (before, after) for one spatial dimension."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "same" padding, computed from the input size at run time."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["padding"] = 0
        super().__init__(*args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0], self.dilation[0])
        left, right = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1], self.dilation[1])
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def conv2d(
    in_channels: int,
    filters: int,
    kernel_size: int,
    strides: int = 1,
    padding: str = "same",
    groups: int = 1,
    use_bias: bool = True,
    dilation: int = 1,
) -> nn.Conv2d:
    """A conv with Keras's argument names; ``padding`` is ``"same"`` (TensorFlow rule) or ``"valid"``."""
    if padding not in ("same", "valid"):
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
    kwargs = dict(stride=strides, groups=groups, bias=use_bias, dilation=dilation)
    if padding == "valid":
        return nn.Conv2d(in_channels, filters, kernel_size, padding=0, **kwargs)
    if strides == 1 and (kernel_size - 1) * dilation % 2 == 0:
        # Symmetric and independent of the input size: a static pad is the same and faster.
        return nn.Conv2d(in_channels, filters, kernel_size, padding=(kernel_size - 1) * dilation // 2, **kwargs)
    return Conv2dSame(in_channels, filters, kernel_size, **kwargs)


def depthwise_conv2d(
    channels: int, kernel_size: int, strides: int = 1, padding: str = "same", use_bias: bool = True
) -> nn.Conv2d:
    """Depthwise conv (multiplier 1), the counterpart of ``keras.layers.DepthwiseConv2D``."""
    return conv2d(channels, channels, kernel_size, strides, padding, groups=channels, use_bias=use_bias)


class Activation(nn.Module):
    """An activation by Keras name: ``swish``/``silu``, ``relu``, ``gelu`` (exact, erf), ``gelu_tanh``,
    ``sigmoid``, ``hard_sigmoid``, ``tanh``, ``softmax`` (last axis), ``linear``/``None``."""

    def __init__(self, activation: str | None = "linear", inplace: bool = False) -> None:
        super().__init__()
        self.activation = activation_name(activation)
        # Only for inputs nothing else reads (a conv or norm output private to a block): without
        # gradients the result then overwrites its input, as timm's activations do, which saves an
        # allocation and a pass through memory per activation.
        self.inplace = bool(inplace) and self.activation in INPLACE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inplace and not torch.is_grad_enabled():
            return INPLACE[self.activation](x)
        return FUNCTIONS[self.activation](x)

    def extra_repr(self) -> str:
        return self.activation


# One function per name of ``core.ACTIVATIONS`` (mirrors ``core_tf.FUNCTIONS``).
FUNCTIONS = {
    "linear": lambda x: x,
    "relu": F.relu,
    "swish": F.silu,
    "gelu": lambda x: F.gelu(x, approximate="none"),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "sigmoid": torch.sigmoid,
    # Keras 3's hard_sigmoid: relu6(x + 3) / 6.
    "hard_sigmoid": lambda x: F.relu6(x + 3.0) / 6.0,
    "tanh": torch.tanh,
    "softmax": lambda x: torch.softmax(x, dim=-1),
}
# The same functions, overwriting their input (see Activation's ``inplace``).
INPLACE = {
    "relu": lambda x: F.relu(x, inplace=True),
    "swish": lambda x: F.silu(x, inplace=True),
    "sigmoid": torch.sigmoid_,
}
