"""``MLP``: the two-layer feed-forward block of a transformer (timm's ``Mlp``).

Canonical tensors: ``fc1.kernel`` (in, hidden), ``fc1.bias``, ``fc2.kernel`` (hidden, out), ``fc2.bias``.
"""

from __future__ import annotations

from typing import Any

from deepvision.layers._block import build_block, register_block
from deepvision.portable import portable_converters

ARCHITECTURE = register_block(
    "MLP",
    "mlp",
    build_shape=lambda c: (None, c.get("input_dim") or c["output_dim"]),
    reference_config={"hidden_dim": 32, "output_dim": 16},
)


def MLP(
    hidden_dim: int,
    output_dim: int,
    activation: str = "gelu",
    dropout: float = 0.0,
    input_dim: int | None = None,
    backend: str | None = None,
    **kwargs: Any,
) -> Any:
    """fc1 (in -> hidden) -> activation -> dropout -> fc2 (hidden -> out) -> dropout, on (..., in) tensors.

    Args:
        hidden_dim: width of the hidden layer.
        output_dim: width of the output.
        activation: by name; ``"gelu"`` is the exact (erf) GELU, ``"gelu_tanh"`` the tanh approximation.
        dropout: dropout rate after the activation and after fc2 (training only).
        input_dim: width of the input; ``None`` means ``output_dim`` (the transformer case). PyTorch
            needs it to create fc1; the Keras block uses it to build from its config.
        backend: ``"tensorflow"`` or ``"pytorch"``.
    """
    return build_block("MLP", locals())


tf_to_pt, pt_to_tf = portable_converters("MLP")
