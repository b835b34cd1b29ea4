"""Backend-neutral facts of the primitives in ``core_tf.py`` / ``core_pt.py`` (no framework import).

The activation vocabulary lives here once: both backends normalise names with
:func:`activation_name`, so a config written by one backend names the same function in the other,
and each backend implements exactly :data:`ACTIVATIONS` (a test checks both tables against it).
"""

from __future__ import annotations

# Every activation a deepvision block accepts by name. ``gelu`` is the exact (erf) GELU,
# ``gelu_tanh`` its tanh approximation, ``hard_sigmoid`` Keras 3's relu6(x + 3) / 6 and
# ``softmax`` works on the last axis.
ACTIVATIONS = ("linear", "relu", "swish", "gelu", "gelu_tanh", "sigmoid", "hard_sigmoid", "tanh", "softmax")
# Other spellings accepted and stored under the canonical name (configs always hold the canonical one).
ALIASES = {"silu": "swish"}


def activation_name(name: str | None) -> str:
    """The canonical name of an activation (``None`` means ``"linear"``; case-insensitive).

    Raises:
        ValueError: for a name that is not in :data:`ACTIVATIONS` (nor an alias of one).
    """
    name = "linear" if name is None else str(name).lower()
    name = ALIASES.get(name, name)
    if name not in ACTIVATIONS:
        aliases = ", ".join(repr(a) for a in ALIASES)
        raise ValueError(f"Unknown activation {name!r}. Valid: {sorted(ACTIVATIONS)} (or {aliases}).")
    return name
