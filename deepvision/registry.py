"""The registry of architectures: every model variant and every public block.

An :class:`Architecture` names the TensorFlow and the PyTorch implementation class (as import
strings, so registering imports no framework) and the constructor arguments that define the
variant. Both implementation classes take the same constructor arguments and return them from
``get_config()``; the backend-neutral config stored in a portable checkpoint is that dict with
``input_shape`` in channels-last layout.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any

from deepvision.backend import PYTORCH, TENSORFLOW, backend_of, require


@dataclass(frozen=True)
class Architecture:
    """One registered architecture.

    Attributes:
        name: public name, e.g. ``"ResNet50V2"`` or ``"MBConv"``.
        kind: ``"model"`` or ``"block"``.
        family: e.g. ``"resnetv2"``; used for grouping in listings.
        tensorflow: ``"module.path:ClassName"`` of the Keras implementation.
        pytorch: ``"module.path:ClassName"`` of the PyTorch implementation.
        fixed: constructor arguments that define this variant (e.g. the depth of each stage).
        reference_config: arguments used to build it for schema generation and parity tests
            (blocks need their required arguments here).
        schema_version: version of the canonical tensor names of this architecture.
        preprocessing: the input facts (size, mean, std, value range) as timm's pretrained_cfg.
        build_shape: for blocks, config -> channels-last input shape without batch (``None`` for
            free sizes), used to build a Keras block that has not been called yet.
        parameters: the variant's parameter count at ``include_top=True``, ``classes=1000`` in the
            Keras meaning (BatchNorm moving statistics included), as KerasHub presets carry
            ``params``; ``None`` for blocks and generic entries. The contract test checks both
            backends and the README table against it.
    """

    name: str
    kind: str
    family: str
    tensorflow: str
    pytorch: str
    fixed: Mapping[str, Any] = field(default_factory=dict)
    reference_config: Mapping[str, Any] = field(default_factory=dict)
    schema_version: int = 1
    preprocessing: Mapping[str, Any] = field(default_factory=dict)
    build_shape: Callable[[Mapping[str, Any]], tuple] | None = None
    parameters: int | None = None

    @property
    def schema(self) -> str:
        return f"{self.name}@{self.schema_version}"

    def implementation(self, backend: str) -> type:
        """Import and return the implementation class for ``backend``."""
        backend = require(backend)
        target = self.tensorflow if backend == TENSORFLOW else self.pytorch
        module_name, _, class_name = target.partition(":")
        return getattr(importlib.import_module(module_name), class_name)


_REGISTRY: dict[str, Architecture] = {}


def register(architecture: Architecture) -> Architecture:
    """Add an architecture; registering the same name twice is an error."""
    if architecture.name in _REGISTRY and _REGISTRY[architecture.name] != architecture:
        raise ValueError(f"Architecture {architecture.name!r} is registered twice.")
    _REGISTRY[architecture.name] = architecture
    return architecture


def _load_families() -> None:
    # Each family package registers its architectures on import; none of them imports a framework.
    import deepvision.layers
    import deepvision.models

    deepvision.layers.load_all()
    deepvision.models.load_all()


def get_architecture(name: str) -> Architecture:
    """Return the registered architecture ``name`` or raise a ``KeyError`` naming close matches."""
    _load_families()
    if name not in _REGISTRY:
        close = get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"Unknown architecture {name!r}.{hint} See deepvision.models.list_models().")
    return _REGISTRY[name]


def list_architectures(pattern: str = "*", kind: str | None = None) -> list[str]:
    """Names of registered architectures matching a shell-style ``pattern``, in registration order."""
    _load_families()
    return [
        name
        for name, arch in _REGISTRY.items()
        if fnmatch.fnmatchcase(name, pattern) and (kind is None or arch.kind == kind)
    ]


def constructor_arguments(cls: type) -> list[str]:
    """Names of the keyword arguments an implementation class takes (``backend`` excluded)."""
    params = inspect.signature(cls.__init__).parameters
    return [
        p.name
        for p in params.values()
        if p.name not in ("self", "backend") and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]


def to_neutral_config(config: Mapping[str, Any], backend: str) -> dict[str, Any]:
    """Backend config -> backend-neutral config (``input_shape`` channels-last)."""
    out = dict(config)
    shape = out.get("input_shape")
    if backend == PYTORCH and shape is not None and len(shape) == 3:
        out["input_shape"] = [shape[1], shape[2], shape[0]]
    elif shape is not None:
        out["input_shape"] = list(shape)
    return out


def from_neutral_config(config: Mapping[str, Any], backend: str) -> dict[str, Any]:
    """Backend-neutral config -> the config a ``backend`` implementation takes."""
    out = dict(config)
    shape = out.get("input_shape")
    if shape is not None and len(shape) == 3:
        out["input_shape"] = (shape[2], shape[0], shape[1]) if backend == PYTORCH else tuple(shape)
    return out


@dataclass(frozen=True)
class Resolved:
    """A deepvision model or block's identity, resolved once and passed down.

    Attributes:
        architecture: its registered :class:`Architecture`.
        backend: ``"tensorflow"`` or ``"pytorch"``.
        config: its backend-neutral constructor config (``input_shape`` channels-last), every
            constructor argument including the variant's fixed ones.
    """

    architecture: Architecture
    backend: str
    config: dict[str, Any]


def _as_architecture(arch_or_name: Architecture | str) -> Architecture:
    return arch_or_name if isinstance(arch_or_name, Architecture) else get_architecture(arch_or_name)


def build(arch_or_name: Architecture | str, backend: str | None, **kwargs: Any) -> Any:
    """Build an architecture (or a registered name) in ``backend``; ``kwargs`` in that backend's layout.

    The variant's fixed arguments are added; passing one of them with another value is a
    ``TypeError`` naming the generic architecture to use instead.
    """
    arch = _as_architecture(arch_or_name)
    backend = require(backend)
    clash = sorted(k for k in kwargs if k in arch.fixed and not _same(kwargs[k], arch.fixed[k]))
    if clash:
        raise TypeError(f"{arch.name} fixes {clash}; use the generic architecture to change them.")
    obj = arch.implementation(backend)(**{**arch.fixed, **kwargs})
    obj.dv_architecture = arch.name
    return obj


def build_from_neutral_config(arch_or_name: Architecture | str, config: Mapping[str, Any], backend: str) -> Any:
    """Rebuild an architecture from a backend-neutral config (as stored in a portable checkpoint).

    Entries the implementation does not take (e.g. written by another library version) are
    ignored; the variant's fixed arguments must agree with the config (see :func:`build`).
    """
    arch = _as_architecture(arch_or_name)
    backend = require(backend)
    allowed = set(constructor_arguments(arch.implementation(backend)))
    kwargs = {k: v for k, v in from_neutral_config(config, backend).items() if k in allowed}
    return build(arch, backend, **kwargs)


def _import_string(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _neutral_config(obj: Any, raw: Mapping[str, Any], backend: str) -> dict[str, Any]:
    allowed = constructor_arguments(type(obj))
    return to_neutral_config({k: raw[k] for k in allowed if k in raw}, backend)


def config_of(obj: Any) -> dict[str, Any]:
    """The constructor config of a deepvision model or block, backend-neutral."""
    if not hasattr(obj, "get_config"):
        raise TypeError(f"{type(obj).__name__} is not a deepvision model or block (no get_config()).")
    return _neutral_config(obj, obj.get_config(), backend_of(obj))


def resolve(obj: Any) -> Resolved:
    """The architecture, backend and neutral config of a deepvision model or block, in one pass
    (one ``get_config()`` call); raises ``TypeError`` for anything not registered."""
    if not hasattr(obj, "get_config"):
        raise TypeError(f"{type(obj).__name__} is not a deepvision model or block (no get_config()).")
    backend = backend_of(obj)
    raw = obj.get_config()
    arch, problem = _match_architecture(obj, raw)
    if arch is None:
        raise TypeError(problem)
    return Resolved(arch, backend, _neutral_config(obj, raw, backend))


def find(obj: Any) -> Resolved | None:
    """:func:`resolve` for objects that may be anything: ``None`` when ``obj`` is not an instance of
    a registered architecture (e.g. a user's own ``nn.Module``)."""
    if not hasattr(obj, "get_config"):
        return None
    raw = obj.get_config()
    arch, _ = _match_architecture(obj, raw)
    return None if arch is None else Resolved(arch, backend_of(obj), _neutral_config(obj, raw, backend_of(obj)))


def _same(a: Any, b: Any) -> bool:
    # Configs pass through JSON (tuples become lists), so compare their JSON forms.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def architecture_of(obj: Any) -> Architecture:
    """The registered architecture of a deepvision model or block.

    Objects built through the registry remember their name; others (e.g. a Keras model reloaded
    from a ``.keras`` file) are matched by class and by the arguments that define each variant.
    """
    arch, problem = _match_architecture(obj, None)
    if arch is None:
        raise TypeError(problem)
    return arch


def _match_architecture(obj: Any, raw: Mapping[str, Any] | None) -> tuple[Architecture | None, str]:
    # ``raw`` is obj.get_config() when the caller has it; it is only needed to tell variants apart.
    # Returns (architecture, "") or (None, why not).
    _load_families()
    name = getattr(obj, "dv_architecture", None)
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name], ""
    target = _import_string(type(obj))
    candidates = [a for a in _REGISTRY.values() if target in (a.tensorflow, a.pytorch)]
    if not candidates:
        return None, (f"{type(obj).__name__} is not a registered deepvision architecture; "
                      "see deepvision.models.list_models() and deepvision.layers.")
    config = raw if raw is not None else obj.get_config()
    matching = [a for a in candidates if all(_same(config.get(k), v) for k, v in a.fixed.items())]
    if not matching:
        return None, f"No registered variant of {type(obj).__name__} matches its config."
    # The most specific variant wins; a generic entry (no fixed arguments) is the fallback.
    return max(matching, key=lambda a: len(a.fixed)), ""
