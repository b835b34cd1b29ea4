"""Generate the schema of an architecture from its live PyTorch implementation.

The model is built on PyTorch's ``meta`` device (shapes only, no memory, no initialisation), so
even ViT-L costs a fraction of a second. Dimensions that change with the config (the class count,
the patch grid of a position embedding) are written as ``null``; the head's tensors are marked
``optional_when: include_top=false``.
"""

from __future__ import annotations

from typing import Any

from deepvision.registry import Architecture, config_of, constructor_arguments, get_architecture
from interchange import Schema


def _shapes(arch: Architecture, **kwargs: Any) -> tuple[dict[str, tuple[int, ...]], dict[str, str], dict]:
    import torch

    from deepvision.adapters import iter_slots
    from deepvision.registry import build_from_neutral_config

    config = {**arch.reference_config, **kwargs} if arch.kind == "block" else dict(kwargs)
    with torch.device("meta"):
        model = build_from_neutral_config(arch, config, "pytorch")
    slots = list(iter_slots(model))
    return ({s.name: s.shape for s in slots}, {s.name: s.role for s in slots},
            config_of(model))


def is_generic(name: str) -> bool:
    """Whether the tensor names of ``name`` depend on its config (blocks, the generic ``ViT``): its
    checked-in schema then describes the reference config only."""
    return not get_architecture(name).fixed


def schema_for(name: str, config: dict[str, Any] | None = None) -> Schema:
    """The schema of architecture ``name`` at its default config (blocks: their reference config),
    or at ``config`` (backend-neutral) when given."""
    arch = get_architecture(name)
    shapes, roles, config = _shapes(arch, **(config or {}))
    arguments = set(constructor_arguments(arch.implementation("pytorch")))
    variable: set[tuple[str, int]] = set()
    optional: dict[str, str] = {}
    probes = []
    if "classes" in arguments and config.get("classes"):
        probes.append({"classes": int(config["classes"]) + 7})
    if "input_shape" in arguments and config.get("input_shape"):
        height, width, channels = config["input_shape"]
        probes.append({"input_shape": [height + 32, width + 64, channels]})
    for probe in probes:
        other, _, _ = _shapes(arch, **{**config, **probe})
        for tensor, shape in shapes.items():
            variable.update((tensor, axis) for axis, (a, b) in enumerate(zip(shape, other.get(tensor, shape))) if a != b)
    if "include_top" in arguments and config.get("include_top"):
        headless, _, _ = _shapes(arch, **{**config, "include_top": False})
        optional = {tensor: "include_top=false" for tensor in shapes if tensor not in headless}
    templated = {
        tensor: tuple(None if (tensor, axis) in variable else dim for axis, dim in enumerate(shape))
        for tensor, shape in shapes.items()
    }
    return Schema.from_shapes(arch.name, arch.schema_version, templated, config=config, roles=roles,
                              optional_when=optional)
