"""Matplotlib helpers for the evaluation figures (matplotlib is imported on first use).

Figures are built as ``matplotlib.figure.Figure`` objects, outside pyplot, unless the caller asks
to ``show`` them: a library call then renders headless on any backend and leaves no figure open
in pyplot's global state. Saving goes through the figure itself (PNG unless the suffix says else).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepvision.evaluation._arrays import to_numpy


def new_figure(figsize: tuple[float, float], show: bool = False) -> Any:
    """A new Figure: through pyplot when it is to be shown, else standalone."""
    if show:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize)
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def finish(fig: Any, path: str | os.PathLike | None, show: bool = False, dpi: int = 100) -> None:
    """Save ``fig`` at ``path`` (parent folders created; PNG by default) and show it if asked."""
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight", format=path.suffix[1:] or "png")
    if show:
        import matplotlib.pyplot as plt

        plt.show()


def class_label(index: int, classnames: Sequence[str] | None) -> str:
    """The name of class ``index`` from ``classnames``, else the index itself."""
    if classnames is not None and 0 <= index < len(classnames):
        return str(classnames[index])
    return str(index)


def class_colors(count: int) -> list[Any]:
    """``count`` distinguishable colours: tab10 / tab20, then a continuous map for more classes."""
    from matplotlib import colormaps

    if count <= 10:
        cmap = colormaps["tab10"]
        return [cmap(i) for i in range(count)]
    if count <= 20:
        cmap = colormaps["tab20"]
        return [cmap(i) for i in range(count)]
    cmap = colormaps["nipy_spectral"]
    return [cmap(i / max(count - 1, 1)) for i in range(count)]


def scatter_by_class(ax: Any, points: np.ndarray, labels: np.ndarray, classnames: Sequence[str] | None,
                     title: str, axis_name: str, marker_size: float = 12.0) -> None:
    """Scatter (N, 2) or (N, 3) ``points`` on ``ax`` (a 3-D axes for 3 columns), one colour per class."""
    classes = np.unique(labels)
    colors = class_colors(len(classes))
    for color, label in zip(colors, classes):
        chosen = points[labels == label]
        coords = [chosen[:, i] for i in range(points.shape[1])]
        ax.scatter(*coords, s=marker_size, color=color, label=class_label(int(label), classnames), alpha=0.8)
    ax.set_title(title)
    ax.set_xlabel(f"{axis_name} 1")
    ax.set_ylabel(f"{axis_name} 2")
    if points.shape[1] == 3:
        ax.set_zlabel(f"{axis_name} 3")
    ax.legend(title="class", loc="best", fontsize="small", markerscale=1.5,
              ncol=1 if len(classes) <= 12 else 2)


def display_images(images: Any, channels_last: bool) -> list[np.ndarray]:
    """Images of a batch as (H, W) or (H, W, 3) float arrays in [0, 1], each min-max scaled."""
    array = np.asarray(to_numpy(images), dtype=np.float64)
    if array.ndim == 3:
        array = array[None]
    if not channels_last:
        array = array.transpose(0, 2, 3, 1)
    pictures = []
    for image in array:
        if image.shape[-1] == 1:
            image = image[..., 0]
        elif image.shape[-1] != 3:
            image = image.mean(axis=-1)
        low, high = image.min(), image.max()
        pictures.append((image - low) / (high - low) if high > low else np.zeros_like(image))
    return pictures


def show_image(ax: Any, picture: np.ndarray) -> None:
    """Draw one display image without ticks (grayscale for a 2-D array)."""
    ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0.0, vmax=1.0)
    ax.set_xticks([])
    ax.set_yticks([])


def heat_scale(cmap: str) -> Any:
    """A [0, 1] ScalarMappable of ``cmap`` for a colour bar."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    return ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap)
