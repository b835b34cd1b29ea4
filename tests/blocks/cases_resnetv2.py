"""Cases for the ResNetV2 blocks: strided at odd and non-square sizes, projection / identity /
max-pool shortcuts, small widths so the suite stays fast."""

from tests.blocks.harness import BlockCase


def _bottleneck(config: dict, size: tuple[int, int], id: str) -> BlockCase:
    return BlockCase("PreActBottleneck", config, (*size, config["input_filters"]), id, has_batch_norm=True)


def _basic(config: dict, size: tuple[int, int], id: str) -> BlockCase:
    return BlockCase("PreActBasicBlock", config, (*size, config["input_filters"]), id, has_batch_norm=True)


CASES = [
    # Projection shortcut from the pre-activation (first block of a keras.applications stage).
    _bottleneck({"input_filters": 8, "filters": 4, "conv_shortcut": True}, (17, 23), "bottleneck-proj"),
    # Identity shortcut.
    _bottleneck({"input_filters": 16, "filters": 4}, (17, 23), "bottleneck-identity"),
    # Strided last block of a stage: max-pool(1, 2) shortcut, odd and even non-square sizes.
    _bottleneck({"input_filters": 16, "filters": 4, "strides": 2}, (17, 23), "bottleneck-maxpool-s2-17x23"),
    _bottleneck({"input_filters": 16, "filters": 4, "strides": 2}, (16, 21), "bottleneck-maxpool-s2-16x21"),
    # Strided projection, a stride of 3, a 5x5 kernel and non-default BatchNorm numbers.
    _bottleneck({"input_filters": 8, "filters": 4, "strides": 2, "conv_shortcut": True}, (17, 23),
                "bottleneck-proj-s2"),
    _bottleneck({"input_filters": 12, "filters": 3, "strides": 3, "kernel_size": 5, "bn_momentum": 0.9,
                 "bn_epsilon": 1e-3}, (19, 14), "bottleneck-k5-s3"),
    # Low-variance feature maps (variance 1e-5, about the BatchNorm epsilon): the epsilon matters in
    # training mode, where BatchNorm normalises with the batch's own statistics.
    BlockCase("PreActBottleneck", {"input_filters": 16, "filters": 4}, (9, 11, 16), "bottleneck-low-variance",
              has_batch_norm=True, input_scale=3e-3),
    BlockCase("PreActBasicBlock", {"input_filters": 8, "filters": 8}, (9, 11, 8), "basic-low-variance",
              has_batch_norm=True, input_scale=3e-3),
    _basic({"input_filters": 8, "filters": 8}, (17, 23), "basic-identity"),
    _basic({"input_filters": 8, "filters": 16, "conv_shortcut": True}, (17, 23), "basic-proj"),
    _basic({"input_filters": 8, "filters": 8, "strides": 2}, (17, 23), "basic-maxpool-s2-17x23"),
    _basic({"input_filters": 8, "filters": 8, "strides": 2}, (16, 21), "basic-maxpool-s2-16x21"),
    _basic({"input_filters": 6, "filters": 10, "strides": 2, "conv_shortcut": True}, (17, 23), "basic-proj-s2"),
    _basic({"input_filters": 8, "filters": 8, "kernel_size": 5, "bn_momentum": 0.9, "bn_epsilon": 1e-3},
           (13, 9), "basic-k5"),
]
