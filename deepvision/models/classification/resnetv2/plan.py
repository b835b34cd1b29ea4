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

BLOCK_TYPES = {"bottleneck": 4, "basic": 1}  # block type -> channel expansion of its output
STEM_FILTERS = 64


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


def feature_taps(plan: Sequence[BlockSpec]) -> list[int]:
    """For ``as_backbone``: per stage, the number of blocks after which its feature map is taken.

    A stage whose last block strides hands its own resolution's map over BEFORE that block (so a
    ResNet50V2 backbone yields strides 4, 8, 16, 32 rather than keras's stage ends at 8, 16, 32, 32);
    a stage without stride is taken at its end. The last stage is always taken at its end (then
    normalised by ``post_norm``).
    """
    stages = max(spec.stage for spec in plan) + 1
    taps = []
    for stage in range(stages):
        specs = [i for i, spec in enumerate(plan) if spec.stage == stage]
        last = specs[-1]
        strided = plan[last].strides > 1 and stage < stages - 1
        taps.append(last if strided else last + 1)
    return taps
