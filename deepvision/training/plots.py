"""The training-curves figure: loss and accuracy per epoch, across a hand-off between backends."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepvision.io_utils import atomic_output


def history_dict(history: Any) -> Mapping[str, Sequence[float]]:
    """The per-epoch lists of a history in any of the forms deepvision's fit helpers return.

    Accepts Keras's ``History`` (what ``keras_fit`` / ``model.fit`` return), the
    :class:`~deepvision.training.HistoryCallback` that ``lightning_fit`` returns (both keep the
    dict in ``.history``), or the dict itself.
    """
    inner = getattr(history, "history", None)
    if isinstance(inner, Mapping):
        return inner
    if isinstance(history, Mapping):
        return history
    raise TypeError(f"Expected a history: keras_fit's or lightning_fit's result, or a dict of per-epoch lists; "
                    f"got {type(history).__name__}.")


def plot_history(
    stages: Sequence[tuple[str, Any]] | Any,
    path: str | os.PathLike,
    *,
    title: str = "Training curves",
) -> Path:
    """Write a PNG with loss and accuracy curves of consecutive training stages.

    Args:
        stages: ``[(label, history), ...]`` in training order, e.g.
            ``[("Keras", keras_fit(...)), ("Lightning", lightning_fit(...))]``; each history is
            what a fit helper returned or its Keras-style dict of per-epoch lists (``loss``,
            ``accuracy``, ``val_loss``, ``val_accuracy``; missing keys are skipped), see
            :func:`history_dict`. Epochs continue across stages and a dashed vertical line marks
            each hand-off. A single history on its own is one stage labelled "training".
        path: the PNG to write (folders are created).

    Returns:
        The path written.
    """
    if isinstance(stages, Mapping) or isinstance(getattr(stages, "history", None), Mapping):
        stages = [("training", stages)]  # one history on its own
    histories = [(label, history_dict(history)) for label, history in stages]  # bad input fails first
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    offset = 0
    for index, (label, history) in enumerate(histories):
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
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path
