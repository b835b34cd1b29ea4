"""Backbone feature levels, backend-neutral: what ``features_only=True`` returns and ``feature_info`` says.

Every model family describes the feature levels its network can hand out, in forward order, as
:class:`FeatureLevel` records computed from its config without a framework (e.g. in the family's
``plan.py``). Both implementation classes then:

1. pick the requested levels with :func:`select_levels` (``out_indices``, negative from the end;
   ``None``: the family's default, e.g. every level for a CNN, the last three blocks for a ViT);
2. build only the layers the last selected level needs (the head and later blocks are pruned) and
   return the selected tensors as a list, channels-last ``(B, H, W, C)`` in Keras, channels-first
   ``(B, C, H, W)`` in PyTorch;
3. after construction call the base class's ``_dv_init_features(levels, selected, pruned)``, which
   stores :class:`FeatureInfo` as ``model.feature_info`` and the pruned canonical prefixes, so
   :func:`deepvision.portable.load_portable` reports the classifier's extra tensors as excluded.

The fields follow timm's ``feature_info``: ``num_chs`` (channels), ``reduction`` (stride relative to
the input) and ``module`` (the canonical name prefix that produces the level, e.g. ``blocks.12``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class FeatureLevel:
    """One level a backbone can return.

    Attributes:
        num_chs: channels of the feature map.
        reduction: its stride relative to the input (2, 4, 8, ...; the patch size for a ViT).
        module: canonical name prefix of the module whose output it is (``"blocks.4"``, ``"stem_conv"``).
        tap: family-defined position of the level in the forward pass (e.g. the number of blocks run
            before it is read); the implementations use it to know where to take the tensor and how
            many blocks to build. Not part of ``feature_info``.
    """

    num_chs: int
    reduction: int
    module: str
    tap: int

    def as_dict(self) -> dict[str, Any]:
        """``{"num_chs", "reduction", "module"}`` (timm's feature_info entry)."""
        out = asdict(self)
        out.pop("tap")
        return out


class FeatureInfo(Sequence):
    """The levels a features-only model returns (or, on a classifier, every level it could return).

    Indexing gives timm-style dicts ``{"num_chs", "reduction", "module"}``; ``channels()``,
    ``reduction()`` and ``module_name()`` give one field for every level (or for one index).
    """

    def __init__(self, levels: Sequence[FeatureLevel], out_indices: Sequence[int]) -> None:
        self._levels = tuple(levels)
        self.out_indices = tuple(int(i) for i in out_indices)  # positions in the family's full level list

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [level.as_dict() for level in self._levels[index]]
        return self._levels[index].as_dict()

    def __len__(self) -> int:
        return len(self._levels)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (level.as_dict() for level in self._levels)

    def _field(self, name: str, index: int | None) -> Any:
        if index is not None:
            return getattr(self._levels[index], name)
        return [getattr(level, name) for level in self._levels]

    def channels(self, index: int | None = None) -> list[int] | int:
        """Channels of every level (or of level ``index``)."""
        return self._field("num_chs", index)

    def reduction(self, index: int | None = None) -> list[int] | int:
        """Stride of every level relative to the input (or of level ``index``)."""
        return self._field("reduction", index)

    def module_name(self, index: int | None = None) -> list[str] | str:
        """Canonical module prefix of every level (or of level ``index``)."""
        return self._field("module", index)

    def get_dicts(self) -> list[dict[str, Any]]:
        return list(self)

    def __repr__(self) -> str:
        return f"FeatureInfo({self.get_dicts()})"


def check_feature_arguments(features_only: bool, out_indices: Sequence[int] | None) -> None:
    """Raise ``ValueError`` for ``out_indices`` without ``features_only`` or of the wrong type."""
    if out_indices is None:
        return
    if not features_only:
        raise ValueError("out_indices selects the levels of a features model: pass features_only=True with it.")
    if isinstance(out_indices, (str, bytes)) or not isinstance(out_indices, Sequence) \
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in out_indices) or not out_indices:
        raise ValueError(f"out_indices must be a non-empty list of level indices (ints), got {out_indices!r}.")


def select_levels(levels: Sequence[FeatureLevel], out_indices: Sequence[int] | None,
                  default: Sequence[int]) -> tuple[list[FeatureLevel], list[int]]:
    """The levels ``out_indices`` names, in forward order, and their positions in ``levels``.

    Args:
        levels: every level of the network, in forward order.
        out_indices: indices into ``levels`` (negative count from the end); ``None`` uses ``default``.
        default: the family's default indices (may be negative).

    Raises:
        ValueError: an index out of range or named twice.
    """
    count = len(levels)
    requested = list(default if out_indices is None else out_indices)
    positions = []
    for index in requested:
        if not -count <= int(index) < count:
            raise ValueError(f"out_indices {list(requested)}: index {index} is out of range for the {count} "
                             f"feature levels of this model (valid: {-count}..{count - 1}).")
        positions.append(int(index) % count)
    if len(set(positions)) != len(positions):
        raise ValueError(f"out_indices {list(requested)} names a level twice.")
    positions.sort()
    return [levels[p] for p in positions], positions


def last_per_reduction(points: Sequence[FeatureLevel]) -> list[FeatureLevel]:
    """Of a forward-ordered list of candidate points, the last one at each reduction (timm's rule).

    A CNN's levels are the deepest maps at each stride: e.g. EfficientNetV2's stage 3 (stride 16)
    is followed by stage 4 at the same stride, so stage 4's output is the stride-16 level.
    """
    out: list[FeatureLevel] = []
    for point in points:
        if out and out[-1].reduction == point.reduction:
            out[-1] = point
        else:
            out.append(point)
    return out
