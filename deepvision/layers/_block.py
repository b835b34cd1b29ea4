"""Shared plumbing of the public block modules: registration and backend dispatch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from deepvision.registry import Architecture, build, register


def register_block(
    name: str, module: str, build_shape: Callable[[Mapping[str, Any]], tuple], reference_config: Mapping[str, Any]
) -> Architecture:
    """Register block ``name`` implemented by ``deepvision.layers.{module}_tf:{name}TF`` and ``..._pt:{name}PT``."""
    return register(
        Architecture(
            name=name,
            kind="block",
            family="layers",
            tensorflow=f"deepvision.layers.{module}_tf:{name}TF",
            pytorch=f"deepvision.layers.{module}_pt:{name}PT",
            reference_config=dict(reference_config),
            build_shape=build_shape,
        )
    )


def build_block(name: str, arguments: Mapping[str, Any]) -> Any:
    """Build block ``name`` from a public factory's ``locals()`` (which include ``backend``)."""
    kwargs = dict(arguments)
    backend = kwargs.pop("backend")
    extra = kwargs.pop("kwargs", {}) or {}
    return build(name, backend, **kwargs, **extra)
