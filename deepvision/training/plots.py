"""The training-curves figure: loss and accuracy per epoch, across a hand-off between backends."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path


def plot_history(
    stages: Sequence[tuple[str, Mapping[str, Sequence[float]]]],
    path: str | os.PathLike,
    *,
    title: str = "Training curves",
) -> Path:
    """Write a PNG with loss and accuracy curves of consecutive training stages.

    Args:
        stages: ``[(label, history), ...]`` in training order, e.g.
            ``[("Keras", keras_history.history), ("Lightning", lightning_history.history)]``; each
            history is a Keras-style dict of per-epoch lists (``loss``, ``accuracy``, ``val_loss``,
            ``val_accuracy``; missing keys are skipped). Epochs continue across stages and a dashed
            vertical line marks each hand-off.
        path: the PNG to write (folders are created).

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    offset = 0
    for index, (label, history) in enumerate(stages):
        color = colors[index % len(colors)]
        epochs = max((len(v) for v in history.values()), default=0)
        xs = list(range(offset + 1, offset + epochs + 1))
        for ax, metric in zip(axes, ("loss", "accuracy")):
            for key, style, suffix in ((metric, "-", "train"), (f"val_{metric}", "--", "val")):
                values = list(history.get(key, []))
                if values:
                    ax.plot(xs[: len(values)], values, style, marker="o", color=color, label=f"{label} {suffix}")
        if index:
            for ax in axes:
                ax.axvline(offset + 0.5, color="grey", linestyle=":", linewidth=1)
        offset += epochs
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
