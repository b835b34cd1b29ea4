"""deepvision-toolkit: vision models and blocks that are identical in TensorFlow/Keras and PyTorch.

``import deepvision`` is light: it imports neither TensorFlow nor PyTorch. A framework is imported
the first time a model, block or conversion of that backend is used.

Quiet by default: TensorFlow's C++ start-up lines and absl's warnings are kept off stderr (see
:func:`deepvision.backend.quiet_frameworks`); set ``DEEPVISION_VERBOSE=1`` to see them.
"""

from __future__ import annotations

import importlib
from typing import Any

from deepvision.backend import quiet_frameworks as _quiet_frameworks

__version__ = "0.2.0"

_SUBMODULES = ("layers", "models", "evaluation", "datasets", "training", "importers", "adapters", "backend",
               "registry", "portable", "parity", "conversion", "onnx_export", "cli")
_FUNCTIONS = {
    "save_portable": "deepvision.portable",
    "load_portable": "deepvision.portable",
    "to_backend": "deepvision.portable",
    "check_parity": "deepvision.parity",
    "convert": "deepvision.conversion",
    "export_onnx": "deepvision.onnx_export",
}

__all__ = ["__version__", *_SUBMODULES, *_FUNCTIONS]


# Before anything of deepvision imports TensorFlow (its C++ logger reads the level once, on load).
_quiet_frameworks()


def __getattr__(name: str) -> Any:
    # Lazy attributes keep `import deepvision` fast and framework-free.
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(_FUNCTIONS[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"deepvision.{name}")
    raise AttributeError(f"module 'deepvision' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
