"""The model zoo: every registered model in both backends.

```python
deepvision.models.ResNet50V2(include_top=True, classes=10, input_shape=(224, 224, 3), backend="tensorflow")
deepvision.models.create_model("ViTB16", backend="pytorch", classes=10)
deepvision.models.list_models("EfficientNetV2*")
```
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# Model families: each package registers its architectures on import, without importing a framework,
# and defines one public factory per variant (deepvision.models.factory.variant_factory).
FAMILIES = (
    "deepvision.models.classification.resnetv2",
    "deepvision.models.classification.efficientnetv2",
    "deepvision.models.classification.vit",
    "deepvision.models.segmentation.segformer",
    "deepvision.models.classification.convnext",
    "deepvision.models.nerf",
)

# The public factories, by name (inspect.signature and help() show each variant's own arguments).
from deepvision.models.classification.convnext import (  # noqa: E402
    ConvNeXt,
    ConvNeXtBase,
    ConvNeXtLarge,
    ConvNeXtSmall,
    ConvNeXtTiny,
    ConvNeXtXLarge,
)
from deepvision.models.classification.efficientnetv2 import (  # noqa: E402
    EfficientNetV2B0,
    EfficientNetV2B1,
    EfficientNetV2B2,
    EfficientNetV2B3,
    EfficientNetV2L,
    EfficientNetV2M,
    EfficientNetV2S,
)
from deepvision.models.classification.resnetv2 import (  # noqa: E402
    ResNet18V2,
    ResNet34V2,
    ResNet50V2,
    ResNet101V2,
    ResNet152V2,
)
from deepvision.models.classification.vit import (  # noqa: E402
    ViT,
    ViTB16,
    ViTB32,
    ViTL16,
    ViTL32,
    ViTS16,
    ViTS32,
    ViTTiny16,
    ViTTiny32,
)
from deepvision.models.nerf import NeRF, NeRFSmall  # noqa: E402
from deepvision.models.segmentation.segformer import (  # noqa: E402
    MiT,
    MiTB0,
    MiTB1,
    MiTB2,
    MiTB3,
    MiTB4,
    MiTB5,
    SegFormer,
    SegFormerB0,
    SegFormerB1,
    SegFormerB2,
    SegFormerB3,
    SegFormerB4,
    SegFormerB5,
)

__all__ = [
    "create_model", "list_models", "list_pretrained", "load_all", "register_pretrained",
    "ResNet18V2", "ResNet34V2", "ResNet50V2", "ResNet101V2", "ResNet152V2",
    "EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3",
    "EfficientNetV2S", "EfficientNetV2M", "EfficientNetV2L",
    "ViT", "ViTTiny16", "ViTS16", "ViTB16", "ViTL16", "ViTTiny32", "ViTS32", "ViTB32", "ViTL32",
    "SegFormer", "SegFormerB0", "SegFormerB1", "SegFormerB2", "SegFormerB3", "SegFormerB4", "SegFormerB5",
    "MiT", "MiTB0", "MiTB1", "MiTB2", "MiTB3", "MiTB4", "MiTB5",
    "ConvNeXt", "ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge",
    "NeRF", "NeRFSmall",
]


def load_all() -> None:
    """Import every family package (registers the models)."""
    for family in FAMILIES:
        importlib.import_module(family)


def list_models(pattern: str = "*") -> list[str]:
    """Names of registered models matching a shell-style pattern, e.g. ``"ViT*16"``."""
    from deepvision.registry import list_architectures

    return list_architectures(pattern, kind="model")


def create_model(name: str, backend: str | None = None, *, weights: str | os.PathLike | None = None,
                 **kwargs: Any) -> Any:
    """Build model ``name`` in ``backend``; ``kwargs`` are the model's arguments, in that backend's layout.

    ``weights``: ``None`` (random initialisation), ``"imagenet"`` (the variant's default published
    weights), a tag from :func:`list_pretrained` (``"keras:imagenet"``, ``"timm:convnext_tiny.in12k_ft_in1k"``)
    or a path to a checkpoint of any format ``deepvision.convert`` reads. Another ``classes`` than the
    source's, or ``include_top=False``, loads everything but the classifier head.
    """
    from deepvision.registry import build, get_architecture

    arch = get_architecture(name)
    if arch.kind != "model":
        raise KeyError(f"{name!r} is a block; use deepvision.layers.{name}.")
    if weights is not None:
        from deepvision.pretrained import load_weights

        return load_weights(name, backend, weights, kwargs)
    return build(name, backend, **kwargs)


def list_pretrained(pattern: str = "*") -> list:
    """Published weights of the variants matching ``pattern`` (see :mod:`deepvision.pretrained`)."""
    from deepvision.pretrained import list_pretrained as _list

    return _list(pattern)


def register_pretrained(architecture: str, tag: str, **source: Any) -> Any:
    """Add a source of weights at run time; see :func:`deepvision.pretrained.register_pretrained`."""
    from deepvision.pretrained import register_pretrained as _register

    return _register(architecture, tag, **source)


def __getattr__(name: str) -> Any:
    # A family listed in FAMILIES but not yet imported above: its package defines the factory.
    if not name.startswith("_") and name in list_models():
        from deepvision.registry import get_architecture

        family = get_architecture(name).pytorch.partition(":")[0].rpartition(".")[0]
        factory = getattr(importlib.import_module(family), name, None)
        if factory is not None:
            return factory
        raise AttributeError(f"{family} registers {name!r} but defines no factory: add "
                             f"`{name} = variant_factory({name!r}, ARGUMENTS, ...)` there.")
    raise AttributeError(f"module 'deepvision.models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *list_models()})
