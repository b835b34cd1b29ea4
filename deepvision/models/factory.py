"""Public model factories: one callable per registered variant, with its real signature and docstring.

A family package describes the constructor arguments of its two implementation classes once, as a
backend-neutral :class:`Argument` tuple (no framework import), and assigns one factory per variant
to a literal module-level name::

    ViTB16 = variant_factory("ViTB16", ARGUMENTS, "ViT-B/16 (timm vit_base_patch16_224)")

so ``grep -rn ViTB16 deepvision`` finds the definition, ``inspect.signature`` shows the arguments
the variant takes (the class's arguments minus the ones the variant fixes, then ``backend``) and
``help()`` shows the variant's size, parameter count and input facts, all read from its
:class:`~deepvision.registry.Architecture`. The mirror test checks that every factory's arguments
equal the Keras and the PyTorch class's, in order and with the same defaults.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deepvision import registry
from deepvision.registry import Architecture

# Marks an argument without a default (the generic architectures' required arguments).
REQUIRED = inspect.Parameter.empty


@dataclass(frozen=True)
class Argument:
    """One constructor argument of a model family, backend-neutral.

    Attributes:
        name: the keyword, as both implementation classes spell it.
        default: its default in both classes (:data:`REQUIRED` for none).
        annotation: the type shown by ``inspect.signature`` (a type or a string).
        doc: one line for the factory's docstring.
    """

    name: str
    default: Any = REQUIRED
    annotation: Any = Any
    doc: str = ""


# The arguments every model family starts with (Keras applications' order).
INCLUDE_TOP = Argument("include_top", True, bool, "add the classification head (logits, no softmax).")
CLASSES = Argument("classes", 1000, int, "number of classes of the head.")
INPUT_SHAPE = Argument(
    "input_shape", None, "Sequence[int | None] | None",
    "image shape without the batch, in the backend's layout: (H, W, C) for TensorFlow, (C, H, W) for "
    "PyTorch; None for any size with 3 channels.",
)
POOLING = Argument("pooling", None, "str | None",
                   "without the head: None returns the feature map, 'avg' or 'max' pools it.")
DROP_PATH_RATE = Argument("drop_path_rate", 0.0, float, "stochastic-depth rate of the last block (linear in depth).")
# The backbone arguments (deepvision.models.features), right after the common ones in every family.
FEATURES_ONLY = Argument("features_only", False, bool,
                         "return a list of feature maps (see feature_info) instead of logits.")
OUT_INDICES = Argument("out_indices", None, "Sequence[int] | None",
                       "which feature levels (negative from the end); None: the family's default.")
COMMON_ARGUMENTS = (INCLUDE_TOP, CLASSES, INPUT_SHAPE, POOLING, DROP_PATH_RATE)

_BACKEND = inspect.Parameter("backend", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="str | None")
# Not a constructor argument: what to load into the built model (deepvision.pretrained).
_WEIGHTS = inspect.Parameter("weights", inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation="str | os.PathLike | None")


def _describe(value: Any) -> str:
    # Stage tables are long: name their length, not their rows.
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], dict):
        return f"<{len(value)} stages>"
    return repr(value)


_CLASSIFIER_RETURNS = "The model in that backend: logits (N, classes) with the head, features without it."


def _docstring(arch: Architecture, arguments: Sequence[Argument], summary: str, returns: str) -> str:
    lines = [f"Build {arch.name}: {summary}." if summary else f"Build {arch.name}.", ""]
    if arch.parameters is not None:
        lines.append(f"Parameters: {arch.parameters:,} (include_top=True, classes=1000; counted as Keras's "
                     "count_params(), BatchNorm statistics included).")
    if arch.fixed:
        lines.append("Fixed by the variant: " + ", ".join(f"{k}={_describe(v)}" for k, v in arch.fixed.items()) + ".")
    size = arch.preprocessing.get("input_size")
    if size:
        lines.append(f"Default input: {size[0]}x{size[1]} RGB (channels-last {list(size)}).")
    lines += ["", "Args:"]
    lines += [f"    {a.name}: {a.doc}" for a in arguments]
    lines += [
        "    backend: 'tensorflow' (a keras.Model on (N, H, W, C) images) or 'pytorch' (a LightningModule",
        "        on (N, C, H, W) images); None: the DEEPVISION_BACKEND environment variable's.",
        "",
        "Returns:",
        f"    {returns}",
    ]
    return "\n".join(lines) + "\n"


def variant_factory(name: str, arguments: Sequence[Argument], summary: str = "",
                    returns: str = _CLASSIFIER_RETURNS) -> Any:
    """The public factory of registered model ``name``.

    Args:
        name: a registered model (its family package registers it before calling this).
        arguments: the family's constructor arguments, in the implementation classes' order; the
            ones the variant fixes are left out of the factory's signature.
        summary: what the variant is, e.g. ``"ViT-B/16 (timm vit_base_patch16_224)"``.
        returns: the docstring's "Returns" line (default: a classifier's logits or features).

    Returns:
        A function ``name(<arguments>, *, backend=None)`` that builds the model through the
        registry; only the arguments given explicitly are passed on, so the classes' own defaults
        apply otherwise.
    """
    # The family package registered it just before; looking it up through get_architecture would
    # import every family again from inside this one.
    arch = registry._REGISTRY.get(name)
    if arch is None:
        raise ValueError(f"Register {name!r} (deepvision.registry.register) before making its factory.")
    if arch.kind != "model":
        raise ValueError(f"{name!r} is a {arch.kind}, not a model; blocks have their own factories in deepvision.layers.")
    names = [a.name for a in arguments]
    unknown = sorted(set(arch.fixed) - set(names))
    if unknown:
        raise ValueError(f"{name} fixes {unknown}, which are not among the family's arguments {names}.")
    free = [a for a in arguments if a.name not in arch.fixed]
    signature = inspect.Signature([
        *(inspect.Parameter(a.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=a.default,
                            annotation=a.annotation) for a in free),
        _WEIGHTS,
        _BACKEND,
    ])

    def factory(*args: Any, **kwargs: Any) -> Any:
        from deepvision.models import create_model

        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            fixed = sorted(set(kwargs) & set(arch.fixed))
            hint = f" {name} fixes {fixed}; use the generic architecture to change them." if fixed else ""
            raise TypeError(f"{name}{signature}: {exc}.{hint}") from None
        given = dict(bound.arguments)
        backend = given.pop("backend", None)
        return create_model(name, backend=backend, weights=given.pop("weights", None), **given)

    factory.__name__ = factory.__qualname__ = name
    # help() names the family package that defines the variant, where its implementations live.
    factory.__module__ = arch.pytorch.partition(":")[0].rpartition(".")[0]
    factory.__signature__ = signature  # type: ignore[attr-defined]
    factory.__doc__ = _docstring(arch, free, summary, returns)
    factory.architecture = arch  # type: ignore[attr-defined]
    return factory
