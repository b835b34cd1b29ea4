"""Evaluation tools that work on any TensorFlow/Keras or PyTorch model, not only deepvision's.

- :class:`FeatureAnalyzer`: a model's features over a dataset, embedded with PCA and t-SNE and
  plotted per class.
- :class:`ActivationMaps`: Grad-CAM++ heatmaps (N, H, W) in [0, 1] at input resolution, and
  overlays of them on the images.
- :func:`write_demo_figures`: both figures for a few labelled images, as PNG files.

Importing this package is light: TensorFlow, PyTorch, scikit-learn and matplotlib are imported
the first time a tool needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FeatureAnalyzer": "deepvision.evaluation.feature_analyzer",
    "ActivationMaps": "deepvision.evaluation.activation_maps",
    "ActivationResult": "deepvision.evaluation.activation_maps",
    "gradcam_plus_plus": "deepvision.evaluation.activation_maps",
    "write_demo_figures": "deepvision.evaluation.demo",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'deepvision.evaluation' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
