"""The evaluation figures of the demo: a t-SNE of the features and a Grad-CAM++ overlay."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepvision.evaluation._arrays import to_numpy


def write_demo_figures(model: Any, images: Any, labels: Any, out_dir: str | os.PathLike, *,
                       classnames: Sequence[str] | None = None, backend: str | None = None,
                       batch_size: int = 32, limit_batches: int = -1, gradcam_count: int = 6,
                       components: int = 2, perplexity: float = 30.0, max_iter: int = 1000,
                       progress: bool = True) -> dict[str, Path]:
    """Write ``feature_tsne.png`` and ``gradcam.png`` for ``model`` on labelled images.

    Args:
        model: a Keras or PyTorch classifier returning logits (or a dict with ``"output"``).
        images: (N, H, W, C) for Keras or (N, C, H, W) for PyTorch; numpy or framework tensor.
        labels: (N,) class ids or (N, K) one-hot.
        out_dir: folder for the PNG files (created if missing).
        gradcam_count: how many of the first images the Grad-CAM++ figure explains.
        The other arguments are those of :class:`FeatureAnalyzer` and its ``feature_analysis``.

    Returns:
        ``{"tsne": path, "gradcam": path}``.
    """
    from deepvision.evaluation.activation_maps import ActivationMaps
    from deepvision.evaluation.feature_analyzer import FeatureAnalyzer

    out_dir = Path(out_dir)
    analyzer = FeatureAnalyzer(model, (images, labels), limit_batches=limit_batches, classnames=classnames,
                               backend=backend, batch_size=batch_size)
    analyzer.extract_features(progress=progress)
    tsne_path = out_dir / "feature_tsne.png"
    analyzer.feature_analysis(components=components, perplexity=perplexity, max_iter=max_iter, path=tsne_path)
    maps = ActivationMaps(model, backend=backend)
    gradcam_path = out_dir / "gradcam.png"
    maps.plot(images[:gradcam_count], classnames=classnames, labels=to_numpy(labels)[:gradcam_count],
              path=gradcam_path)
    return {"tsne": tsne_path, "gradcam": gradcam_path}
