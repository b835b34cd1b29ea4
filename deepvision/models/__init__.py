"""The model zoo: every registered model in both backends.

```python
deepvision.models.ResNet50V2(include_top=True, classes=10, input_shape=(224, 224, 3), backend="tensorflow")
deepvision.models.create_model("ViTB16", backend="pytorch", classes=10)
deepvision.models.list_models("EfficientNetV2*")
```
"""

from __future__ import annotations

import importlib
from typing import Any

# Model families: each package registers its architectures on import, without importing a framework.
FAMILIES = (
    "deepvision.models.classification.resnetv2",
    "deepvision.models.classification.efficientnetv2",
    "deepvision.models.classification.vit",
)


def load_all() -> None:
    """Import every family package (registers the models)."""
    for family in FAMILIES:
        importlib.import_module(family)


def list_models(pattern: str = "*") -> list[str]:
    """Names of registered models matching a shell-style pattern, e.g. ``"ViT*16"``."""
    from deepvision.registry import list_architectures

    return list_architectures(pattern, kind="model")


def create_model(name: str, backend: str | None = None, **kwargs: Any) -> Any:
    """Build model ``name`` in ``backend``; ``kwargs`` are the model's arguments, in that backend's layout."""
    from deepvision.registry import build, get_architecture

    arch = get_architecture(name)
    if arch.kind != "model":
        raise KeyError(f"{name!r} is a block; use deepvision.layers.{name}.")
    return build(name, backend, **kwargs)


def _factory(name: str):
    def factory(*, backend: str | None = None, **kwargs: Any) -> Any:
        return create_model(name, backend=backend, **kwargs)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = (
        f"Build {name}. Arguments: include_top, classes, input_shape (backend layout), pooling, "
        "drop_path_rate, backend ('tensorflow' or 'pytorch'), and the family's own options."
    )
    return factory


def __getattr__(name: str) -> Any:
    # deepvision.models.ResNet50V2 etc. are generated from the registry: one mechanism, no copies.
    if not name.startswith("_") and name in list_models():
        return _factory(name)
    raise AttributeError(f"module 'deepvision.models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(["create_model", "list_models", "load_all", *list_models()])
