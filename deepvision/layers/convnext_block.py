"""``ConvNeXtBlock``: the residual block of ConvNeXt (Liu et al., 2022), as timm and keras.applications build it.

Structure (stride 1, the input's shape is kept)::

    x -> depthwise_conv (k x k, "same", bias) -> norm (LayerNorm over channels, eps 1e-6)
      -> mlp (fc1: C -> mlp_ratio * C, exact GELU, fc2: -> C) -> layer_scale (x * gamma)
      -> drop_path (stochastic depth) -> + x

Canonical tensors: ``depthwise_conv.depthwise_kernel`` (k, k, C, 1) and ``.bias``; ``norm.gamma``/``.beta``;
``mlp.fc1.kernel`` (C, 4C), ``mlp.fc1.bias``, ``mlp.fc2.kernel`` (4C, C), ``mlp.fc2.bias``; ``layer_scale.gamma`` (C,).
keras.applications writes the depthwise conv as ``Conv2D(groups=C)`` (kernel (k, k, 1, C)) and timm as
``Conv2d(groups=C)`` (weight (C, 1, k, k)): the importers reshape those into the canonical
depthwise layout, the same numbers in another order.
"""

from __future__ import annotations

from typing import Any

from deepvision.layers._block import build_block, register_block
from deepvision.portable import portable_converters

ARCHITECTURE = register_block(
    "ConvNeXtBlock",
    "convnext_block",
    build_shape=lambda c: (None, None, c["projection_dim"]),
    reference_config={"projection_dim": 8, "layer_scale_init_value": 0.5},
)

# What get_config() of both implementations returns, in constructor order.
CONVNEXT_BLOCK_ARGUMENTS = ("projection_dim", "drop_path_rate", "layer_scale_init_value", "layer_norm_epsilon",
                            "kernel_size", "mlp_ratio", "activation")


def check_convnext_block_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise the constructor arguments (shared by both backends, same messages)."""
    out = dict(arguments)
    dim = out["projection_dim"]
    if int(dim) != dim or int(dim) < 1:
        raise ValueError(f"ConvNeXtBlock: projection_dim must be a positive integer, got {dim!r}.")
    out["projection_dim"] = int(dim)
    rate = float(out["drop_path_rate"])
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"ConvNeXtBlock: drop_path_rate must be in [0, 1], got {rate}.")
    out["drop_path_rate"] = rate
    scale = out["layer_scale_init_value"]
    out["layer_scale_init_value"] = None if scale is None else float(scale)
    eps = float(out["layer_norm_epsilon"])
    if eps <= 0:
        raise ValueError(f"ConvNeXtBlock: layer_norm_epsilon must be positive, got {eps}.")
    out["layer_norm_epsilon"] = eps
    kernel = out["kernel_size"]
    if int(kernel) != kernel or int(kernel) < 1 or int(kernel) % 2 == 0:
        raise ValueError(f"ConvNeXtBlock: kernel_size must be a positive odd integer, got {kernel!r}.")
    out["kernel_size"] = int(kernel)
    ratio = float(out["mlp_ratio"])
    if ratio <= 0 or int(ratio * out["projection_dim"]) < 1:
        raise ValueError(f"ConvNeXtBlock: mlp_ratio must give a hidden width >= 1, got {ratio}.")
    out["mlp_ratio"] = ratio
    return out


def hidden_width(projection_dim: int, mlp_ratio: float) -> int:
    """Width of the MLP's hidden layer (timm: ``int(mlp_ratio * dim)``)."""
    return int(mlp_ratio * projection_dim)


def check_input_channels(projection_dim: int, shape: Any, channel_axis: int) -> None:
    """Call-time check of an image batch's rank and channel count (same message in both backends)."""
    shape = tuple(shape)
    if len(shape) != 4:
        raise ValueError(f"ConvNeXtBlock expects a 4-D image batch, got shape {shape}.")
    channels = shape[channel_axis]
    if channels is not None and int(channels) != projection_dim:
        raise ValueError(
            f"ConvNeXtBlock expects {projection_dim} channels, got input of shape {shape}: "
            "set projection_dim to the input's channel count."
        )


def ConvNeXtBlock(
    projection_dim: int,
    drop_path_rate: float = 0.0,
    layer_scale_init_value: float | None = 1e-6,
    layer_norm_epsilon: float = 1e-6,
    kernel_size: int = 7,
    mlp_ratio: float = 4.0,
    activation: str = "gelu",
    backend: str | None = None,
) -> Any:
    """A ConvNeXt block.

    Args:
        projection_dim: channels C of input and output.
        drop_path_rate: stochastic-depth probability of dropping the residual branch (training only).
        layer_scale_init_value: initial value of the layer-scale gammas (1e-6 in timm and
            keras.applications); ``None`` leaves the layer scale out.
        layer_norm_epsilon: epsilon of the LayerNorm (1e-6).
        kernel_size: side of the depthwise kernel (7).
        mlp_ratio: hidden width of the MLP relative to C (4).
        activation: MLP activation; ``"gelu"`` is the exact (erf) GELU of both references.
        backend: ``"tensorflow"`` (input (N, H, W, C)) or ``"pytorch"`` (input (N, C, H, W)).

    Returns:
        A ``keras.layers.Layer`` / ``torch.nn.Module``; the output has the input's shape.
    """
    return build_block("ConvNeXtBlock", locals())


tf_to_pt, pt_to_tf = portable_converters("ConvNeXtBlock")
