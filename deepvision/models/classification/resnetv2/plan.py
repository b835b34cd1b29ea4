"""Where the blocks of a ResNetV2 go: one framework-free rule shared by both backends and the importer.

keras.applications' ResNetV2 (``stack_residual_blocks_v2``) builds each stage as: a first block with a
1x1 projection shortcut, plain blocks, and a last block that carries the stage's stride (2 for every
stage but the last, whose stride is 1). So the downsampling happens at the END of a stage, and the
identity shortcut of that strided block becomes ``MaxPooling2D(1, strides)``.

The same rule with basic blocks (expansion 1) gives ResNet18V2/34V2: the first stage's first block
keeps its identity shortcut because its input already has 64 channels; stages 2-4 open with a
projection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deepvision.models.features import FeatureLevel, last_per_reduction

BLOCK_TYPES = {"bottleneck": 4, "basic": 1}  # block type -> channel expansion of its output
STEM_FILTERS = 64
# keras.applications' BatchNorm numbers: the defaults of ``bn_momentum`` / ``bn_epsilon`` (Keras momentum
# convention: the weight of the old statistic).
BN_MOMENTUM = 0.99
BN_EPSILON = 1.001e-5


@dataclass(frozen=True)
class BlockSpec:
    """The constructor arguments of one residual block.

    Attributes:
        stage: index of the stage (0-based).
        index: index of the block inside its stage (0-based).
        input_filters: channels of the block's input.
        filters: bottleneck width (bottleneck) or width (basic block).
        strides: stride of the block's spatial conv (and of its shortcut).
        conv_shortcut: 1x1 projection shortcut (with bias) instead of identity / max-pool.
        drop_path_rate: drop-path probability of the residual branch.
    """

    stage: int
    index: int
    input_filters: int
    filters: int
    strides: int
    conv_shortcut: bool
    drop_path_rate: float


def check_arguments(stackwise_blocks: Sequence[int], stackwise_filters: Sequence[int],
                    stackwise_strides: Sequence[int], block_type: str) -> None:
    """Raise ``ValueError`` for inconsistent stage arguments."""
    if block_type not in BLOCK_TYPES:
        raise ValueError(f"block_type must be one of {sorted(BLOCK_TYPES)}, got {block_type!r}")
    if not (len(stackwise_blocks) == len(stackwise_filters) == len(stackwise_strides)) or not stackwise_blocks:
        raise ValueError(
            "stackwise_blocks, stackwise_filters and stackwise_strides need one entry per stage, got "
            f"{list(stackwise_blocks)}, {list(stackwise_filters)}, {list(stackwise_strides)}"
        )
    if any(int(n) < 1 for n in stackwise_blocks) or any(int(s) < 1 for s in stackwise_strides):
        raise ValueError("every stage needs at least one block and a stride >= 1")


def check_pooling(pooling: str | None) -> None:
    """``pooling`` as both implementations accept it (one message for both backends)."""
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")


def block_plan(stackwise_blocks: Sequence[int], stackwise_filters: Sequence[int],
               stackwise_strides: Sequence[int], block_type: str, drop_path_rate: float = 0.0) -> list[BlockSpec]:
    """The blocks of a ResNetV2, in order.

    - The stride of a stage is on its LAST block (keras.applications' ``stride1``).
    - The first block of a stage projects its shortcut when its input and output widths differ
      (always, for bottleneck stages; stages 2-4 of the basic-block variants).
    - Drop-path rates grow linearly from 0 to ``drop_path_rate`` over all blocks (timm's rule).
    """
    check_arguments(stackwise_blocks, stackwise_filters, stackwise_strides, block_type)
    expansion = BLOCK_TYPES[block_type]
    total = sum(int(n) for n in stackwise_blocks)
    plan, channels, position = [], STEM_FILTERS, 0
    for stage, (blocks, filters, stride) in enumerate(zip(stackwise_blocks, stackwise_filters, stackwise_strides)):
        for index in range(int(blocks)):
            rate = float(drop_path_rate) * position / (total - 1) if total > 1 else float(drop_path_rate)
            plan.append(BlockSpec(
                stage=stage,
                index=index,
                input_filters=channels,
                filters=int(filters),
                strides=int(stride) if index == int(blocks) - 1 else 1,
                conv_shortcut=index == 0 and channels != int(filters) * expansion,
                drop_path_rate=rate,
            ))
            channels = int(filters) * expansion
            position += 1
    return plan


def feature_levels(plan: Sequence[BlockSpec], block_type: str) -> list[FeatureLevel]:
    """The feature levels of a ResNetV2 (``features_only``), in forward order.

    The candidate points, in forward order, are ``tap`` = 0: the stem conv's output, 1: the stem
    max-pool's, ``2 + i``: block ``i``'s output, ``2 + len(plan)``: the final ``post_norm`` +
    ``post_act``. Each level is the LAST point at its reduction (timm's rule). Because
    keras.applications puts a stage's stride on its last block, the level of a stage's resolution
    is the input of that strided block (the output of the block before it). For ResNet50V2:

    ====  =========  ====  ===========  ==========================================================
    lvl   reduction  chs   module       activation
    ====  =========  ====  ===========  ==========================================================
    0     2          64    stem_conv    7x7/2 conv + bias, no norm or activation (pre-activation net)
    1     4          256   blocks.1     residual sum of stage 1's second block (no norm/activation)
    2     8          512   blocks.5     residual sum, stage 2's third block
    3     16         1024  blocks.11    residual sum, stage 3's fifth block
    4     32         2048  post_norm    post_norm (BatchNorm) then post_act (ReLU): the classifier's features
    ====  =========  ====  ===========  ==========================================================
    """
    expansion = BLOCK_TYPES[block_type]
    points = [FeatureLevel(STEM_FILTERS, 2, "stem_conv", 0), FeatureLevel(STEM_FILTERS, 4, "stem_pool", 1)]
    reduction = 4
    for i, spec in enumerate(plan):
        reduction *= spec.strides
        points.append(FeatureLevel(spec.filters * expansion, reduction, f"blocks.{i}", 2 + i))
    points.append(FeatureLevel(plan[-1].filters * expansion, reduction, "post_norm", 2 + len(plan)))
    return last_per_reduction(points)


def features_layout(plan: Sequence[BlockSpec], selected: Sequence[FeatureLevel]) -> tuple[int, bool, list[str]]:
    """What a features-only ResNetV2 builds: ``(number of blocks, post_norm built, pruned prefixes)``."""
    last = max(level.tap for level in selected)
    blocks = min(max(last - 1, 0), len(plan))
    post = last == 2 + len(plan)
    pruned = [f"blocks.{i}" for i in range(blocks, len(plan))] + ([] if post else ["post_norm"]) + ["head"]
    return blocks, post, pruned
